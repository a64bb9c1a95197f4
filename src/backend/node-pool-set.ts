// Connection pools per node over node-postgres: bounded, jittered warm-up, per-tier budgets,
// backpressure, validation after idle, breaker and latency bookkeeping.

import pg from 'pg'
import type { FreshetConfig, NodeConfig } from '../core/config/schema.js'
import { BackpressureError, NodeUnavailableError } from '../core/errors.js'

export { isRecoveryConflict } from '../core/errors.js'

import { Budget, budgetCapacity } from './tier-budget.js'
import type { TopologyTracker } from './topology-tracker.js'

/** Extra node-postgres settings applied to every node pool (ssl, types, Client class ...). */
export type PgPoolExtras = Omit<pg.PoolConfig, 'connectionString' | 'max' | 'min'>

interface NodePool {
  readonly config: NodeConfig
  readonly pool: pg.Pool
  readonly isPrimaryRole: boolean
  readonly budgets: Map<string, Budget>
  /** Client -> epoch ms it was last released, for validation after long idle. */
  readonly lastUsed: WeakMap<pg.PoolClient, number>
  active: number
}

/** True when an error means the node or connection failed (not the statement). */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string }
  if (!e || typeof e !== 'object') return false
  const code = e.code ?? ''
  if (/^(ECONN|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_)/.test(code)) return true
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') return true
  return /timeout exceeded when trying to connect|Connection terminated|connection ended|Client has encountered a connection error/i.test(
    e.message ?? '',
  )
}

/**
 * Owns one pg.Pool per node. Pools for removed nodes drain and close; the tracker hears about every
 * connection failure (breaker) and response time (least_latency).
 */
export class NodePoolSet {
  readonly #pools = new Map<string, NodePool>()
  #config: FreshetConfig
  readonly #tracker: TopologyTracker
  readonly #extras: PgPoolExtras
  #ended = false
  readonly #onPoolEvent: (event: string, node: string, ...args: unknown[]) => void

