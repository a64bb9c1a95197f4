// One mysql2 pool per node, following the config's node list; connection failures feed the node's breaker.

import mysql from 'mysql2/promise'
import type { TopologyTracker } from '../backend/topology-tracker.js'
import type { FreshetConfig } from '../core/config/schema.js'
import { NodeUnavailableError } from '../core/errors.js'
import { mysqlConnectionOptions } from './mysql-url.js'

/** mysql2 options applied to every node's pool (ssl, timezone, typeCast, dateStrings ...). */
export type MysqlPoolExtras = Omit<
  mysql.PoolOptions,
  'uri' | 'host' | 'port' | 'user' | 'password' | 'database'
>

/** The pool events of mysql2 (connection, acquire, release, enqueue), forwarded with their arguments. */
export type PoolEventSink = (event: string, node: string, ...args: unknown[]) => void

/** True when an error means the node or connection failed, not the statement. */
export function isMysqlConnectionError(err: unknown): boolean {
  const e = err as { code?: string; fatal?: boolean; message?: string }
  if (!e || typeof e !== 'object') return false
  const code = e.code ?? ''
  if (/^(ECONN|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_)/.test(code)) return true
  if (code === 'PROTOCOL_CONNECTION_LOST' || code === 'ER_SERVER_SHUTDOWN' || code === 'ER_CON_COUNT_ERROR')
    return true
  return e.fatal === true
}

interface NodePool {
  readonly url: string
  readonly pool: mysql.Pool
}

/** Internals of mysql2's callback pool, read for counts only (guarded: absent fields count as 0). */
interface PoolInternals {
  _allConnections?: { length: number }
  _freeConnections?: { length: number }
  _connectionQueue?: { length: number }
}

/**
 * Owns a mysql2 pool per node (primary and replicas) sized from `pools.primary` / `pools.replicas`.
 * Nodes that leave the config drain and close.
 */
export class MysqlNodePools {
  readonly #pools = new Map<string, NodePool>()
  readonly #tracker: TopologyTracker
  readonly #extras: MysqlPoolExtras
  readonly #sink: PoolEventSink
  #config: FreshetConfig

  constructor(config: FreshetConfig, tracker: TopologyTracker, extras: MysqlPoolExtras, sink: PoolEventSink) {
    this.#config = config
    this.#tracker = tracker
    this.#extras = extras
    this.#sink = sink
    this.sync(config)
  }

  /** Follows a new config (or discovered replica list): new nodes get a pool, gone or moved ones close. */
  sync(config: FreshetConfig): void {
    this.#config = config
    const nodes = this.#tracker.nodes()
    const wanted = new Map(nodes.map((n) => [n.name, n.url]))
    for (const [name, p] of this.#pools) {
      if (wanted.get(name) !== p.url) {
        this.#pools.delete(name)
        void p.pool.end().catch(() => {})
      }
    }
    for (const [name, url] of wanted)
      if (!this.#pools.has(name)) this.#pools.set(name, this.#create(name, url))
  }

  /** A connection on `node` (the caller releases it). A failure to connect counts against the node's breaker. */
  async acquire(node: string): Promise<mysql.PoolConnection> {
    const p = this.#pools.get(node)
    if (!p) throw new NodeUnavailableError('FRESHET_NODE_UNAVAILABLE', `freshet: no pool for node '${node}'`)
    try {
      return await p.pool.getConnection()
    } catch (err) {
      this.#tracker.breaker(node)?.failure()
      throw new NodeUnavailableError(
        'FRESHET_NODE_UNAVAILABLE',
        `freshet: cannot connect to ${node}: ${(err as Error).message}`,
        { cause: err },
      )
    }
  }

  /** The mysql2 pool of a node (for a plain statement without a checked-out connection). */
  pool(node: string): mysql.Pool | undefined {
    return this.#pools.get(node)?.pool
  }

  counts(): {
    total: number
    idle: number
    waiting: number
    perNode: Record<string, { total: number; idle: number; waiting: number; active: number }>
  } {
    const perNode: Record<string, { total: number; idle: number; waiting: number; active: number }> = {}
    let total = 0
    let idle = 0
    let waiting = 0
    for (const [name, p] of this.#pools) {
      const inner = (p.pool as unknown as { pool?: PoolInternals }).pool ?? {}
      const t = inner._allConnections?.length ?? 0
      const i = inner._freeConnections?.length ?? 0
      const w = inner._connectionQueue?.length ?? 0
      perNode[name] = { total: t, idle: i, waiting: w, active: t - i }
      total += t
      idle += i
      waiting += w
    }
    return { total, idle, waiting, perNode }
  }

  async end(): Promise<void> {
    const pools = [...this.#pools.values()]
    this.#pools.clear()
    await Promise.all(pools.map((p) => p.pool.end().catch(() => {})))
  }

  #create(name: string, url: string): NodePool {
    const primary = name === this.#tracker.primary
    const s = primary ? this.#config.pools.primary : this.#config.pools.replicas
    const pool = mysql.createPool({
      ...this.#extras,
      ...mysqlConnectionOptions(url),
      connectionLimit: s.max_active,
      maxIdle: Math.max(1, s.min_idle),
      idleTimeout: 'idle_timeout_ms' in s ? s.idle_timeout_ms : 60_000,
      connectTimeout: s.connection_timeout_ms,
      waitForConnections: true,
      queueLimit: this.#config.pools.max_waiting,
    })
    for (const event of ['connection', 'acquire', 'release', 'enqueue']) {
      pool.on(event as 'connection', (...args: unknown[]) => this.#sink(event, name, ...args))
    }
    return { url, pool }
  }
}
