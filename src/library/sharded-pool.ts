// createPool() for a sharded config: a pg.Pool drop-in that decides each statement's shard (ShardedRouting)
// and runs it through that shard's own FreshetPool, so tiers, lag, breakers and retries apply per shard.

import { EventEmitter } from 'node:events'
import pg from 'pg'
import { validateConfig } from '../core/config/parse-config.js'
import type { FreshetConfig, FreshetConfigInput } from '../core/config/schema.js'
import { FreshetError } from '../core/errors.js'
import type { Decision } from '../core/route/decision.js'
import { IDLE_SESSION, type SessionView } from '../core/route/routing-context.js'
import { ShardedRouting, type ShardNodeSnapshot } from '../routing/sharded-routing.js'
import { currentContext, newWriteState, type WriteState } from './context.js'
import { installDevGuard } from './dev-guard.js'
import { type CreatePoolOptions, FreshetPool } from './freshet-pool.js'
import {
  type ConnectCallback,
  type PgQueryOverloads,
  pgQuery,
  settleConnect,
  settleEnd,
  submitOnOwnClient,
} from './pg-query.js'
import { ShardedClient } from './sharded-client.js'

/** pg.Pool's events an inner shard pool passes on (connect/acquire/remove: client; release: err, client). */
const POOL_EVENTS = ['connect', 'acquire', 'remove', 'release'] as const

/** The text of a query in any of pg's call forms. */
function textOf(query: string | pg.QueryConfig): string {
  return typeof query === 'string' ? query : query.text
}

/**
 * The pool `createPool` returns for a config with `shards` (CONTRACT section 9). pg.Pool's surface, like
 * FreshetPool: each statement goes to the shard its key names (hints, `withShardKey`, the statement), then
 * to a node of that shard by its freshness tier; statements naming no single shard go to the aggregate
 * node (or fail, `cross_shard: error`); writes spanning shards fail before anything is sent.
 * Read-your-writes tokens are per shard (`lastWriteToken()`: `shard_0:0/16B3748+shard_1:0/2A01F00`).
 *
 * @example
 * const pool = createPool('sharded.yaml')            // a ShardedPool
 * await pool.query('INSERT INTO orders (id, customer_id) VALUES ($1, $2)', [1, 42])   // shard of 42
 * await withShardKey(42, () => pool.query('SELECT * FROM carts'))
 * const { rows } = await pool.query('SELECT count(*) FROM orders')                     // aggregate node
 */
export class ShardedPool extends EventEmitter {
  /** pg.Pool's query() in every call form, routed by shard then by freshness. */
  declare query: PgQueryOverloads['query']

  readonly routing: ShardedRouting
  readonly #pools = new Map<string, FreshetPool>()
  /** Write state outside any freshet scope, shared by every shard's pool. */
  readonly #globalWrites: WriteState = newWriteState()
  readonly #ready: Promise<void>
  #isReady = false
  #ending = false
  #ended = false

