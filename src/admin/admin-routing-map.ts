// GET/POST/DELETE /api/v1/routing-map: the run-time routing map and its migration workflow (validate the
// range against the rows on the current owners and the target, require the target's health, apply
// atomically with a new version, drain the old route), and the timer that expires entries' ttl.

import { quoteName, rangeSql } from '../core/shard/bucket-sql.js'
import type { DrainReport, RangeOwner, RoutingMapStore } from '../core/shard/routing-map-store.js'
import type { ShardKeyType } from '../core/shard/shard-key.js'
import { type ParsedRange, parseKeyRange } from '../core/shard/shard-map.js'

export type { DrainReport }

/** What the routing-map API needs from the face it runs in (the proxy or a library pool). */
export interface RoutingMapHost {
  readonly store: RoutingMapStore
  /** The sharded tables with their key columns and types. */
  readonly tables: readonly { readonly table: string; readonly key: string; readonly type: ShardKeyType }[]
  /** Runs a `SELECT count(*) ... WHERE <sql>` on a shard's primary and returns the count. */
  count(shard: string, table: string, where: string, params: readonly string[]): Promise<number>
  /** Whether the shard's health checks acknowledge it now (its primary healthy, breaker not open). */
  health(shard: string): { readonly ok: boolean; readonly reason?: string }
  /**
   * After the new map applied (the router already uses it): waits for the statements and transactions
   * running on the `from` shards to finish, then closes those shards' idle server connections.
   */
  drain(from: readonly string[], version: number): Promise<DrainReport>
  /** Logs a change (warn) or a failure (error). */
  log(level: 'warn' | 'error', message: string, fields: Record<string, unknown>): void
}

/** An HTTP answer: status and JSON body. */
export interface JsonAnswer {
  readonly status: number
  readonly body: unknown
  readonly allow?: string
}

/** Row counts of one sharded table in a posted range. */
interface TableCount {
  readonly table: string
  readonly owners: readonly { shard: string; range: string; rows: number }[]
  readonly owner_rows: number
  readonly target: { shard: string; rows: number }
  /** The target holds at least as many rows of the range as the current owners. */
  readonly ok: boolean
}

/** The answer on an instance without a sharded config. */
export const NO_ROUTING_MAP: JsonAnswer = {
  status: 404,
  body: { error: 'no routing map: this instance runs no sharded config (shards / sharding)' },
}

/**
 * The routing-map endpoints over a host. One change at a time (POSTs and DELETEs queue); the ttl timer
 * runs from `start()` to `close()`.
 *
 * @example
 * const api = new RoutingMapAdmin(host); api.start()
 * await api.handle('POST', null, { partition_key_range: '0-99', target_backend: 'shard_1' })
 * // { status: 200, body: { status: 'applied', id: 'api:1', version: 2, ..., drained: {...} } }
 */
export class RoutingMapAdmin {
  readonly #host: RoutingMapHost
  #queue: Promise<unknown> = Promise.resolve()
  #timer: NodeJS.Timeout | null = null
  #detach: (() => void) | null = null
  #closed = false

  constructor(host: RoutingMapHost) {
    this.#host = host
  }

  /** Arms the ttl timer (re-armed after every change). */
  start(): void {
    this.#detach = this.#host.store.onChange(() => this.#arm())
    this.#arm()
  }

  close(): void {
    this.#closed = true
    this.#detach?.()
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = null
  }

  /** One request: `id` is the path segment after `/api/v1/routing-map/`, or null. */
  async handle(method: string, id: string | null, body: () => Promise<unknown>): Promise<JsonAnswer> {
    if (id === null) {
      if (method === 'GET' || method === 'HEAD') return { status: 200, body: this.view() }
      if (method === 'POST') {
        const parsed = await body()
        return this.#serial(() => this.#post(parsed))
      }
      return { status: 405, body: { error: 'method not allowed (use GET, POST)' }, allow: 'GET, POST' }
    }
    if (method === 'DELETE') return this.#serial(() => this.#delete(decodeURIComponent(id)))
    return { status: 405, body: { error: 'method not allowed (use DELETE)' }, allow: 'DELETE' }
  }

  /** GET: the version, every entry (where it came from, ttl left) and the map in force. */
  view(): Record<string, unknown> {
    const store = this.#host.store
    store.expire()
    return {
      version: store.version,
      method: store.spec.method,
      ...(store.spec.method === 'hash' ? { buckets: store.spec.buckets } : {}),
      entries: store.entries(),
      effective: store.map.entries,
    }
  }

