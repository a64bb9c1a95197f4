// The client pool.connect() hands out: routes each statement on its own while idle, pins to one node
// from BEGIN to COMMIT/ROLLBACK, and to one connection for session state until release().

import { EventEmitter } from 'node:events'
import type pg from 'pg'
import { RoutingEngine } from '../backend/routing-engine.js'
import type { Classification } from '../core/classify/classification.js'
import { FreshetError } from '../core/errors.js'
import type { Decision } from '../core/route/decision.js'
import { decisionError } from '../core/route/decision-error.js'
import type { SessionView } from '../core/route/routing-context.js'
import type { FreshetPool } from './freshet-pool.js'

type Callback = (err: Error | null, result?: pg.QueryResult) => void

interface Pin {
  node: string
  client: pg.PoolClient
  release: (err?: unknown) => void
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

  query<R extends pg.QueryResultRow = any>(
    query: string | pg.QueryConfig,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>>
  query(query: string | pg.QueryConfig, callback: Callback): void
  query(query: string | pg.QueryConfig, values: unknown[] | undefined, callback: Callback): void
  query(
    query: string | pg.QueryConfig,
    valuesOrCallback?: unknown[] | Callback,
    callback?: Callback,
  ): Promise<pg.QueryResult> | void {
    const cb = typeof valuesOrCallback === 'function' ? valuesOrCallback : callback
    const values = typeof valuesOrCallback === 'function' ? undefined : valuesOrCallback
    const run = this.#queue.then(() => this.#run(query, values))
    this.#queue = run.catch(() => {})
    if (!cb) return run
    run.then(
      (res) => cb(null, res),
      (err) => cb(err),
    )
  }

  /** Returns the client to the pool; a pinned connection goes back (destroyed if `err` is given). */
  release(err?: Error | boolean): void {
    if (this.#released) return
    this.#released = true
    const pin = this.#pin
    this.#pin = null
    this.#inTransaction = false
    if (pin) {
      pin.client.removeAllListeners('notification')
      pin.client.removeAllListeners('notice')
      // A connection holding session state (temp tables, LISTEN, SET) must not serve anyone else as is.
      pin.release(
        err
          ? err === true
            ? new Error('released with error')
            : err
          : pin.session
            ? new Error('session state')
            : undefined,
      )
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

    if (this.#pin) return this.#runPinned(this.#pin, query, values, classification)

    const { decision } = await engine.routeAwait(text, this.session, pool.routingContext())
    const tx = classification.transaction?.action
    const needsPin = tx === 'begin' || classification.pin !== undefined
    if (!needsPin) return pool.run(query, values, this.session, { decision, classification })
    if (decision.target === null) throw decisionError(decision)!
    // A pin starts here: hold one connection on the decided node.
    const { client, release } = await pool.acquire(decision.target, decision.tier)
    client.on('notification', (msg) => this.emit('notification', msg))
    client.on('notice', (msg) => this.emit('notice', msg))
    const pin: Pin = { node: decision.target, client, release, session: null }
    this.#pin = pin
    return this.#runPinned(pin, query, values, classification, decision)
  }

  async #runPinned(
    pin: Pin,
    query: string | pg.QueryConfig,
    values: unknown[] | undefined,
    c: Classification,
    decision?: Decision,
  ): Promise<pg.QueryResult> {
    const pool = this.#pool
    if (!decision) {
      // Still decided (and reported) so that logs and metrics see pinned statements.
      pool.engine.decide(c, this.session, pool.routingContext())
    }
    const tx = c.transaction?.action
    let res: pg.QueryResult
    try {
      res = await (values === undefined
        ? pin.client.query(query as pg.QueryConfig)
        : pin.client.query(query as string, values))
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