  constructor(config: FreshetConfig, options: CreatePoolOptions = {}) {
    super()
    if (config.fleet) {
      throw new FreshetError(
        'FRESHET_CONFIG_INVALID',
        'fleet: a sharded config cannot join a fleet in this build (docs/sharding.md)',
      )
    }
    this.routing = new ShardedRouting(config)
    this.routing.on('decision', (d, c) => this.emit('decision', d, c))
    for (const [shard, engine] of this.routing.engines()) {
      const pool = new FreshetPool(
        engine.config,
        { ...options, devGuard: false },
        {
          shard,
          engine,
          globalWrites: this.#globalWrites,
        },
      )
      for (const event of POOL_EVENTS) pool.on(event, (...args: unknown[]) => this.emit(event, ...args))
      pool.on('error', (err: unknown) => {
        if (this.listenerCount('error') > 0) this.emit('error', err)
      })
      pool.on('log', (level: string, message: string, fields?: Record<string, unknown>) =>
        this.emit('log', level, message, { shard, ...fields }),
      )
      this.#pools.set(shard, pool)
    }
    const guard = options.devGuard ?? (options.env ?? process.env).NODE_ENV === 'development'
    if (guard) installDevGuard(this, guard === true ? {} : guard)
    this.#ready = this.routing
      .start()
      .then(() => Promise.all([...this.#pools.values()].map((p) => p.ready())))
      .then(() => {
        this.#isReady = true
      })
    this.#ready.catch(() => {})
  }

  /** The engine face for the admin API, metrics and logs: the ShardedRouting (startAdmin({ pool })). */
  get engine(): ShardedRouting {
    return this.routing
  }

  get config(): FreshetConfig {
    return this.routing.config
  }

  /** Resolves once every shard's engine probed its nodes and every shard pool warmed up. */
  ready(): Promise<void> {
    return this.#ready
  }

  /** @internal The pool of one shard (AGGREGATE: the aggregate node's). */
  shardPool(shard: string): FreshetPool {
    const p = this.#pools.get(shard)
    if (!p) throw new Error(`no pool for shard ${shard}`)
    return p
  }

  /** pg.Pool's options, for libraries that read them: the first shard's primary pool settings. */
  get options(): pg.PoolOptions {
    return this.#pools.values().next().value!.options
  }

  get totalCount(): number {
    return this.#sum((p) => p.totalCount)
  }
  get idleCount(): number {
    return this.#sum((p) => p.idleCount)
  }
  get waitingCount(): number {
    return this.#sum((p) => p.waitingCount)
  }
  get expiredCount(): number {
    return this.#sum((p) => p.expiredCount)
  }
  get ending(): boolean {
    return this.#ending
  }
  get ended(): boolean {
    return this.#ended
  }

  #sum(f: (p: FreshetPool) => number): number {
    let n = 0
    for (const p of this.#pools.values()) n += f(p)
    return n
  }

  /** @internal A Submittable on a client of its own, released when it has finished. */
  submit(sub: pg.Submittable): void {
    submitOnOwnClient(() => this.connect(), sub)
  }

  /**
   * Checks out a client: each statement routed on its own while idle; a transaction is held (BEGIN not
   * sent) until its first keyed statement, then pinned to that shard (another shard inside it: ZF003).
   */
  connect(): Promise<ShardedClient & pg.PoolClient>
  connect(callback: ConnectCallback<ShardedClient & pg.PoolClient>): void
  connect(
    callback?: ConnectCallback<ShardedClient & pg.PoolClient>,
  ): Promise<ShardedClient & pg.PoolClient> | undefined {
    const promise = (async () => {
      if (this.#ending) throw new FreshetError('FRESHET_POOL_CLOSED', 'cannot connect: the pool is ending')
      await this.#ready
      return new ShardedClient(this) as ShardedClient & pg.PoolClient
    })()
    return settleConnect(promise, callback)
  }

  /** Closes every shard's pools, monitors and heartbeat, and the aggregate node's. */
  end(): Promise<void>
  end(callback: () => void): void
  end(callback?: () => void): Promise<void> | undefined {
    this.#ending = true
    const promise = (async () => {
      await this.#ready.catch(() => {})
      await Promise.all([...this.#pools.values()].map((p) => p.end()))
      await this.routing.stop()
      this.#ended = true
      this.emit('end')
    })()
    return settleEnd(promise, callback)
  }

  /**
   * The read-your-writes tokens of the current context's writes, one per shard written
   * (`shard_0:0/16B3748+shard_1:0/2A01F00`), or null. `readYourWrites(token, fn)` and the X-Primary-LSN
   * header take it back as is; each shard's reads wait for that shard's LSN only.
   */
  lastWriteToken(): string | null {
    return (currentContext()?.writes ?? this.#globalWrites).tokens.token ?? null
  }

  /**
   * Where a statement would go now and why (shard, then node), without running it or counting it.
   * @example
   * pool.explain('SELECT * FROM orders WHERE customer_id = 42').shard // { shard: 'shard_1', source: 'statement', key: '42' }
   */
  explain(sql: string, session: SessionView = IDLE_SESSION, params?: readonly unknown[]): Decision {
    const c = this.routing.classify(sql)
    return this.routing.decide(c, session, (shard) => this.shardPool(shard).routingContext(), {
      dryRun: true,
      sql,
      key: this.keyInput(params, undefined, null),
    }).decision
  }

  /** Every node of every shard and the aggregate node, with its shard and pool counts. */
  snapshot(): (ShardNodeSnapshot & {
    pool: { total: number; idle: number; waiting: number; active: number } | null
  })[] {
    const counts = new Map<string, { total: number; idle: number; waiting: number; active: number } | null>()
    for (const p of this.#pools.values()) for (const n of p.snapshot()) counts.set(n.name, n.pool)
    return this.routing.snapshot().map((n) => ({ ...n, pool: counts.get(n.name) ?? null }))
  }

  /** Swaps in a new config (higher version; the same shards); throws ConfigError otherwise. */
  reload(config: FreshetConfig | FreshetConfigInput): void {
    this.routing.reload(Object.isFrozen(config) ? (config as FreshetConfig) : validateConfig(config))
  }

  /** @internal The key sources of a statement in the current scope. */
  keyInput(params: readonly unknown[] | undefined, sessionKey: string | undefined, pinned: string | null) {
    // a plain literal (undefined for absent sources): per statement
    return { params, contextKey: currentContext()?.shardKey, sessionKey, pinned }
  }

  /**
   * @internal Decides the shard and node of one statement outside any pin and runs it on that shard's
   * pool (which retries an idempotent replica read on the shard's primary, never a write).
   */
  async run(query: string | pg.QueryConfig, values: unknown[] | undefined): Promise<pg.QueryResult> {
    if (this.#ending) throw new FreshetError('FRESHET_POOL_CLOSED', 'the pool is ending')
    if (!this.#isReady) await this.#ready
    const text = textOf(query)
    const params = values ?? (typeof query === 'string' ? undefined : query.values)
    const started = process.hrtime.bigint()
    const c = this.routing.classify(text)
    const routed = await this.routing.decide(
      c,
      IDLE_SESSION,
      (shard) => this.shardPool(shard).routingContext(),
      { sql: text, key: this.keyInput(params, undefined, null), wait: true, started },
    )
    return this.shardPool(routed.shard.shard).run(query, values, IDLE_SESSION, routed)
  }
}

ShardedPool.prototype.query = pgQuery<ShardedPool>(
  (pool, sub) => pool.submit(sub),
  (pool, query, values) => pool.run(query, values),
)

// Libraries handed an existing pool test `pool instanceof pg.Pool` (see FreshetPool).
Object.setPrototypeOf(ShardedPool.prototype, pg.Pool.prototype)
