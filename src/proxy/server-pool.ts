// Server connections pooled per node and (user, database): bounded per node, FIFO waiters, backpressure.

import { Budget, budgetCapacity } from '../backend/tier-budget.js'
import type { TopologyTracker } from '../backend/topology-tracker.js'
import type { FreshetConfig, NodeConfig } from '../core/config/schema.js'
import { BackpressureError, FreshetError, NodeUnavailableError } from '../core/errors.js'
import { ServerConnection, ServerStartupError } from './server-connection.js'

/** How long a client may wait for a busy pool before failing (pgbouncer's query_wait_timeout). */
export const QUERY_WAIT_TIMEOUT_MS = 120_000
const SWEEP_INTERVAL_MS = 1000

/** Whom a connection logs in as: the client's user and database, and the password to use. */
export interface LoginIdentity {
  readonly user: string
  readonly database: string
  /** The client's password from `proxy.auth.users`, used when the node URL has none for this user. */
  readonly password: string | undefined
  /** `user\0database`: the pool's key for connections of this identity, made once per login. */
  readonly key: string
}

/** A login identity with its pool key. */
export function loginIdentity(user: string, database: string, password: string | undefined): LoginIdentity {
  return { user, database, password, key: `${user}\0${database}` }
}

interface Waiter {
  identity: LoginIdentity
  key: string
  resolve: (conn: ServerConnection) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
}

interface NodePool {
  name: string
  /** Connections open or opening, idle or in use. */
  total: number
  active: number
  readonly idle: Map<string, ServerConnection[]>
  readonly waiters: Waiter[]
  /** Every open connection, idle or in use (SHOW SERVERS). */
  readonly open: Set<ServerConnection>
  /** `pools.tier_budgets`: the share of this node's connections each listed tier may hold. */
  readonly budgets: Map<string, Budget>
}

/** One server connection as the admin console lists it. */
export interface ServerConnectionInfo {
  node: string
  host: string
  port: number
  user: string
  database: string
  state: 'idle' | 'active'
  backend_pid: number
  connected_at: string
  last_used_at: string
}

/** Connection counts of one node, as the admin API reads them. */
export interface ServerPoolStats {
  total: number
  idle: number
  active: number
  waiting: number
}

/**
 * Every node's server connections. `acquire()` returns an idle connection for the same user and
 * database at once (synchronously via `tryAcquire()`), opens a new one while the node is under
 * `max_active`, else queues the request (failing fast beyond `pools.max_waiting`). Connect failures
 * feed the node's breaker.
 *
 * @example
 * const conn = pool.tryAcquire('replica_1', id) ?? (await pool.acquire('replica_1', id))
 * // ... use it ...
 * pool.release(conn)
 */
export class ServerPool {
  readonly #nodes = new Map<string, NodePool>()
  #config: FreshetConfig
  readonly #tracker: TopologyTracker
  #closed = false
  readonly #sweeper: NodeJS.Timeout

