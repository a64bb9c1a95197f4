// The client pool.connect() hands out: routes each statement on its own while idle, pins to one node
// from BEGIN to COMMIT/ROLLBACK, and to one connection for session state until release().

import { EventEmitter } from 'node:events'
import type pg from 'pg'
import { withStatementSpan } from '../admin/statement-span.js'
import { RoutingEngine } from '../backend/routing-engine.js'
import type { Classification } from '../core/classify/classification.js'
import { FreshetError } from '../core/errors.js'
import type { Decision } from '../core/route/decision.js'
import { decisionError } from '../core/route/decision-error.js'
import type { SessionView } from '../core/route/routing-context.js'
import { currentContext } from './context.js'
import type { FreshetPool } from './freshet-pool.js'
import {
  type PgQueryOverloads,
  pgQuery,
  runToDrain,
  type SubmittableLike,
  submittableText,
} from './pg-query.js'

interface Pin {
  node: string
  client: pg.PoolClient
  release: (err?: unknown, destroy?: boolean) => void
  /** Why it is held after the transaction ends (session state), or null. */
  session: string | null
}

/** The freshet setting namespace: consumed by freshet, never sent to PostgreSQL. */
const FRESHET_SETTING = /^freshet\./

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

  readonly #pool: FreshetPool
  #pin: Pin | null = null
  #inTransaction = false
  #transactionWrote = false
  #sessionTier: string | undefined
  #queue: Promise<unknown> = Promise.resolve()
  #released = false
  /** Set by DISCARD ALL / UNLISTEN * etc.: drop the session pin when the transaction ends. */
  #unpinAfterTx = false

  constructor(pool: FreshetPool) {
    super()
    this.#pool = pool
  }

  /** The node this client is pinned to, or null while idle. */
  get pinnedNode(): string | null {
    return this.#pin?.node ?? null
  }

  get session(): SessionView {
    const pin = this.#pin
    return {
      pinnedNode: pin?.node ?? null,
      pinReason: pin
        ? this.#inTransaction
          ? 'transaction'
          : ((pin.session as SessionView['pinReason']) ?? 'transaction')
        : null,
      inTransaction: this.#inTransaction,
      ...(this.#sessionTier !== undefined ? { sessionTier: this.#sessionTier } : {}),
    }
  }

  /** @internal One statement, queued behind the ones before it (query() without a Submittable). */
  runQueued(query: string | pg.QueryConfig, values: unknown[] | undefined): Promise<pg.QueryResult> {
    return this.#enqueue(() => this.#run(query, values))
  }

  /**
   * @internal Queues a Submittable; resolves when it has finished on the server (or failed: the error
   * was handed to it through handleError, as pg.Client does). Never rejects.
   */
  submit(sub: pg.Submittable): Promise<void> {
    return this.#enqueue(() => this.#runSubmittable(sub)).then(
      () => {},
      (err: unknown) => {
        ;(sub as SubmittableLike).handleError?.(err)
      },
    )
  }

  #enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(job)
    this.#queue = run.catch(() => {})
    return run
  }

  /** Returns the client to the pool; a pinned connection goes back (destroyed if `err` is given). */
  release(err?: Error | boolean): void {
    if (this.#released) return
    this.#released = true
    const pin = this.#pin
    const inTransaction = this.#inTransaction
    this.#pin = null
    this.#inTransaction = false
    if (pin) {
      pin.client.removeAllListeners('notification')
      pin.client.removeAllListeners('notice')
      // Closed rather than reused: a connection released with an error (pg's rule), one holding session
      // state (temp tables, LISTEN, SET, advisory locks) or one left inside a transaction.
      const reason = err
        ? err === true
          ? new Error('released with error')
          : err
        : pin.session
          ? new Error(`session state (${pin.session})`)
          : inTransaction
            ? new Error('released inside a transaction')
            : undefined
      pin.release(reason, reason !== undefined)
    }
  }

  async #run(query: string | pg.QueryConfig, values: unknown[] | undefined): Promise<pg.QueryResult> {
    if (this.#released) throw new FreshetError('FRESHET_POOL_CLOSED', 'this client was released')
    const text = typeof query === 'string' ? query : query.text
    const pool = this.#pool
    const engine = pool.engine

    // freshet's own settings are consumed here (SET freshet.freshness = 'eventual').
    const classification = engine.classify(text)
    if (
      classification.settings?.length &&
      classification.settings.every((s) => FRESHET_SETTING.test(s.name))
    ) {
      for (const s of classification.settings) {
        if (s.name === 'freshet.freshness') this.#sessionTier = s.value?.toLowerCase() ?? undefined
      }
      return {
        command: classification.settings[0]?.value === null ? 'RESET' : 'SET',
        rowCount: null,
        oid: 0,
        rows: [],
        fields: [],
      }
    }

    const exec = (client: pg.PoolClient): Promise<pg.QueryResult> =>
      values === undefined ? client.query(query as pg.QueryConfig) : client.query(query as string, values)
    if (this.#pin) return this.#runPinned(this.#pin, classification, exec)

    const { decision } = await engine.routeAwait(text, this.session, pool.routingContext())
    const tx = classification.transaction?.action
    const needsPin = tx === 'begin' || classification.pin !== undefined
    if (!needsPin) return pool.run(query, values, this.session, { decision, classification })
    return this.#runPinned(await this.#pinTo(decision), classification, exec, decision)
  }

  /** A Submittable: routed by its text (to the primary when it has none), run on a pinned connection. */
  async #runSubmittable(sub: pg.Submittable): Promise<void> {
    if (this.#released) throw new FreshetError('FRESHET_POOL_CLOSED', 'this client was released')
    const text = submittableText(sub)
    const pool = this.#pool
    const classification = pool.engine.classify(text ?? '')
    const exec = (client: pg.PoolClient) => runToDrain(client, sub)
    if (this.#pin) {
      await this.#runPinned(this.#pin, classification, exec)
      return
    }
    // No text to classify: nothing proves it is a read, so it goes where writes go.
    const context = text === null ? { ...pool.routingContext(), primary: true } : pool.routingContext()
    const { decision } = await pool.engine.routeAwait(text ?? '', this.session, context)
    await this.#runPinned(await this.#pinTo(decision), classification, exec, decision)
  }

  /** Starts a pin: holds one connection on the decided node. */
  async #pinTo(decision: Decision): Promise<Pin> {
    if (decision.target === null) throw decisionError(decision)!
    const { client, release } = await this.#pool.acquire(decision.target, decision.tier)
    client.on('notification', (msg) => this.emit('notification', msg))
    client.on('notice', (msg) => this.emit('notice', msg))
    const pin: Pin = { node: decision.target, client, release, session: null }
    this.#pin = pin
    return pin
  }

  async #runPinned<T>(
    pin: Pin,
    c: Classification,
    exec: (client: pg.PoolClient) => Promise<T>,
    decision?: Decision,
  ): Promise<T> {
    const pool = this.#pool
    // Still decided (and reported) when pinned, so that logs, metrics and traces see pinned statements.
    const decided = decision ?? pool.engine.decide(c, this.session, pool.routingContext())
    const tx = c.transaction?.action
    let res: T
    try {
      res = await withStatementSpan(decided, c, () => exec(pin.client), currentContext()?.traceparent)
    } catch (err) {
      if (!this.#inTransaction && !pin.session && pin === this.#pin) this.#unpin()
      throw err
    }
    if (tx === 'begin') {
      this.#inTransaction = true
      this.#transactionWrote = false
    }
    if (c.requiresPrimary && c.kind !== 'transaction' && c.kind !== 'session') this.#transactionWrote = true
    if (c.pin && !(c.pin === 'session_set' && this.#inTransaction)) pin.session = c.pin
    if (c.unpin === 'all') this.#unpinAfterTx = true
    const ends = tx === 'commit' || tx === 'rollback' || tx === 'prepare'
    if (ends) {
      const wrote = this.#transactionWrote && tx === 'commit' && pool.engine.tracker.primary === pin.node
      this.#inTransaction = false
      this.#transactionWrote = false
      if (wrote)
        pool.recordWrite(pool.config.consistency.causal ? await RoutingEngine.currentLsn(pin.client) : null)
    } else if (
      !this.#inTransaction &&
      c.requiresPrimary &&
      c.kind === 'write' &&
      pin.node === pool.engine.tracker.primary
    ) {
      // An autocommit write on a session-pinned connection.
      pool.recordWrite(pool.config.consistency.causal ? await RoutingEngine.currentLsn(pin.client) : null)
    }
    if (!this.#inTransaction && (pin.session === null || this.#unpinAfterTx)) {
      this.#unpinAfterTx = false
      if (pin.session !== null) pin.session = null
      this.#unpin()
    }
    return res
  }

  #unpin(): void {
    const pin = this.#pin
    if (!pin) return
    this.#pin = null
    pin.client.removeAllListeners('notification')
    pin.client.removeAllListeners('notice')
    pin.release()
  }
}

FreshetClient.prototype.query = pgQuery<FreshetClient>(
  (client, sub) => void client.submit(sub),
  (client, query, values) => client.runQueued(query, values),
)
