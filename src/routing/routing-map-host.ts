// The routing map at run time behind a ShardedRouting: the store laid over the config's map, each new
// version handed to the router, config reloads laid under the API entries; and what the routing-map API
// asks of a face (row counts on a shard's primary, the target's health), with the face's own drain.

import { countRows } from '../backend/count-rows.js'
import type { FreshetConfig } from '../core/config/schema.js'
import { mapKeyType } from '../core/config/schema-sharding.js'
import { type DrainReport, type RoutingMapBase, RoutingMapStore } from '../core/shard/routing-map-store.js'
import type { ShardKeyType } from '../core/shard/shard-key.js'
import type { ShardedRouting } from './sharded-routing.js'

const untracked = async (from: readonly string[]): Promise<DrainReport> => ({
  from,
  statements: 0,
  transactions: 0,
  still_running: 0,
  waited_ms: 0,
  closed_idle_connections: 0,
  note: 'this face does not track statements per shard: nothing was waited for (statements already running finish where they were sent; new ones take the new map)',
})

/** The store's base from a sharded config: its map, key space and shard names. */
export function routingMapBase(config: FreshetConfig): RoutingMapBase {
  const sh = config.sharding!
  return {
    spec: { method: sh.method, buckets: sh.buckets, keyType: mapKeyType(sh) },
    entries: sh.map,
    shards: (config.shards ?? []).map((s) => s.name),
  }
}

/**
 * The routing-map store of a ShardedRouting, wired both ways, plus the face-independent parts of the
 * admin API's host (`startAdmin({ routingMap })`); `drain` is the face's. `close()` unhooks it.
 * @example
 * const host = routingMapHost(routing, { drain: (from, v) => proxy.drainShards(from, v, 30_000), log })
 * await startAdmin({ engine: routing, routingMap: host })
 */
export function routingMapHost<D = DrainReport>(
  routing: ShardedRouting,
  options: {
    /** The face's drain (the proxy's `drainShards`); without one, nothing is waited for and the answer says so. */
    drain?: (from: readonly string[], version: number) => Promise<D>
    log: (level: 'warn' | 'error', message: string, fields: Record<string, unknown>) => void
    /** Connect and statement timeout of each row count (default 4 x health.timeout_ms). */
    countTimeoutMs?: number
  },
) {
  const store = new RoutingMapStore(routingMapBase(routing.config))
  const offChange = store.onChange((map, version, reason) => {
    routing.setMap(map, version)
    options.log('warn', 'routing map version applied', { version, reason })
  })
  const onConfig = (config: FreshetConfig) => {
    try {
      const { dropped } = store.reloadConfig(routingMapBase(config))
      for (const d of dropped) options.log('warn', 'routing map entry dropped by a config reload', { ...d })
    } catch (err) {
      options.log('error', 'routing map not reloaded; the running map stays', { err: (err as Error).message })
    }
  }
  routing.on('config', onConfig)
  const tables = () =>
    Object.entries(routing.config.sharding!.tables).map(([table, t]) => ({
      table,
      key: t.key,
      type: t.type as ShardKeyType,
    }))
  return {
    store,
    get tables() {
      return tables()
    },
    count: (shard: string, table: string, where: string, params: readonly string[]) => {
      const engine = routing.engine(shard)
      const primary = engine.tracker.nodeConfig(engine.tracker.primary)
      if (!primary) return Promise.reject(new Error(`no primary known for ${shard}`))
      return countRows(
        primary.url,
        table,
        where,
        params,
        options.countTimeoutMs ?? routing.config.health.timeout_ms * 4,
      )
    },
    health: (shard: string) => {
      const primary = routing
        .engine(shard)
        .snapshot()
        .find((n) => n.role === 'primary')
      if (!primary) return { ok: false, reason: 'no primary' }
      if (!primary.healthy) return { ok: false, reason: `primary ${primary.name} is unhealthy` }
      if (primary.breaker === 'open')
        return { ok: false, reason: `primary ${primary.name}'s breaker is open` }
      return { ok: true }
    },
    drain: (from: readonly string[], version: number): Promise<D | DrainReport> =>
      options.drain ? options.drain(from, version) : untracked(from),
    log: options.log,
    close: () => {
      offChange()
      routing.off('config', onConfig)
    },
  }
}
