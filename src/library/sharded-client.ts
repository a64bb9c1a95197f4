// The client a ShardedPool's connect() hands out: one FreshetClient per shard it has used, the shard of
// each statement decided first; a transaction is held (BEGIN not sent) until its first statement that
// routes, then pinned to that shard, where another shard's statement fails before anything is sent.

import { EventEmitter } from 'node:events'
import pg from 'pg'
import type { Classification } from '../core/classify/classification.js'
import { FreshetError, IN_FAILED_TRANSACTION } from '../core/errors.js'
import type { ShardMap } from '../core/shard/shard-map.js'
import type { ShardDecision } from '../core/shard/shard-router.js'
import type { ShardedRouting, ShardKeyInput } from '../routing/sharded-routing.js'
import { onlyFreshetSettings, SessionState } from '../session/session-state.js'
import { FreshetClient } from './freshet-client.js'
import type { FreshetPool } from './freshet-pool.js'
import { failSubmittable, JobQueue, type PgQueryOverloads, pgQuery, submittableText } from './pg-query.js'

/** What a ShardedClient needs of its pool (declared here: the pool depends on the client, not back). */
export interface ShardedClientPool {
  readonly routing: ShardedRouting
  shardPool(shard: string): FreshetPool
  keyInput(
    params: readonly unknown[] | undefined,
    sessionKey: string | undefined,
    pinned: string | null,
  ): ShardKeyInput
}

/** A statement held after a held BEGIN (replayed, in order, on the shard the transaction pins to). */
interface Held {
  readonly query: string | pg.QueryConfig
  readonly values: unknown[] | undefined
}

/**
 * What PostgreSQL answers a statement in an aborted transaction, raised the way pg raises it (a
 * DatabaseError, `code` 25P02, severity ERROR): after a refusal, code written against pg sees the same
 * error with freshet as without it, and so does the proxy's client (there the server raises it).
 */
function inFailedTransaction(): pg.DatabaseError {
  const err = new pg.DatabaseError(IN_FAILED_TRANSACTION, 0, 'error')
  err.severity = 'ERROR'
  err.code = '25P02'
  return err
}

const result = (command: string): pg.QueryResult => ({
  command,
  rowCount: null,
  oid: 0,
  rows: [],
  fields: [],
})

/**
 * A pg.PoolClient look-alike over a sharded config. Statements are queued in order like pg.Client does.
 *
 * - Outside a transaction each statement goes to its own shard (on that shard's inner client, which pins
 *   to a node for session state exactly as an unsharded client does).
 * - `BEGIN` (and plain `SET` / `SET LOCAL` right after it) is answered here and held; the first statement
 *   after it that routes decides the shard: BEGIN, the held statements and it are sent there. COMMIT or
 *   ROLLBACK with nothing sent is answered here.
 * - Inside the transaction, a statement for another shard fails with ZF003 before it is sent; the
 *   transaction is then aborted as PostgreSQL aborts one after an error: statements fail with PostgreSQL's
 *   25P02 until ROLLBACK (or COMMIT, which rolls back), so nothing is half-applied.
 * - `SET freshet.shard_key` sets this session's key (below hints and `withShardKey`, above the statement).
 */
export class ShardedClient extends EventEmitter {
  declare query: PgQueryOverloads['query']

  readonly #pool: ShardedClientPool
  readonly #clients = new Map<string, FreshetClient>()
  /** freshet's own settings, for the shard key and for replay on inner clients opened later. */
  readonly #state = new SessionState()
  readonly #settings: string[] = []
  /** BEGIN and what followed it, while no statement has named the shard yet. */
  #held: Held[] | null = null
  /** The shard the open transaction is pinned to. */
  #pinned: string | null = null
  /** The routing map the pinned transaction began under: it finishes on its shard after a map change. */
  #pinnedMap: ShardMap | null = null
  /** The map the last statement was routed under (a transaction opened by it keeps it). */
  #routedMap: ShardMap | null = null
  /** A statement was refused inside the (pinned or held) transaction: it is aborted until it ends. */
  #aborted = false
  readonly #queue = new JobQueue()
  #released = false

