// The client pool.connect() hands out: routes each statement on its own while idle, pins to one node
// from BEGIN to COMMIT/ROLLBACK, and to one connection for session state until release().

import { EventEmitter } from 'node:events'
import type pg from 'pg'
import type { NodePoolSet } from '../backend/node-pool-set.js'
import { isConnectionError } from '../backend/node-pool-set.js'
import { reportOutcome } from '../core/breaker/breaker-policy.js'
import type { Classification } from '../core/classify/classification.js'
import type { FreshetConfig } from '../core/config/schema.js'
import { FreshetError } from '../core/errors.js'
import type { Decision } from '../core/route/decision.js'
import { decisionError } from '../core/route/decision-error.js'
import type { RoutingContext, SessionView } from '../core/route/routing-context.js'
import type { ShardDecision } from '../core/shard/shard-router.js'
import type { RoutingEngine } from '../routing/routing-engine.js'
import { SessionState, type TxStatus } from '../session/session-state.js'
import { statementsForPins } from '../session/split-statements.js'
import { withStatementSpan } from '../telemetry/statement-span.js'
import { currentContext } from './context.js'
import {
  failSubmittable,
  JobQueue,
  type PgQueryOverloads,
  pgQuery,
  runToDrain,
  submittableText,
} from './pg-query.js'

interface Pin {
  node: string
  client: pg.PoolClient
  release: (err?: unknown, destroy?: boolean) => void
}

/** A pg client's transaction status after its last ReadyForQuery ('I' before the first). */
function txStatusOf(client: pg.PoolClient): TxStatus {
  const status = (client as { getTransactionStatus?: () => string | null }).getTransactionStatus?.()
  return status === 'T' || status === 'E' ? status : 'I'
}

/**
 * What a checked-out client needs from the pool that made it. Declared here, so the pool depends on
 * the client and not the other way round (a FreshetPool is one).
 */
export interface ClientPool {
  readonly engine: RoutingEngine
  readonly config: FreshetConfig
  routingContext(): RoutingContext
  recordWriteOn(client: pg.PoolClient | pg.Client): Promise<void>
  acquire(node: string, tier: string | null): ReturnType<NodePoolSet['acquire']>
  run(
    query: string | pg.QueryConfig,
    values: unknown[] | undefined,
    session: SessionView,
    decided: { decision: Decision; classification: Classification } | null,
  ): Promise<pg.QueryResult>
}

/**
 * A pg.PoolClient look-alike. Statements are queued in order like pg.Client does, so callers may fire
 * BEGIN, INSERT, COMMIT without awaiting each.
 */
export class FreshetClient extends EventEmitter {
  /**
   * pg.Client's query() in every call form (pg's overloads, PgQueryOverloads), queued in order. A
   * Submittable (pg-cursor, pg-query-stream) is routed by its text, runs on one connection of the decided
   * node, and holds this client's queue until it finishes (read to the end or closed), as on pg.Client.
   * @example
   * const cursor = client.query(new Cursor('/* FRESHNESS: EVENTUAL *\/ SELECT * FROM events'))
   * const rows = await cursor.read(100)
   */
  declare query: PgQueryOverloads['query']

  readonly #pool: ClientPool
  #pin: Pin | null = null
  /**
   * The session machine the proxy uses too: pins kept per reason (temp tables, LISTEN, SET, advisory
   * locks, WITH HOLD cursors, prepared statements), state made in a transaction pinned at COMMIT only,
   * freshet's own SET/RESET/SET LOCAL freshet.freshness.
   */
  readonly #state = new SessionState()
  readonly #queue = new JobQueue()
  #released = false

  constructor(pool: ClientPool) {
    super()
    this.#pool = pool
  }

  /** The node this client is pinned to, or null while idle. */
  get pinnedNode(): string | null {
    return this.#pin?.node ?? null
  }

  get session(): SessionView {
    return this.#state.view()
  }

