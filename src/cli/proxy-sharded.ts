// `freshet proxy` with a sharded config: ShardedRouting (one engine per shard and the aggregate node) ->
// the proxy with one server pool per shard -> the admin API with the routing map; config file reloads.

import type { AdminEngine } from '../admin/admin-engine.js'
import { startAdmin } from '../admin/admin-server.js'
import type { ConfigWatcher } from '../backend/config-watcher.js'
import type { FreshetConfig } from '../core/config/schema.js'
import { ConfigError } from '../core/errors.js'
import { ProxyServer } from '../proxy/proxy-server.js'
import type { RoutingEngine } from '../routing/routing-engine.js'
import { routingMapHost } from '../routing/routing-map-host.js'
import { ShardedRouting } from '../routing/sharded-routing.js'
import { attachEngineLogs, createLogger } from '../telemetry/logger.js'
import { FreshetMetrics } from '../telemetry/metrics.js'
import { reloadFile, watchConfigFile } from './config-file-watch.js'

/** How long a routing-map change waits for work on the old route (then it reports what still runs). */
const DRAIN_TIMEOUT_MS = 30_000

/** What {@link startShardedProxy} started. */
export interface RunningShardedProxy {
  readonly routing: ShardedRouting
  /** The first shard's engine (its config carries the settings every shard shares). */
  readonly engine: RoutingEngine
  readonly proxy: ProxyServer
  readonly address: string
  readonly adminUrl: string | null
  readonly watcher: ConfigWatcher | null
  reload(): Promise<void>
  stop(): Promise<void>
}

/**
 * Starts a sharded proxy from a validated config (or a ShardedRouting built already). Refuses what a
 * sharded proxy does not run (proxy.workers above 1, fleet, replica discovery) with the key path.
 * @example
 * const running = await startShardedProxy(config, { configPath: 'freshet.yaml' })
 * // psql -h 127.0.0.1 -p 6432 ... ; curl $ADMIN/api/v1/routing-map
 */
export async function startShardedProxy(
  config: FreshetConfig,
  options: {
    configPath?: string
    routing?: ShardedRouting
    listen?: string
    adminListen?: string | false
    watchDebounceMs?: number
  } = {},
): Promise<RunningShardedProxy> {
  const issues: { path: string; message: string }[] = []
  if (config.proxy.workers !== 1)
    issues.push({ path: 'proxy.workers', message: 'a sharded proxy runs one process (workers: 1)' })
  if (config.fleet) issues.push({ path: 'fleet', message: 'not available with shards in this build' })
  // the schema refuses it too (schema-sharding.ts); this guards a config object built without it
  if (config.cluster.discovery)
    issues.push({
      path: 'cluster.discovery',
      message: 'replica discovery is not available with shards in this build',
    })
  if (issues.length > 0) throw new ConfigError(issues)
  const routing = options.routing ?? new ShardedRouting(config)
  // ShardedRouting is an AdminEngine at run time (every event, config, snapshot, reload, controls,
  // classify, dry-run decide); its emitter type lists two more events, which TypeScript's EventEmitter
  // typing will not widen, hence the one cast
  const asEngine = routing as unknown as AdminEngine
  const logger = options.adminListen !== false ? createLogger(config.telemetry) : null
  const detachLogs = logger ? attachEngineLogs(asEngine, logger) : () => {}
  await routing.start()
  const engine = routing.engine(routing.shardNames[0]!)
  const metrics = new FreshetMetrics()
  const proxy = new ProxyServer(engine, {
    ...(options.listen ? { listen: options.listen } : {}),
    observer: metrics,
    sharded: routing,
    log: (level, message, fields) => routing.emit('log', level, message, fields),
  })
  const detachMetrics = metrics.attachEngine(asEngine, () => proxy.poolStats())
  const host = routingMapHost(routing, {
    drain: (from, version) => proxy.drainShards(from, version, DRAIN_TIMEOUT_MS),
    log: (level, message, fields) => routing.emit('log', level, message, fields),
  })
  const undo = async () => {
    host.close()
    detachMetrics()
    detachLogs()
    await proxy.close(0)
    await routing.stop()
  }
  let bound: Awaited<ReturnType<ProxyServer['listen']>>
  let admin: Awaited<ReturnType<typeof startAdmin>> | null = null
  try {
    bound = await proxy.listen()
    if (options.adminListen !== false) {
      admin = await startAdmin({
        engine: asEngine,
        metrics,
        poolStats: () => proxy.poolStats(),
        ...(logger ? { logger } : {}),
        routingMap: host,
        ...(options.adminListen ? { admin: { listen: options.adminListen } } : {}),
      })
    }
  } catch (err) {
    await undo()
    throw err
  }
  const watch = options.configPath
    ? watchConfigFile(options.configPath, routing, metrics, options.watchDebounceMs)
    : null
  const watcher = watch?.watcher ?? null
  const host_ = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address
  return {
    routing,
    engine,
    proxy,
    address: `${host_}:${bound.port}`,
    adminUrl: admin?.url ?? null,
    watcher,
    reload: async () => {
      if (watcher) await reloadFile(watcher)
    },
    stop: async () => {
      watch?.stop()
      await proxy.close()
      await admin?.close()
      host.close()
      detachMetrics()
      detachLogs()
      await routing.stop()
    },
  }
}