  constructor(
    config: FreshetConfig,
    tracker: TopologyTracker,
    extras: PgPoolExtras = {},
    onPoolEvent: (event: string, node: string, ...args: unknown[]) => void = () => {},
  ) {
    this.#config = config
    this.#tracker = tracker
    this.#extras = extras
    this.#onPoolEvent = onPoolEvent
    tracker.setActiveCounter((name) => this.#pools.get(name)?.active ?? 0)
    this.sync(config)
  }

  /** Creates pools for new nodes and drains pools of nodes that left the config. */
  sync(config: FreshetConfig, nodes: readonly NodeConfig[] = this.#tracker.nodes()): void {
    this.#config = config
    const wanted = new Map(nodes.map((n) => [n.name, n]))
    for (const [name, np] of this.#pools) {
      const next = wanted.get(name)
      if (!next || next.url !== np.config.url) {
        this.#pools.delete(name)
        void np.pool.end().catch(() => {})
      }
    }
    for (const node of nodes) if (!this.#pools.has(node.name)) this.#pools.set(node.name, this.#create(node))
  }

  /** Names of nodes with a pool. */
  names(): string[] {
    return [...this.#pools.keys()]
  }

  /** Opens `min_idle` connections per node, `warmup.concurrency` at a time with jitter; never throws. */
  async warmUp(): Promise<void> {
    const { concurrency, jitter_ms } = this.#config.pools.warmup
    const tasks: (() => Promise<void>)[] = []
    // Hold every warm-up connection until all are open: released at once, the pool would hand the
    // same idle connection to the next task and never reach min_idle.
    const held: pg.PoolClient[] = []
    for (const np of this.#pools.values()) {
      const min = this.#settings(np).min_idle
      for (let i = 0; i < min; i++) {
        tasks.push(async () => {
          await delay(Math.random() * jitter_ms)
          const client = await np.pool.connect().catch(() => null)
          // A node that is down at start must not hold up the others: just move on.
          if (client) held.push(client)
        })
      }
    }
    let next = 0
    const workers = Array.from({ length: Math.min(concurrency, tasks.length) }, async () => {
      while (next < tasks.length) await tasks[next++]!()
    })
    await Promise.all(workers)
    for (const c of held) c.release()
  }

  /**
   * Checks out a connection on a node for a tier. Waits within the tier's budget; fails fast with
   * BackpressureError beyond `pools.max_waiting` waiters.
   */
  async acquire(
    node: string,
    tier: string | null,
  ): Promise<{ client: pg.PoolClient; release: (err?: unknown, destroy?: boolean) => void }> {
    let np = this.#pools.get(node)
    if (np !== undefined && !this.#ended && np.isPrimaryRole !== (node === this.#tracker.primary)) {
      // the node changed role (failover): a pool with the settings of its new role takes over, and
      // the old one closes as its connections come back
      const old = np
      np = this.#create(old.config)
      this.#pools.set(node, np)
      void old.pool.end().catch(() => {})
    }
    if (!np || this.#ended) {
      throw new NodeUnavailableError(
        'FRESHET_NODE_UNAVAILABLE',
        `no pool for node '${node}' (removed or pool ended)`,
      )
    }
    const budget = tier ? this.#budget(np, tier) : null
    const waiting = np.pool.waitingCount + (budget?.waiting ?? 0)
    if (waiting >= this.#config.pools.max_waiting) {
      throw new BackpressureError(
        `${waiting} requests already waiting for a connection to '${node}' (pools.max_waiting ${this.#config.pools.max_waiting}); ` +
          'retry later or raise pools.max_active',
        { details: { node, waiting } },
      )
    }
    const gate = budget?.acquire()
    if (gate) await gate
    let client: pg.PoolClient
    try {
      client = await np.pool.connect()
    } catch (err) {
      budget?.release()
      this.#tracker.breaker(node)?.failure()
      throw new NodeUnavailableError(
        'FRESHET_NODE_UNAVAILABLE',
        `cannot connect to '${node}': ${(err as Error).message}`,
        {
          cause: err,
        },
      )
    }
    if (this.#needsValidation(np, client)) {
      try {
        await this.#validate(np, client)
      } catch (err) {
        budget?.release()
        this.#tracker.breaker(node)?.failure()
        throw err
      }
    }
    np.active++
    this.#onPoolEvent('acquire', node, client)
    let released = false
    return {
      client,
      // destroy: the connection holds state nobody else may inherit (session state, an open transaction)
      release: (err?: unknown, destroy = false) => {
        if (released) return
        released = true
        np.active--
        budget?.release()
        const broken = destroy || (err !== undefined && isConnectionError(err))
        if (!broken) np.lastUsed.set(client, Date.now())
        this.#onPoolEvent('release', node, err, client)
        client.release(broken ? ((err as Error | undefined) ?? new Error('destroyed on release')) : undefined)
      },
    }
  }

  /** pg.Pool-like counters summed over nodes, and per node. */
  counts(): {
    total: number
    idle: number
    waiting: number
    expired: number
    perNode: Record<string, { total: number; idle: number; waiting: number; active: number }>
  } {
    let total = 0
    let idle = 0
    let waiting = 0
    let expired = 0
    const perNode: Record<string, { total: number; idle: number; waiting: number; active: number }> = {}
    for (const [name, np] of this.#pools) {
      total += np.pool.totalCount
      idle += np.pool.idleCount
      waiting += np.pool.waitingCount
      expired += np.pool.expiredCount
      perNode[name] = {
        total: np.pool.totalCount,
        idle: np.pool.idleCount,
        waiting: np.pool.waitingCount,
        active: np.active,
      }
    }
    return { total, idle, waiting, expired, perNode }
  }

  async end(): Promise<void> {
    this.#ended = true
    const pools = [...this.#pools.values()]
    this.#pools.clear()
    await Promise.all(pools.map((np) => np.pool.end().catch(() => {})))
  }

  #settings(np: NodePool) {
    return np.isPrimaryRole ? this.#config.pools.primary : this.#config.pools.replicas
  }

  #create(node: NodeConfig): NodePool {
    // by the node's role now, not its place in the config: a promoted replica gets the primary's pool
    const isPrimaryRole = node.name === this.#tracker.primary
    const s = isPrimaryRole ? this.#config.pools.primary : this.#config.pools.replicas
    const timeout = this.#config.pools.replica_statement_timeout_ms
    const pool = new pg.Pool({
      application_name: 'freshet',
      ...this.#extras,
      connectionString: node.url,
      max: s.max_active,
      min: s.min_idle,
      connectionTimeoutMillis: s.connection_timeout_ms,
      idleTimeoutMillis: s.idle_timeout_ms,
      maxLifetimeSeconds: s.max_lifetime_sec,
      // Replicas only: a statement_timeout so a runaway read cannot hold a replica connection forever.
      ...(!isPrimaryRole && timeout > 0 ? { options: `-c statement_timeout=${timeout}` } : {}),
    })
    pool.on('error', (err) => {
      // An idle connection died (node restarted, network): pg removes it; the breaker hears about it.
      if (isConnectionError(err)) this.#tracker.breaker(node.name)?.failure()
      this.#onPoolEvent('error', node.name, err)
    })
    pool.on('connect', (client) => {
      // pg emits 'error' on a client whose socket dies even while a query runs (the query also
      // rejects), and pg.Pool listens only while the client is idle: without this a connection reset
      // during a checked-out query is an uncaught 'error' event that ends the process. The query's
      // rejection reaches the caller and the breaker; the dead client is discarded on release.
      client.on('error', () => {})
      this.#onPoolEvent('connect', node.name, client)
    })
    pool.on('remove', (client) => this.#onPoolEvent('remove', node.name, client))
    return { config: node, pool, isPrimaryRole, budgets: new Map(), lastUsed: new WeakMap(), active: 0 }
  }

  #budget(np: NodePool, tier: string): Budget | null {
    const share = this.#config.pools.tier_budgets[tier]
    if (share === undefined) return null
    let b = np.budgets.get(tier)
    if (!b) {
      b = new Budget(budgetCapacity(share, this.#settings(np).max_active))
      np.budgets.set(tier, b)
    }
    return b
  }

  #needsValidation(np: NodePool, client: pg.PoolClient): boolean {
    if (np.isPrimaryRole) return false
    const interval = this.#config.pools.replicas.validation_interval_ms
    const last = np.lastUsed.get(client)
    return interval > 0 && last !== undefined && Date.now() - last >= interval
  }

  async #validate(np: NodePool, client: pg.PoolClient): Promise<void> {
    // A connection idle longer than validation_interval_ms may be dead (replica restarted): check it
    // with an empty query rather than fail the caller's statement.
    try {
      await client.query('')
    } catch (err) {
      client.release(err as Error)
      throw new NodeUnavailableError(
        'FRESHET_NODE_UNAVAILABLE',
        `connection to '${np.config.name}' failed validation`,
        {
          cause: err,
        },
      )
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