  /**
   * @internal One statement, queued behind the ones before it (query() without a Submittable). `shard`:
   * the shard decision a ShardedClient made, carried on the Decision.
   */
  runQueued(
    query: string | pg.QueryConfig,
    values: unknown[] | undefined,
    shard?: ShardDecision,
  ): Promise<pg.QueryResult> {
    return this.#enqueue(() => this.#run(query, values, shard))
  }

  /**
   * @internal Queues a Submittable; resolves when it has finished on the server (or failed: the error
   * was handed to it through handleError, as pg.Client does). Never rejects.
   */
  submit(sub: pg.Submittable, shard?: ShardDecision): Promise<void> {
    return this.#enqueue(() => this.#runSubmittable(sub, shard)).then(
      () => {},
      (err: unknown) => failSubmittable(sub, err),
    )
  }

  #enqueue<T>(job: () => Promise<T>): Promise<T> {
    return this.#queue.run(job)
  }

  /** Returns the client to the pool; a pinned connection goes back (destroyed if `err` is given). */
  release(err?: Error | boolean): void {
    if (this.#released) return
    this.#released = true
    const pin = this.#pin
    this.#pin = null
    if (pin) this.#letGo(pin, err ? (err === true ? new Error('released with error') : err) : undefined)
    else this.#state.setPinned(null)
  }

  async #run(
    query: string | pg.QueryConfig,
    values: unknown[] | undefined,
    shard: ShardDecision | undefined,
  ): Promise<pg.QueryResult> {
    if (this.#released) throw new FreshetError('FRESHET_POOL_CLOSED', 'this client was released')
    const text = typeof query === 'string' ? query : query.text
    const pool = this.#pool
    const engine = pool.engine

    // freshet's own settings are consumed here (SET freshet.freshness = 'eventual').
    const classification = engine.classify(text)
    const tag = this.#state.consumeSettings(classification)
    if (tag !== null) return { command: tag, rowCount: null, oid: 0, rows: [], fields: [] }

    const exec = (client: pg.PoolClient): Promise<pg.QueryResult> =>
      values === undefined ? client.query(query as pg.QueryConfig) : client.query(query as string, values)
    if (this.#pin) return this.#runPinned(this.#pin, classification, text, exec, undefined, shard)

    const { decision } = await engine.decide(classification, this.session, pool.routingContext(), {
      wait: true,
      ...(shard ? { shard } : {}),
    })
    const tx = classification.transaction?.action
    const needsPin = tx === 'begin' || classification.pin !== undefined
    if (!needsPin) return pool.run(query, values, this.session, { decision, classification })
    return this.#runPinned(await this.#pinTo(decision), classification, text, exec, decision)
  }

  /** A Submittable: routed by its text (to the primary when it has none), run on a pinned connection. */
  async #runSubmittable(sub: pg.Submittable, shard: ShardDecision | undefined): Promise<void> {
    if (this.#released) throw new FreshetError('FRESHET_POOL_CLOSED', 'this client was released')
    const text = submittableText(sub)
    const pool = this.#pool
    const classification = pool.engine.classify(text ?? '')
    const exec = (client: pg.PoolClient) => runToDrain(client, sub)
    if (this.#pin) {
      await this.#runPinned(this.#pin, classification, text, exec, undefined, shard)
      return
    }
    // No text to classify: nothing proves it is a read, so it goes where writes go.
    const context = text === null ? { ...pool.routingContext(), primary: true } : pool.routingContext()
    const { decision } = await pool.engine.decide(classification, this.session, context, {
      wait: true,
      ...(shard ? { shard } : {}),
    })
    await this.#runPinned(await this.#pinTo(decision), classification, text, exec, decision)
  }

  /** Starts a pin: holds one connection on the decided node. */
  async #pinTo(decision: Decision): Promise<Pin> {
    if (decision.target === null) throw decisionError(decision)!
    const { client, release } = await this.#pool.acquire(decision.target, decision.tier)
    client.on('notification', (msg) => this.emit('notification', msg))
    client.on('notice', (msg) => this.emit('notice', msg))
    const pin: Pin = { node: decision.target, client, release }
    this.#pin = pin
    this.#state.setPinned(pin.node)
    return pin
  }

  async #runPinned<T>(
    pin: Pin,
    c: Classification,
    text: string | null,
    exec: (client: pg.PoolClient) => Promise<T>,
    decision?: Decision,
    shard?: ShardDecision,
  ): Promise<T> {
    const pool = this.#pool
    const state = this.#state
    // Still decided (and reported) when pinned, so that logs, metrics and traces see pinned statements.
    const decided =
      decision ?? pool.engine.decide(c, this.session, pool.routingContext(), shard ? { shard } : {}).decision
    // the session machine's record of the status (fed from pg's ReadyForQuery in #settle)
    const before = state.txStatus
    const onPrimary = pool.engine.tracker.primary === pin.node
    let res: T
    const breaker = pool.engine.tracker.breaker(pin.node)
    try {
      res = await withStatementSpan(decided, c, () => exec(pin.client), currentContext()?.traceparent)
      reportOutcome(breaker, 'answered')
    } catch (err) {
      reportOutcome(breaker, isConnectionError(err) ? 'connection_failed' : 'answered')
      const after = this.#settle(pin, c, text, before, true)
      // a failed string of several statements may have committed part of itself (the session rule)
      if (state.tokenDue(c, { before, after, failed: true, onPrimary }))
        await this.#recordWrite(pin).catch(() => {})
      if (this.#pin === pin && !state.keepsConnection()) this.#unpin()
      throw err
    }
    const after = this.#settle(pin, c, text, before, false)
    // an autocommit write, or the COMMIT of a transaction that wrote: the token is the primary's LSN
    // now, read on the same connection
    if (state.tokenDue(c, { before, after, failed: false, onPrimary })) await this.#recordWrite(pin)
    if (this.#pin === pin && !state.keepsConnection()) this.#unpin()
    return res
  }

  /**
   * After a statement on a pinned connection: the session takes the status pg's client last read from
   * ReadyForQuery, then its pins, releases and transaction boundaries (each statement of a
   * multi-statement string on its own); returns the status after it.
   */
  #settle(pin: Pin, c: Classification, text: string | null, before: TxStatus, failed: boolean): TxStatus {
    const after = txStatusOf(pin.client)
    this.#state.ready(after)
    const engine = this.#pool.engine
    this.#state.applyPins(statementsForPins(c, text, engine, [c]), { before, after, failed })
    return after
  }

  async #recordWrite(pin: Pin): Promise<void> {
    const pool = this.#pool
    await pool.recordWriteOn(pin.client)
  }

  #unpin(): void {
    const pin = this.#pin
    if (!pin) return
    this.#pin = null
    this.#letGo(pin, undefined)
  }

  /**
   * Gives the pinned connection back: reused, or closed when released with an error (pg's rule) or
   * when the session machine says so (releaseConnection: open transaction, session state held or
   * changed on it), the proxy's rule too.
   */
  #letGo(pin: Pin, err: Error | undefined): void {
    const state = this.#state
    const held = state.sessionPin
    const inTransaction = state.inTransaction
    const reuse = state.releaseConnection({ unknownState: err !== undefined })
    pin.client.removeAllListeners('notification')
    pin.client.removeAllListeners('notice')
    const reason =
      err ??
      (reuse
        ? undefined
        : new Error(
            held !== null
              ? `session state (${held})`
              : inTransaction
                ? 'released inside a transaction'
                : 'session state was made or released on it',
          ))
    pin.release(reason, reason !== undefined)
  }
}

FreshetClient.prototype.query = pgQuery<FreshetClient>(
  (client, sub) => void client.submit(sub),
  (client, query, values) => client.runQueued(query, values),
)