  constructor(pool: ShardedClientPool) {
    super()
    this.#pool = pool
  }

  /** The shard the open transaction is pinned to, or null. */
  get pinnedShard(): string | null {
    return this.#pinned
  }

  /** The node the open transaction (or session state) holds on the pinned shard, else null. */
  get pinnedNode(): string | null {
    return this.#pinned === null ? null : (this.#clients.get(this.#pinned)?.pinnedNode ?? null)
  }

  /** @internal One statement, queued behind the ones before it. */
  runQueued(query: string | pg.QueryConfig, values: unknown[] | undefined): Promise<pg.QueryResult> {
    return this.#enqueue(() => this.#run(query, values))
  }

  /** @internal Queues a Submittable (routed by its text and values); never rejects. */
  submit(sub: pg.Submittable): Promise<void> {
    return this.#enqueue(async () => {
      const text = submittableText(sub) ?? ''
      const values = (sub as { values?: unknown[] }).values
      const c = this.#pool.routing.classify(text)
      const target = await this.#target(c, text, values)
      if ('answer' in target)
        throw new FreshetError('FRESHET_UNSUPPORTED', 'a cursor cannot run a BEGIN, SET or COMMIT')
      await target.client.submit(sub, target.shard)
      this.#afterStatement(target.shard.shard, c)
    }).then(
      () => {},
      (err: unknown) => failSubmittable(sub, err),
    )
  }

  #enqueue<T>(job: () => Promise<T>): Promise<T> {
    return this.#queue.run(job)
  }

  /** Returns every inner client to its shard's pool. */
  release(err?: Error | boolean): void {
    if (this.#released) return
    this.#released = true
    for (const c of this.#clients.values()) {
      c.removeAllListeners()
      c.release(err)
    }
    this.#clients.clear()
  }

  async #run(query: string | pg.QueryConfig, values: unknown[] | undefined): Promise<pg.QueryResult> {
    if (this.#released) throw new FreshetError('FRESHET_POOL_CLOSED', 'this client was released')
    const text = typeof query === 'string' ? query : query.text
    const c = this.#pool.routing.classify(text)
    if (onlyFreshetSettings(c)) return this.#freshetSetting(query, values, c)
    const params = values ?? (typeof query === 'string' ? undefined : query.values)
    const target = await this.#target(c, text, params, { query, values })
    if ('answer' in target) return target.answer
    try {
      return await target.client.runQueued(query, values, target.shard)
    } finally {
      this.#afterStatement(target.shard.shard, c)
    }
  }

  /**
   * Where one statement runs: answered here (held BEGIN, held SET, COMMIT/ROLLBACK of a held or aborted
   * transaction), or the inner client of its shard with the shard decision; a held transaction is sent to
   * that shard first. Throws the refusals (nothing sent).
   */
  async #target(
    c: Classification,
    sql: string,
    params: readonly unknown[] | undefined,
    statement?: Held,
  ): Promise<{ answer: pg.QueryResult } | { client: FreshetClient; shard: ShardDecision }> {
    const action = c.statementCount === 1 ? c.transaction?.action : undefined
    if (this.#aborted) {
      if (action === 'commit' || action === 'rollback') {
        this.#aborted = false
        const rollback = this.#pool.routing.classify('ROLLBACK')
        if (this.#pinned === null) {
          // refused while BEGIN was still held: nothing was sent anywhere
          this.#held = null
          this.#ended(rollback)
          return { answer: result('ROLLBACK') }
        }
        await this.#clients.get(this.#pinned)!.runQueued('ROLLBACK', undefined)
        this.#afterStatement(this.#pinned, rollback)
        return { answer: result('ROLLBACK') }
      }
      throw inFailedTransaction()
    }
    if (this.#pinned === null && this.#held === null && action === 'begin' && statement) {
      this.#held = [statement]
      this.#state.ready('T')
      return { answer: result('BEGIN') }
    }
    if (this.#held !== null) {
      if (action === 'commit' || action === 'rollback') {
        this.#held = null
        this.#ended(c)
        return { answer: result(action === 'commit' ? 'COMMIT' : 'ROLLBACK') }
      }
      if (statement && c.settings !== undefined && c.settings.length > 0 && c.statementCount === 1) {
        this.#held.push(statement)
        return { answer: result('SET') }
      }
    }
    const map = this.#pinnedMap ?? this.#pool.routing.setup.map
    const key = { ...this.#pool.keyInput(params, this.#state.shardKey, this.#pinned), map }
    let shard: ShardDecision
    try {
      shard = this.#pool.routing.route(c, sql, key)
      this.#routedMap = map
    } catch (err) {
      // like any error inside a transaction (PostgreSQL aborts it): also when BEGIN is still held
      if (this.#pinned !== null || this.#held !== null) this.#aborted = true
      throw err
    }
    const client = this.#clientFor(shard.shard)
    const held = this.#held
    if (held !== null) {
      this.#held = null
      this.#pinned = shard.shard
      this.#pinnedMap = map
      // BEGIN and the SETs after it go where the transaction's first routed statement goes
      for (const h of held) await client.runQueued(h.query, h.values, shard)
    }
    return { client, shard }
  }

  /** After statement `c` on `shard`: the transaction pin ends with its transaction. */
  #afterStatement(shard: string, c: Classification): void {
    const inner = this.#clients.get(shard)
    if (inner?.session.inTransaction) {
      this.#pinned = shard
      this.#pinnedMap ??= this.#routedMap
      this.#state.ready('T')
    } else if (this.#pinned === shard) {
      this.#pinned = null
      this.#pinnedMap = null
      this.#ended(c)
    }
  }

  /** The transaction ended with `c` (COMMIT / ROLLBACK): SET / SET LOCAL freshet.shard_key follow it. */
  #ended(c: Classification): void {
    this.#state.applyPins([c], { before: 'T', after: 'I', failed: false })
    this.#state.ready('I')
  }

  /**
   * `SET freshet.freshness` / `freshet.shard_key` (and RESET, SET LOCAL): kept here (the shard key) and
   * given to the inner clients (the tier): the pinned one inside a transaction, every one (and those
   * opened later) outside.
   */
  async #freshetSetting(
    query: string | pg.QueryConfig,
    values: unknown[] | undefined,
    c: Classification,
  ): Promise<pg.QueryResult> {
    this.#state.ready(this.#pinned !== null || this.#held !== null ? 'T' : 'I')
    const tag = this.#state.consumeSettings(c) ?? 'SET'
    if (this.#held !== null) this.#held.push({ query, values })
    else if (this.#pinned !== null) await this.#clients.get(this.#pinned)!.runQueued(query, values)
    else {
      const text = typeof query === 'string' ? query : query.text
      this.#settings.push(text)
      for (const client of this.#clients.values()) await client.runQueued(text, undefined)
    }
    return result(tag)
  }

  #clientFor(shard: string): FreshetClient {
    let client = this.#clients.get(shard)
    if (client) return client
    client = new FreshetClient(this.#pool.shardPool(shard))
    client.on('notification', (msg) => this.emit('notification', msg))
    client.on('notice', (msg) => this.emit('notice', msg))
    // freshet's own settings made before this shard was first used (answered locally by the client)
    for (const text of this.#settings) void client.runQueued(text, undefined)
    this.#clients.set(shard, client)
    return client
  }
}

ShardedClient.prototype.query = pgQuery<ShardedClient>(
  (client, sub) => void client.submit(sub),
  (client, query, values) => client.runQueued(query, values),
)