  constructor(config: FreshetConfig, tracker: TopologyTracker) {
    this.#config = config
    this.#tracker = tracker
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS)
    this.#sweeper.unref()
  }

  /** Applies new pool sizes and prepared statement cache size (existing connections stay). */
  setConfig(config: FreshetConfig): void {
    this.#config = config
    // new shares apply to new checkouts; connections out now give back to the budget they took
    for (const p of this.#nodes.values()) p.budgets.clear()
    // a node removed or now at another address (reload, discovery): its idle connections go at once,
    // busy ones when they are released
    for (const p of this.#nodes.values()) {
      for (const list of p.idle.values()) {
        for (const conn of [...list]) if (!this.#atAddress(conn)) conn.destroy()
      }
    }
  }

  /** Whether a connection still points at its node's configured host and port. */
  #atAddress(conn: ServerConnection): boolean {
    const node = this.#tracker.nodeConfig(conn.node)
    if (node === undefined) return false
    const { host, port } = addressOf(node)
    return conn.host === host && conn.port === port
  }

  #pool(name: string): NodePool {
    let p = this.#nodes.get(name)
    if (!p) {
      p = { name, total: 0, active: 0, idle: new Map(), waiters: [], budgets: new Map(), open: new Set() }
      this.#nodes.set(name, p)
    }
    return p
  }

  #settings(name: string) {
    return name === this.#tracker.primary ? this.#config.pools.primary : this.#config.pools.replicas
  }

  /** Connections in use on a node (least_connections). */
  active(name: string): number {
    return this.#nodes.get(name)?.active ?? 0
  }

  stats(): Record<string, ServerPoolStats> {
    const out: Record<string, ServerPoolStats> = {}
    for (const node of this.#tracker.nodes()) {
      const p = this.#nodes.get(node.name)
      let idle = 0
      if (p) for (const list of p.idle.values()) idle += list.length
      out[node.name] = {
        total: p?.total ?? 0,
        idle,
        active: p?.active ?? 0,
        waiting: p?.waiters.length ?? 0,
      }
    }
    return out
  }

  /** Every open server connection with its state, node by node (the admin console's SHOW SERVERS). */
  connections(): ServerConnectionInfo[] {
    const out: ServerConnectionInfo[] = []
    for (const p of this.#nodes.values()) {
      const idle = new Set<ServerConnection>()
      for (const list of p.idle.values()) for (const c of list) idle.add(c)
      for (const c of p.open) {
        const [user = '', database = ''] = c.key.split('\0')
        out.push({
          node: c.node,
          host: c.host,
          port: c.port,
          user,
          database,
          state: idle.has(c) ? 'idle' : 'active',
          backend_pid: c.pid,
          connected_at: new Date(c.createdAt).toISOString(),
          last_used_at: new Date(c.lastUsed).toISOString(),
        })
      }
    }
    return out
  }

  /**
   * An idle connection for this identity, or null (then call `acquire()`): also null when `tier` has
   * used up its budget on this node.
   */
  tryAcquire(name: string, identity: LoginIdentity, tier: string | null = null): ServerConnection | null {
    const p = this.#nodes.get(name)
    if (!p) return null
    const budget = tier === null ? null : this.#budget(p, tier)
    if (budget === null) return this.#takeIdle(p, name, identity)
    if (!budget.tryAcquire()) return null
    const conn = this.#takeIdle(p, name, identity)
    if (conn === null) budget.release()
    else conn.budget = budget
    return conn
  }

  #takeIdle(p: NodePool, name: string, identity: LoginIdentity): ServerConnection | null {
    const list = p.idle.get(identity.key)
    while (list && list.length > 0) {
      const conn = list.pop()!
      if (conn.closed) continue
      if (conn.replicaTimeout && name === this.#tracker.primary) {
        conn.destroy() // opened while the node was a replica: not for the primary's writes
        continue
      }
      p.active++
      return conn
    }
    return null
  }

  /**
   * A connection on node `name` for this identity: idle, new, or after waiting; first, when `tier` has
   * a budget (`pools.tier_budgets`), a slot of that tier's share of the node.
   */
  acquire(name: string, identity: LoginIdentity, tier: string | null = null): Promise<ServerConnection> {
    const budget = tier === null ? null : this.#budget(this.#pool(name), tier)
    if (budget === null) return this.#acquire(name, identity)
    const p = this.#pool(name)
    if (p.waiters.length + budget.waiting >= this.#config.pools.max_waiting) {
      return Promise.reject(
        new BackpressureError(
          `freshet: ${p.waiters.length + budget.waiting} requests already wait for a connection to ${name} (pools.max_waiting)`,
        ),
      )
    }
    const gate = budget.acquire()
    const take = () =>
      this.#acquire(name, identity).then(
        (conn) => {
          conn.budget = budget
          return conn
        },
        (err: unknown) => {
          budget.release()
          throw err
        },
      )
    return gate === null ? take() : gate.then(take)
  }

  #acquire(name: string, identity: LoginIdentity): Promise<ServerConnection> {
    if (this.#closed) {
      return Promise.reject(new FreshetError('FRESHET_POOL_CLOSED', 'freshet: the proxy is shutting down'))
    }
    const idle = this.tryAcquire(name, identity)
    if (idle) return Promise.resolve(idle)
    const p = this.#pool(name)
    const max = this.#settings(name).max_active
    if (p.total >= max) this.#closeOneIdle(p)
    if (p.total < max) {
      p.total++
      p.active++
      return this.#open(p, identity)
    }
    if (p.waiters.length >= this.#config.pools.max_waiting) {
      return Promise.reject(
        new BackpressureError(
          `freshet: ${p.waiters.length} requests already wait for a connection to ${name} (pools.max_waiting)`,
        ),
      )
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        identity,
        key: identity.key,
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = p.waiters.indexOf(waiter)
          if (i >= 0) p.waiters.splice(i, 1)
          reject(
            new BackpressureError(
              `freshet: no connection to ${name} became free within ${QUERY_WAIT_TIMEOUT_MS} ms`,
            ),
          )
        }, QUERY_WAIT_TIMEOUT_MS),
      }
      p.waiters.push(waiter)
    })
  }

  #budget(p: NodePool, tier: string): Budget | null {
    const share = this.#config.pools.tier_budgets[tier]
    if (share === undefined) return null
    let b = p.budgets.get(tier)
    if (b === undefined) {
      b = new Budget(budgetCapacity(share, this.#settings(p.name).max_active))
      p.budgets.set(tier, b)
    }
    return b
  }

  #closeOneIdle(p: NodePool): void {
    for (const list of p.idle.values()) {
      const conn = list.shift()
      if (conn) {
        conn.destroy()
        return
      }
    }
  }

  async #open(p: NodePool, identity: LoginIdentity): Promise<ServerConnection> {
    const node = this.#tracker.nodes().find((n) => n.name === p.name)
    try {
      if (!node) throw new NodeUnavailableError('FRESHET_NODE_UNAVAILABLE', `freshet: unknown node ${p.name}`)
      const conn = await ServerConnection.connect({
        node: p.name,
        ...addressOf(node),
        user: identity.user,
        database: identity.database,
        ...passwordFor(node, identity),
        connectTimeoutMs: this.#settings(p.name).connection_timeout_ms,
        maxPrepared: this.#config.proxy.prepared_statement_cache_size,
        // a runaway read must not hold a replica connection forever; a client's own statement_timeout
        // (startup settings) still applies over it
        ...(p.name !== this.#tracker.primary && this.#config.pools.replica_statement_timeout_ms > 0
          ? { statementTimeoutMs: this.#config.pools.replica_statement_timeout_ms }
          : {}),
      })
      conn.onClose = (c) => this.#onClosed(p, c)
      p.open.add(conn)
      return conn
    } catch (err) {
      p.total--
      p.active--
      if (
        !(err instanceof ServerStartupError) &&
        !(err instanceof FreshetError && err.code === 'FRESHET_AUTH')
      ) {
        this.#tracker.breaker(p.name)?.failure()
      }
      this.#serveWaiter(p)
      throw err
    }
  }

  #onClosed(p: NodePool, conn: ServerConnection): void {
    p.total--
    p.open.delete(conn)
    const list = p.idle.get(conn.key)
    const i = list ? list.indexOf(conn) : -1
    if (i >= 0) list!.splice(i, 1)
    this.#serveWaiter(p)
  }

  /** A slot freed up: open a connection for the first waiter. */
  #serveWaiter(p: NodePool): void {
    const waiter = p.waiters[0]
    if (!waiter || p.total >= this.#settings(p.name).max_active) return
    p.waiters.shift()
    clearTimeout(waiter.timer)
    p.total++
    p.active++
    this.#open(p, waiter.identity).then(waiter.resolve, waiter.reject)
  }

  /** Gives a connection back: reused when clean, else closed. */
  release(conn: ServerConnection): void {
    const budget = conn.budget
    if (budget !== null) {
      conn.budget = null
      budget.release()
    }
    const p = this.#pool(conn.node)
    p.active--
    conn.detach()
    const lifetimeMs = this.#settings(conn.node).max_lifetime_sec * 1000
    if (
      conn.closed ||
      conn.dirty ||
      this.#closed ||
      (lifetimeMs > 0 && Date.now() - conn.createdAt > lifetimeMs) ||
      !this.#atAddress(conn) ||
      (conn.replicaTimeout && conn.node === this.#tracker.primary)
    ) {
      conn.destroy()
      return
    }
    const i = p.waiters.findIndex((w) => w.key === conn.key)
    if (i >= 0) {
      const [waiter] = p.waiters.splice(i, 1)
      clearTimeout(waiter!.timer)
      p.active++
      waiter!.resolve(conn)
      return
    }
    if (p.waiters.length > 0) {
      // someone waits for another user or database: make room for them
      conn.destroy()
      return
    }
    let list = p.idle.get(conn.key)
    if (!list) {
      list = []
      p.idle.set(conn.key, list)
    }
    list.push(conn)
  }

  /**
   * Opens `min_idle` connections per node for the identity of the node's URL (user, database),
   * `pools.warmup.concurrency` at a time, each after a random delay up to `warmup.jitter_ms` (many
   * proxies restarting at once must not storm the servers). Never throws: a node that is down is
   * skipped. Connections are held until all are open, then released, so the pool reaches min_idle.
   */
  async warmUp(): Promise<void> {
    const { concurrency, jitter_ms } = this.#config.pools.warmup
    const tasks: (() => Promise<void>)[] = []
    const held: ServerConnection[] = []
    for (const node of this.#tracker.nodes()) {
      const identity = urlIdentity(node)
      const want = this.#settings(node.name).min_idle
      for (let i = 0; i < want; i++) {
        tasks.push(async () => {
          await new Promise((r) => setTimeout(r, Math.random() * jitter_ms))
          if (this.#closed) return
          const conn = await this.acquire(node.name, identity).catch(() => null)
          if (conn) held.push(conn)
        })
      }
    }
    let next = 0
    const workers = Array.from({ length: Math.min(concurrency, tasks.length) }, async () => {
      while (next < tasks.length) await tasks[next++]!()
    })
    await Promise.all(workers)
    for (const conn of held) this.release(conn)
  }

  /**
   * A connection of freshet's own to node `name`, outside the pool and its limits: logged in as the
   * node URL's user (as the health probes are), named `application_name` in pg_stat_activity.
   */
  async openOwn(name: string, applicationName: string): Promise<ServerConnection> {
    const node = this.#tracker.nodeConfig(name)
    if (node === undefined)
      throw new NodeUnavailableError('FRESHET_NODE_UNAVAILABLE', `freshet: unknown node ${name}`)
    const identity = urlIdentity(node)
    return ServerConnection.connect({
      node: name,
      ...addressOf(node),
      user: identity.user,
      database: identity.database,
      ...passwordFor(node, identity),
      connectTimeoutMs: this.#settings(name).connection_timeout_ms,
      maxPrepared: 0,
      applicationName,
    })
  }

  /** Closes every idle connection to node `name` (a drained route); returns how many. Busy ones stay. */
  closeIdle(name: string): number {
    const p = this.#nodes.get(name)
    if (!p) return 0
    let n = 0
    for (const list of p.idle.values()) {
      for (const conn of [...list]) {
        conn.destroy()
        n++
      }
    }
    return n
  }

  /** Closes a connection that is in use (broken or holding state that cannot be cleaned). */
  discard(conn: ServerConnection): void {
    conn.dirty = true
    this.release(conn)
  }

  #sweep(): void {
    const now = Date.now()
    for (const p of this.#nodes.values()) {
      const idleMs = this.#settings(p.name).idle_timeout_ms
      for (const list of p.idle.values()) {
        for (let i = list.length - 1; i >= 0; i--) {
          const conn = list[i]!
          if (idleMs > 0 && now - conn.lastUsed > idleMs) conn.destroy()
        }
      }
    }
  }

  /** Closes idle connections and refuses new requests; connections in use close on release. */
  close(): void {
    this.#closed = true
    clearInterval(this.#sweeper)
    for (const p of this.#nodes.values()) {
      for (const w of p.waiters.splice(0)) {
        clearTimeout(w.timer)
        w.reject(new FreshetError('FRESHET_POOL_CLOSED', 'freshet: the proxy is shutting down'))
      }
      for (const list of p.idle.values()) for (const conn of [...list]) conn.destroy()
    }
  }
}

const addresses = new WeakMap<NodeConfig, { host: string; port: number }>()

/** Host and port from a node URL (postgres://user:pw@host:port/db). */
export function addressOf(node: NodeConfig): { host: string; port: number } {
  // asked on every release: parse each node config once (configs are replaced, never changed)
  let address = addresses.get(node)
  if (address !== undefined) return address
  const url = new URL(node.url)
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
  address = { host: host || '127.0.0.1', port: url.port ? Number(url.port) : 5432 }
  addresses.set(node, address)
  return address
}

/** Whom the node URL logs in as: its user (default postgres) and database (default the user). */
function urlIdentity(node: NodeConfig): LoginIdentity {
  const url = new URL(node.url)
  const user = decodeURIComponent(url.username) || 'postgres'
  const database = decodeURIComponent(url.pathname.slice(1)) || user
  return loginIdentity(user, database, undefined)
}

/** The node URL's password when it is for this user (or the client's is unknown), else the client's. */
function passwordFor(node: NodeConfig, identity: LoginIdentity): { password?: string } {
  const url = new URL(node.url)
  const urlPassword = url.password ? decodeURIComponent(url.password) : undefined
  const urlUser = decodeURIComponent(url.username)
  if (urlPassword !== undefined && (urlUser === identity.user || identity.password === undefined)) {
    return { password: urlPassword }
  }
  return identity.password !== undefined ? { password: identity.password } : {}
}