  #serial(fn: () => Promise<JsonAnswer>): Promise<JsonAnswer> {
    const run = this.#queue.then(fn, fn)
    this.#queue = run.catch(() => {})
    return run
  }

  async #post(body: unknown): Promise<JsonAnswer> {
    const host = this.#host
    host.store.expire()
    const checked = host.store.check(body)
    if (!checked.ok)
      return { status: 422, body: { error: 'invalid routing map entry', issues: checked.issues } }
    const p = checked.proposal
    const target = p.entry.target_backend
    const health = host.health(target)
    if (!health.ok) {
      return {
        status: 409,
        body: {
          error: `target ${target} is not acknowledged by its health checks: ${health.reason ?? 'unhealthy'}`,
          target_backend: target,
        },
      }
    }
    let counts: TableCount[]
    try {
      counts = await this.#count(p.owners, p.range, target)
    } catch (err) {
      return {
        status: 409,
        body: {
          error: `could not count the rows in the range: ${(err as Error).message}`,
          target_backend: target,
        },
      }
    }
    const short = counts.filter((c) => !c.ok)
    if (short.length > 0 && !p.force) {
      return {
        status: 409,
        body: {
          error: `${target} holds fewer rows of ${p.entry.partition_key_range} than the current owners (${short
            .map((c) => `${c.table}: ${c.target.rows} < ${c.owner_rows}`)
            .join(', ')}); copy them first, or post "force": true`,
          counts,
        },
      }
    }
    // the map may have moved while counting (an expiry): check again against the map in force
    let applied: ReturnType<RoutingMapStore['apply']>
    try {
      applied = host.store.apply(p)
    } catch (err) {
      return { status: 409, body: { error: (err as Error).message, version: host.store.version } }
    }
    const from = [...new Set(p.owners.map((o) => o.shard).filter((s) => s !== target))]
    host.log('warn', 'routing map entry applied', {
      id: applied.id,
      version: applied.version,
      partition_key_range: p.entry.partition_key_range,
      target_backend: target,
      from,
      forced: p.force && short.length > 0,
    })
    const drained = await host.drain(from, applied.version)
    return {
      status: 200,
      body: {
        status: 'applied',
        id: applied.id,
        version: applied.version,
        entry: { ...p.entry, ttl: p.ttl },
        previous_owners: p.owners.map((o) => ({ shard: o.shard, range: o.text })),
        counts,
        forced: p.force && short.length > 0,
        drained,
      },
    }
  }

  async #delete(id: string): Promise<JsonAnswer> {
    const store = this.#host.store
    store.expire()
    const entry = store.entries().find((e) => e.id === id && e.origin === 'api')
    const before = entry ? this.#ownersOf(entry.partition_key_range) : []
    const removed = store.remove(id)
    if (removed === 'config') {
      return {
        status: 422,
        body: {
          error: `${id} comes from sharding.map in the config; change it there`,
          issues: [{ path: 'id', message: 'a config entry' }],
        },
      }
    }
    if (removed === null) return { status: 404, body: { error: `no routing map entry ${id}` } }
    const after = this.#ownersOf(removed.entry.partition_key_range)
    const from = movedFrom(before, after)
    this.#host.log('warn', 'routing map entry deleted', { id, version: removed.version, from })
    const drained = await this.#host.drain(from, removed.version)
    return {
      status: 200,
      body: { status: 'deleted', id, version: removed.version, entry: removed.entry, drained },
    }
  }

  #ownersOf(text: string): RangeOwner[] {
    const store = this.#host.store
    const range = parseKeyRange(text, store.spec)
    return typeof range === 'string' ? [] : store.owners(range)
  }

  /** Per sharded table: rows of the range on each current owner (its piece) and on the target. */
  async #count(owners: readonly RangeOwner[], range: ParsedRange, target: string): Promise<TableCount[]> {
    const host = this.#host
    const spec = host.store.spec
    const listed = host.store.map.entries
      .filter((e) => e.partition_key_range !== '*')
      .flatMap((e) => e.partition_key_range.split(',').map((v) => v.trim()))
    const others = owners.filter((o) => o.shard !== target)
    return Promise.all(
      host.tables.map(async (t): Promise<TableCount> => {
        const where = (r: ParsedRange) => rangeSql(t.key, t.type, r, spec, listed)
        const [targetRows, ...ownerRows] = await Promise.all([
          host.count(target, quoteName(t.table), where(range).sql, where(range).params),
          ...others.map((o) =>
            host.count(o.shard, quoteName(t.table), where(o.range).sql, where(o.range).params),
          ),
        ])
        const owner_rows = ownerRows.reduce((a, b) => a + b!, 0)
        return {
          table: t.table,
          owners: others.map((o, i) => ({ shard: o.shard, range: o.text, rows: ownerRows[i]! })),
          owner_rows,
          target: { shard: target, rows: targetRows! },
          ok: targetRows! >= owner_rows,
        }
      }),
    )
  }

  #arm(): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = null
    if (this.#closed) return
    const next = this.#host.store.nextExpiry()
    if (next === null) return
    // a timer over 2^31-1 ms fires at once; a ttl is at most a year, so re-arm in steps
    const delay = Math.min(Math.max(0, next - Date.now()), 2 ** 31 - 1)
    this.#timer = setTimeout(() => {
      this.#timer = null
      void this.#serial(() => this.#expireNow())
    }, delay)
    this.#timer.unref()
  }

  async #expireNow(): Promise<JsonAnswer> {
    const store = this.#host.store
    const before = new Map(
      store
        .entries()
        .filter((e) => e.origin === 'api')
        .map((e) => [e.id, { text: e.partition_key_range, owners: this.#ownersOf(e.partition_key_range) }]),
    )
    const version = store.version
    const gone = store.expire()
    if (gone.length === 0) {
      this.#arm()
      return { status: 200, body: null }
    }
    const from = new Set<string>()
    for (const id of gone) {
      const b = before.get(id)
      if (b) for (const s of movedFrom(b.owners, this.#ownersOf(b.text))) from.add(s)
    }
    this.#host.log('warn', 'routing map entries expired', {
      ids: gone,
      version: store.version,
      from: [...from],
    })
    await this.#host
      .drain([...from], store.version)
      .catch((err: unknown) =>
        this.#host.log('error', 'drain after expiry failed', { err: (err as Error).message, version }),
      )
    return { status: 200, body: null }
  }
}

/** Shards that owned some piece before and no longer own all of what they owned. */
function movedFrom(before: readonly RangeOwner[], after: readonly RangeOwner[]): string[] {
  const key = (o: RangeOwner) => `${o.shard}|${o.text}`
  const now = new Set(after.map(key))
  return [...new Set(before.filter((o) => !now.has(key(o))).map((o) => o.shard))]
}
