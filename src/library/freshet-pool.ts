// createPool(): a drop-in for node-postgres' pg.Pool that routes every statement with freshet's core.

import { EventEmitter } from 'node:events'
import type { Span } from '@opentelemetry/api'
import pg from 'pg'
import { type DiscoveryState, ReplicaDiscovery } from '../backend/discovery.js'
import {
  isConnectionError,
  isRecoveryConflict,
  NodePoolSet,
  type PgPoolExtras,
} from '../backend/node-pool-set.js'
import { reportOutcome } from '../core/breaker/breaker-policy.js'
import type { Classification } from '../core/classify/classification.js'
import { validateConfig } from '../core/config/parse-config.js'
import type { FreshetConfig, FreshetConfigInput } from '../core/config/schema.js'
import { FreshetError, NodeUnavailableError } from '../core/errors.js'
import { laterToken } from '../core/read-token.js'
import type { Decision } from '../core/route/decision.js'
import { decisionError } from '../core/route/decision-error.js'
import { IDLE_SESSION, type RoutingContext, type SessionView } from '../core/route/routing-context.js'
import { shardToken } from '../core/shard/shard-tokens.js'
import type { NodeSnapshot } from '../core/topology/node-snapshot.js'
import { FleetMember } from '../fleet/fleet-member.js'
import { RoutingEngine } from '../routing/routing-engine.js'
import { mayRetryOnPrimary, reusesConnection, touchesSessionState, writes } from '../session/session-state.js'
import { withStatementSpan } from '../telemetry/statement-span.js'
import { type ContextStore, currentContext, newWriteState, type WriteState } from './context.js'
import { type DevGuardOptions, installDevGuard } from './dev-guard.js'
import { FreshetClient } from './freshet-client.js'
import {
  type ConnectCallback,
  type PgQueryOverloads,
  pgQuery,
  settleConnect,
  settleEnd,
  submitOnOwnClient,
} from './pg-query.js'

export interface CreatePoolOptions {
  /** node-postgres settings applied to every node's pool (ssl, types, statement_timeout, Client ...). */
  pg?: PgPoolExtras
  /** Environment for ${VAR} substitution when the config is a path or an object; default process.env. */
  env?: NodeJS.ProcessEnv
  /**
   * Warn when a scope reads from a replica a table it just wrote (see installDevGuard). Default: on
   * when NODE_ENV is 'development'; `false` turns it off.
   */
  devGuard?: boolean | DevGuardOptions
}

/**
 * @internal One shard of a ShardedPool: the shard engine (owned and started by ShardedRouting), the
 * shard's name (its tokens live under it in the scope's per-shard token) and the write state shared by
 * every shard's pool outside any scope.
 */
export interface ShardScope {
  readonly shard: string
  readonly engine: RoutingEngine
  readonly globalWrites: WriteState
}

/** The text of a query in any of pg's call forms. */
function textOf(query: string | pg.QueryConfig): string {
  return typeof query === 'string' ? query : query.text
}

/**
 * The routing engine plus the node pools, exposing pg.Pool's surface. Reads go where their freshness
 * tier allows; writes, locking reads and anything unclassifiable go to the primary.
 */
export class FreshetPool extends EventEmitter {
  /**
   * Runs one statement wherever freshet decides, in every pg.Pool call form (pg's overloads, PgQueryOverloads).
   * A Submittable (pg-cursor, pg-query-stream) gets a client of its own, released when it finishes: unlike
   * pg.Pool, which never releases the client of a Submittable passed to pool.query().
   * @example
   * const { rows } = await pool.query('SELECT * FROM users WHERE id = $1', [id])
   * pool.query({ text: 'SELECT 1', rowMode: 'array' }, (err, res) => {})
   * pool.query(new QueryStream('/* FRESHNESS: EVENTUAL *\/ SELECT * FROM events')).pipe(out)
   */
  declare query: PgQueryOverloads['query']

  readonly engine: RoutingEngine
  /**
   * This process's membership in a fleet (config `fleet`): it registers, acknowledges proposals and
   * applies committed configs and fleet flags; null without a `fleet` section.
   */
  readonly fleet: FleetMember | null
  readonly #pools: NodePoolSet
  /** Polls `cluster.discovery` (when configured, also after a reload adds it) from start to end(). */
  readonly #discovery: ReplicaDiscovery
  readonly #ready: Promise<void>
  /** Set once #ready resolved, so the hot path skips an await. */
  #isReady = false
  /** Write state used when a query runs outside any freshet scope (scripts, jobs). */
  readonly #globalWrites: WriteState
  /** Set for one shard of a ShardedPool. */
  readonly #scope: ShardScope | null
  #ending = false
  #ended = false

  /** @param scope internal: one shard of a ShardedPool (use createPool for a sharded config) */
  constructor(config: FreshetConfig, options: CreatePoolOptions = {}, scope?: ShardScope) {
    super()
    this.#scope = scope ?? null
    this.#globalWrites = scope?.globalWrites ?? newWriteState()
    this.engine = scope?.engine ?? new RoutingEngine(config)
    this.engine.on('decision', (d, c) => this.emit('decision', d, c))
    this.engine.on('log', (level, message, fields) => this.emit('log', level, message, fields))
    const guard = options.devGuard ?? (options.env ?? process.env).NODE_ENV === 'development'
    if (guard) installDevGuard(this, guard === true ? {} : guard)
    // pg.Pool's events with its arguments: connect/acquire/remove (client), release (err, client), error (err).
    this.#pools = new NodePoolSet(config, this.engine.tracker, options.pg, (event, _node, ...args) => {
      if (event !== 'error' || this.listenerCount('error') > 0) this.emit(event, ...args)
    })
    this.engine.on('config', (next) => this.#pools.sync(next))
    this.#discovery = new ReplicaDiscovery(this.engine)
    this.fleet =
      config.fleet && !scope
        ? new FleetMember(this.engine, { kind: 'library', ...(options.env ? { env: options.env } : {}) })
        : null
    // the fleet first: its committed config (or the local cache of it) may replace the one given here
    this.#ready = Promise.resolve(this.fleet?.start())
      .then(() => this.engine.start())
      .then(() => {
        if (!this.#ending) this.#discovery.start()
      })
      .then(() => this.#pools.warmUp())
      .then(() => {
        this.#isReady = true
      })
    // An unhandled rejection of the background start would crash the app; queries surface it instead.
    this.#ready.catch(() => {})
  }

  /** Resolves once the parser is loaded, nodes were probed once and pools warmed up. */
  ready(): Promise<void> {
    return this.#ready
  }

  get config(): FreshetConfig {
    return this.engine.config
  }

  /**
   * pg.Pool's options, for libraries that read them: the primary pool's settings (no connection string,
   * so no password), typed as pg's.
   */
  get options(): pg.PoolOptions {
    const s = this.config.pools.primary
    return {
      max: s.max_active,
      min: s.min_idle,
      maxUses: Number.POSITIVE_INFINITY,
      allowExitOnIdle: false,
      maxLifetimeSeconds: s.max_lifetime_sec,
      idleTimeoutMillis: s.idle_timeout_ms,
      connectionTimeoutMillis: s.connection_timeout_ms,
    }
  }

  get totalCount(): number {
    return this.#pools.counts().total
  }
  get idleCount(): number {
    return this.#pools.counts().idle
  }
  get waitingCount(): number {
    return this.#pools.counts().waiting
  }
  get expiredCount(): number {
    return this.#pools.counts().expired
  }
  get ending(): boolean {
    return this.#ending
  }
  get ended(): boolean {
    return this.#ended
  }

  /** @internal A Submittable on a client of its own (pinned while it runs), released when it has finished. */
  submit(sub: pg.Submittable): void {
    submitOnOwnClient(() => this.connect(), sub)
  }

  /**
   * Checks out a client that routes each statement on its own while idle and pins to one node from
   * BEGIN to COMMIT/ROLLBACK (and for session state such as temp tables or LISTEN until release()).
   */
  connect(): Promise<FreshetClient & pg.PoolClient>
  connect(callback: ConnectCallback<FreshetClient & pg.PoolClient>): void
  connect(
    callback?: ConnectCallback<FreshetClient & pg.PoolClient>,
  ): Promise<FreshetClient & pg.PoolClient> | undefined {
    const promise = (async () => {
      if (this.#ending) throw new FreshetError('FRESHET_POOL_CLOSED', 'cannot connect: the pool is ending')
      await this.#ready
      return new FreshetClient(this) as FreshetClient & pg.PoolClient
    })()
    return settleConnect(promise, callback)
  }

  /** Closes every node pool, monitor and the heartbeat. */
  end(): Promise<void>
  end(callback: () => void): void
  end(callback?: () => void): Promise<void> | undefined {
    this.#ending = true
    const promise = (async () => {
      await this.#ready.catch(() => {})
      await this.fleet?.stop()
      this.#discovery.stop()
      await this.engine.stop()
      await this.#pools.end()
      this.#ended = true
      this.emit('end')
    })()
    return settleEnd(promise, callback)
  }

  /** The read-your-writes token (primary WAL LSN) of the current context's last write, or null. */
  lastWriteToken(): string | null {
    return this.#writes().tokens.token ?? null
  }

  /**
   * Where a statement would go now and why, without running it.
   * @example
   * pool.explain('/* FRESHNESS: NEAR_RT *\/ SELECT * FROM products').target // 'replica_1'
   */
  explain(sql: string, session: SessionView = IDLE_SESSION): Decision {
    const engine = this.engine
    return engine.decide(engine.classify(sql), session, this.routingContext(), { dryRun: true }).decision
  }

  /** Nodes with role, lag_ms, replay_lsn, healthy, breaker and checked_at, plus pool counts. */
  snapshot(): (NodeSnapshot & {
    pool: { total: number; idle: number; waiting: number; active: number } | null
  })[] {
    const counts = this.#pools.counts().perNode
    return this.engine.snapshot().map((n) => ({ ...n, pool: counts[n.name] ?? null }))
  }

  /**
   * Where replica discovery stands (`status: 'disabled'` without `cluster.discovery`); startAdmin({ pool })
   * serves it as `discovery` in GET /api/v1/topology.
   */
  discoveryState(): DiscoveryState {
    return this.#discovery.state()
  }

  /** Swaps in a new config (higher version only); throws ConfigError otherwise. */
  reload(config: FreshetConfig | FreshetConfigInput): void {
    this.engine.reload(Object.isFrozen(config) ? (config as FreshetConfig) : validateConfig(config))
  }

  /** @internal The routing context of the current async scope (a shard's pool: that shard's token and last write). */
  routingContext(): RoutingContext {
    const store: ContextStore | undefined = currentContext()
    const writes = store?.writes ?? this.#globalWrites
    const shard = this.#scope?.shard
    // a shard's pool: only that shard's LSN of the per-shard token, and that shard's last write
    const minLsn =
      shard === undefined
        ? writes.tokens.minToken(store?.minLsn)
        : laterToken(shardToken(store?.minLsn, shard), shardToken(writes.tokens.token, shard))
    const at = shard === undefined ? writes.tokens.lastWriteAt : writes.atByShard?.get(shard)
    return {
      ...(store?.tier !== undefined ? { tier: store.tier } : {}),
      ...(store?.primary ? { primary: true } : {}),
      ...(minLsn ? { minLsn } : {}),
      ...(at !== undefined ? { lastWriteAt: at } : {}),
    }
  }

  /** @internal Records a write of the current scope: token and time (a shard's pool: under its shard). */
  recordWrite(lsn: string | null): void {
    const writes = this.#writes()
    const shard = this.#scope?.shard
    if (shard === undefined) {
      writes.tokens.record(lsn)
      return
    }
    const at = Date.now()
    writes.atByShard ??= new Map()
    writes.atByShard.set(shard, at)
    // the store keeps the later token; for per-shard tokens laterToken merges shard by shard
    writes.tokens.record(lsn ? `${shard}:${lsn}` : null, at)
  }

  /**
   * @internal A write committed on `client`: records it with its token, read on that connection (causal
   * consistency). The write stands even if the read fails (the connection went after the commit): the
   * caller is not told it failed; reads that honour tokens go to the primary until a later token is
   * known (TokenStore.lose).
   */
  async recordWriteOn(client: { query(sql: string): Promise<pg.QueryResult> }): Promise<void> {
    if (!this.config.consistency.causal) {
      this.recordWrite(null)
      return
    }
    let lsn: string
    try {
      lsn = await RoutingEngine.currentLsn(client)
    } catch {
      this.recordWrite(null)
      // a shard's pool keeps per-shard tokens in the request's store: there the write is only timed
      if (this.#scope?.shard === undefined) this.#writes().tokens.lose()
      return
    }
    this.recordWrite(lsn)
  }

  /** @internal Checks out a connection on a node (client pins). */
  acquire(node: string, tier: string | null) {
    return this.#pools.acquire(node, tier)
  }

  /**
   * @internal Decides and runs one statement outside any pin: retries an idempotent read once on the
   * primary when a replica fails or cancels it for a recovery conflict; never retries a write.
   */
  async run(
    query: string | pg.QueryConfig,
    values: unknown[] | undefined,
    session: SessionView,
    decided: { decision: Decision; classification: Classification } | null,
  ): Promise<pg.QueryResult> {
    if (this.#ending) throw new FreshetError('FRESHET_POOL_CLOSED', 'the pool is ending')
    if (!this.#isReady) await this.#ready
    let routed = decided ?? this.#decide(textOf(query), session)
    if ('then' in routed) routed = await routed
    const { decision, classification } = routed
    return withStatementSpan(
      decision,
      classification,
      (span) => this.#execute(decision, classification, query, values, span),
      currentContext()?.traceparent,
    )
  }

  /** Classifies and decides one statement outside any pin (waiting for a replica to replay the token). */
  #decide(sql: string, session: SessionView): ReturnType<RoutingEngine['decide']> {
    const started = process.hrtime.bigint()
    const engine = this.engine
    return engine.decide(engine.classify(sql), session, this.routingContext(), { wait: true, started })
  }

  async #execute(
    decision: Decision,
    classification: Classification,
    query: string | pg.QueryConfig,
    values: unknown[] | undefined,
    span: Span,
  ): Promise<pg.QueryResult> {
    if (decision.target === null) throw decisionError(decision)!
    const primary = this.engine.tracker.primary
    try {
      // outside a pin every statement is autocommit: a write owes its token at once (the session rule)
      return await this.#runOn(
        decision.target,
        decision.tier,
        query,
        values,
        decision.target === primary && writes(classification),
        reusable(classification),
      )
    } catch (err) {
      const retry =
        (err instanceof NodeUnavailableError || isConnectionError(err) || isRecoveryConflict(err)) &&
        mayRetryOnPrimary(classification, {
          failedNode: decision.target,
          primary,
          retried: false,
          answered: false,
          inTransaction: false,
          pinned: false,
        })
      if (!retry) throw err
      this.emit(
        'log',
        'warn',
        `retrying a read on the primary after ${decision.target} failed: ${(err as Error).message}`,
      )
      span.addEvent('freshet.retry', { 'freshet.failed_target': decision.target, 'freshet.target': primary })
      span.setAttribute('freshet.retried_on', primary)
      return this.#runOn(primary, decision.tier, query, values, false, reusable(classification))
    }
  }

  async #runOn(
    node: string,
    tier: string | null,
    query: string | pg.QueryConfig,
    values: unknown[] | undefined,
    captureLsn: boolean,
    reuse: boolean,
  ): Promise<pg.QueryResult> {
    const { client, release } = await this.#pools.acquire(node, tier)
    const started = performance.now()
    const breaker = this.engine.tracker.breaker(node)
    try {
      const res = await (values === undefined
        ? client.query(query as pg.QueryConfig)
        : client.query(query as string | pg.QueryConfig, values))
      this.engine.tracker.observeLatency(node, performance.now() - started)
      reportOutcome(breaker, 'answered')
      if (captureLsn) {
        // Same connection, right after the autocommit write: its LSN covers the write's commit record.
        await this.recordWriteOn(client)
      }
      if (reuse) release()
      else release(new Error('session state was made or released on it'), true)
      return res
    } catch (err) {
      reportOutcome(breaker, isConnectionError(err) ? 'connection_failed' : 'answered')
      release(err)
      throw err
    }
  }

  #writes(): WriteState {
    return currentContext()?.writes ?? this.#globalWrites
  }
}

FreshetPool.prototype.query = pgQuery<FreshetPool>(
  (pool, sub) => pool.submit(sub),
  (pool, query, values) => pool.run(query, values, IDLE_SESSION, null),
)

// Libraries handed an existing pool test `pool instanceof pg.Pool` (@prisma/adapter-pg otherwise treats it
// as a PoolConfig and opens its own pg.Pool to localhost). FreshetPool overrides every member they call;
// pg.Pool.prototype's own prototype is EventEmitter's, so events behave the same.
Object.setPrototypeOf(FreshetPool.prototype, pg.Pool.prototype)

/**
 * Whether pool.query's connection goes back to the pool after an autocommit statement: the session
 * machine's rule (reusesConnection) for a session of that one statement.
 */
function reusable(c: Classification): boolean {
  return reusesConnection({
    txStatus: 'I',
    sessionPin: null,
    touched: touchesSessionState(c),
    unknownState: false,
  })
}
