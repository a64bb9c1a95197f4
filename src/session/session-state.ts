// One client session's routing state: transaction and pin tracking, the session tier, the RYW token.

import type { Classification, PinReason, TransactionAction } from '../core/classify/classification.js'
import type { RoutingContext, SessionView } from '../core/route/routing-context.js'
import { TokenStore } from './token-store.js'

/** The freshet setting namespace: consumed by freshet, never sent to PostgreSQL. */
const FRESHET_SETTING = /^freshet\./

/** ReadyForQuery's transaction status: idle, in a transaction, in a failed transaction. */
export type TxStatus = 'I' | 'T' | 'E'

/** How a job (one simple query, or one extended batch up to its Sync) ended on the server. */
export interface StatementOutcome {
  /** Transaction status before it ran. */
  readonly before: TxStatus
  /** Transaction status after it (its ReadyForQuery). */
  readonly after: TxStatus
  /** The server answered with an error: the statement that failed, and any after it, did not happen. */
  readonly failed: boolean
}

/**
 * Session state PostgreSQL keeps when the transaction that created it rolls back: session advisory locks
 * and SQL-level prepared statements. The rest (temp tables, LISTEN, SET, WITH HOLD cursors) is undone.
 */
const SURVIVES_ROLLBACK: ReadonlySet<PinReason> = new Set(['advisory_lock', 'prepared_statement'])
/**
 * Releases that take effect at once even inside a transaction that later rolls back
 * (pg_advisory_unlock_all, DEALLOCATE ALL, CLOSE ALL). DISCARD TEMP, UNLISTEN * and RESET ALL wait for COMMIT.
 */
const RELEASES_AT_ONCE: ReadonlySet<PinReason | 'all'> = new Set([
  'advisory_lock',
  'prepared_statement',
  'cursor_with_hold',
])

/** A pin or release made inside the open transaction, waiting for its COMMIT. */
interface PendingPin {
  readonly pin?: PinReason
  readonly unpin?: PinReason | 'all'
}

/**
 * What a face (proxy client, library client) knows about one session between statements. The views it
 * hands to the engine are cached and rebuilt only when something changes, so deciding allocates nothing
 * per statement.
 *
 * Pins: each kind of session state (temp tables, LISTEN, advisory locks, SET, WITH HOLD cursors,
 * SQL PREPARE) is kept on its own, so that releasing one kind (DISCARD TEMP, UNLISTEN *,
 * pg_advisory_unlock_all(), RESET ALL, CLOSE ALL, DEALLOCATE ALL) never forgets another; DISCARD ALL
 * releases them all. Inside a transaction, state that a ROLLBACK undoes only counts from its COMMIT.
 *
 * @example
 * const s = new SessionState()
 * s.consumeSettings(engine.classify("SET freshet.freshness = 'eventual'")) // 'SET': answered locally
 * engine.decide(engine.classify(sql), s.view(), s.context())
 */
export class SessionState {
  #pinnedNode: string | null = null
  /** The one record of the transaction status, fed from the server's ReadyForQuery (see ready()). */
  #txStatus: TxStatus = 'I'
  /** Session state held on the server connection, oldest first. */
  readonly #pins = new Set<PinReason>()
  /** Pins and releases of the open transaction that COMMIT makes real and ROLLBACK drops, in order. */
  readonly #pending: PendingPin[] = []
  #startupTier: string | undefined
  #sessionTier: string | undefined
  /** The session tier when the open transaction first changed it (restored by ROLLBACK), or null. */
  #tierAtBegin: { readonly tier: string | undefined } | null = null
  /** SET LOCAL freshet.freshness in the open transaction: its value (undefined: the default), or null. */
  #localTier: { readonly tier: string | undefined } | null = null
  /** SET freshet.shard_key (sharded configs: the session's key source, CONTRACT section 9). */
  #shardKey: string | undefined
  /** The shard key when the open transaction first changed it (restored by ROLLBACK), or null. */
  #shardKeyAtBegin: { readonly key: string | undefined } | null = null
  /** SET LOCAL freshet.shard_key in the open transaction, or null. */
  #localShardKey: { readonly key: string | undefined } | null = null
  /** The read-your-writes token store (the library keeps the same kind per async scope). */
  readonly #tokens = new TokenStore()
  #view: SessionView | null = null
  /** The open transaction (or the statement running outside one) wrote on the primary. */
  #wrote = false
  /** A statement on the connection held now made or released session state (see releaseConnection). */
  #touched = false
  #context: RoutingContext | null = null

  /** The tier in effect: SET LOCAL in the open transaction, else SET freshet.freshness, else the startup tier. */
  get sessionTier(): string | undefined {
    return this.#localTier !== null ? this.#localTier.tier : this.#sessionTier
  }

  /** Sets the session tier (as a SET outside a transaction would). */
  set sessionTier(tier: string | undefined) {
    this.#sessionTier = tier === undefined ? undefined : tier.toLowerCase()
    this.#view = null
  }

  /**
   * The tier given at startup (`-c freshet.freshness=...` in `options`, or a `freshet.freshness`
   * startup parameter): the session's tier, and what RESET freshet.freshness returns to.
   */
  get startupTier(): string | undefined {
    return this.#startupTier
  }

  set startupTier(tier: string | undefined) {
    this.#startupTier = tier === undefined ? undefined : tier.toLowerCase()
    this.sessionTier = this.#startupTier
  }

  /**
   * The session's shard key (sharded configs): SET LOCAL freshet.shard_key in the open transaction, else
   * SET freshet.shard_key; undefined after RESET or when never set. Kept as written (not lower-cased).
   */
  get shardKey(): string | undefined {
    return this.#localShardKey !== null ? this.#localShardKey.key : this.#shardKey
  }

  /** The read-your-writes token (LSN of this session's last write), if any. */
  get token(): string | undefined {
    return this.#tokens.token
  }

  /** Session state that holds this session on one server connection (the oldest still held), or null. */
  get sessionPin(): PinReason | null {
    if (this.#pins.size === 0) return null
    for (const reason of this.#pins) return reason
    return null
  }

  /** Every kind of session state held on the server connection, oldest first. */
  get sessionPins(): readonly PinReason[] {
    return [...this.#pins]
  }

  /** The transaction status the server last reported: 'I' idle, 'T' in a transaction, 'E' in a failed one. */
  get txStatus(): TxStatus {
    return this.#txStatus
  }

  /** A transaction is open (the last status was not idle). */
  get inTransaction(): boolean {
    return this.#txStatus !== 'I'
  }

  /**
   * The server's ReadyForQuery: the transaction status now (the proxy reads it off the wire, the
   * library from pg's client, the MySQL face from the statements it ran). Returns the status before.
   * The session owns the status; the faces read it back (`txStatus`, `inTransaction`).
   * @example
   * const before = state.ready('T') // after BEGIN
   */
  ready(status: TxStatus): TxStatus {
    const before = this.#txStatus
    if (status !== before) {
      this.#txStatus = status
      this.#view = null
    }
    return before
  }

  /** The node this session is held on (open transaction or session state), or null. */
  setPinned(node: string | null): void {
    if (node === this.#pinnedNode) return
    this.#pinnedNode = node
    this.#view = null
  }

  /**
   * Applies what a finished job did to the session: the pins and releases its statements carry and the
   * transactions they began and ended. `statements`: the job's statements in the order they ran (one
   * classification per statement where known; a multi-statement classification is taken as a whole).
   *
   * Outside a transaction a pin holds at once. Inside one, state that ROLLBACK undoes (temp table,
   * LISTEN, SET, WITH HOLD cursor) waits for COMMIT, while a session advisory lock or an SQL PREPARE
   * holds at once (PostgreSQL keeps them after a ROLLBACK). Releases go the same way. A failed job's
   * releases are ignored (the statement may not have run), its pins are kept: holding a connection too
   * long is safe, letting state go with it is not.
   */
  applyPins(statements: readonly Classification[], outcome: StatementOutcome): void {
    const { before, after, failed } = outcome
    // a transaction whose end was not reported (cannot happen through the proxy): keep its pins
    if (before === 'I' && this.#pending.length > 0) this.#endTransaction('unsure')
    let inTx = before !== 'I'
    let aborted = before === 'E'
    for (let i = 0; i < statements.length; i++) {
      const c = statements[i]!
      if (touchesSessionState(c)) this.#touched = true
      const many = c.transactions
      if (many !== undefined) {
        for (const t of many) {
          const next = this.#transaction(t.action, inTx, aborted, failed)
          inTx = next.inTx
          aborted = next.aborted
        }
      } else if (c.transaction !== undefined) {
        const next = this.#transaction(c.transaction.action, inTx, aborted, failed)
        inTx = next.inTx
        aborted = next.aborted
      }
      if (c.pin !== undefined) this.#pin(c.pin, inTx)
      // a multi-statement string taken whole: which came first, the pin or the release, is unknown
      if (c.unpin !== undefined && !failed && c.statementCount <= 1) this.#unpin(c.unpin, inTx)
    }
    if (after === 'I' && inTx) {
      // the transaction ended without a COMMIT or ROLLBACK seen here (an error in an implicit
      // transaction, a COMMIT that failed): keep what it pinned, forget what it released
      this.#endTransaction(failed || aborted ? 'unsure' : 'commit')
    }
  }

  /** One transaction-control action; returns whether a transaction is open (and failed) after it. */
  #transaction(
    action: TransactionAction,
    inTx: boolean,
    aborted: boolean,
    failed: boolean,
  ): { inTx: boolean; aborted: boolean } {
    switch (action) {
      case 'begin':
        return inTx ? { inTx, aborted } : { inTx: true, aborted: false }
      case 'commit':
      case 'prepare': // PREPARE TRANSACTION keeps the session's SETs, like COMMIT
        // COMMIT of a failed transaction is a ROLLBACK; a COMMIT that fails (deferred constraint) too
        if (inTx) this.#endTransaction(aborted ? 'rollback' : failed ? 'unsure' : 'commit')
        return { inTx: false, aborted: false }
      case 'rollback':
        if (inTx) this.#endTransaction('rollback')
        return { inTx: false, aborted: false }
      case 'rollback_to':
        // what came after the savepoint is undone: a pin may be gone (kept anyway), a release too
        if (inTx) this.#dropPendingReleases()
        return { inTx, aborted: false }
      default:
        return { inTx, aborted }
    }
  }

  #pin(reason: PinReason, inTx: boolean): void {
    if (inTx && !SURVIVES_ROLLBACK.has(reason)) this.#pending.push({ pin: reason })
    else if (!this.#pins.has(reason)) {
      this.#pins.add(reason)
      this.#view = null
    }
  }

  #unpin(reason: PinReason | 'all', inTx: boolean): void {
    if (inTx && !RELEASES_AT_ONCE.has(reason)) this.#pending.push({ unpin: reason })
    else {
      if (reason === 'all') this.#pins.clear()
      else this.#pins.delete(reason)
      this.#view = null
    }
  }

  #dropPendingReleases(): void {
    let kept = 0
    for (const p of this.#pending) if (p.pin !== undefined) this.#pending[kept++] = p
    this.#pending.length = kept
  }

  /**
   * The open transaction ended. 'commit': its pins and releases become real. 'rollback': they go.
   * 'unsure' (it may have committed or not): its pins are kept and its releases dropped.
   */
  #endTransaction(how: 'commit' | 'rollback' | 'unsure'): void {
    if (how !== 'rollback') {
      for (const p of this.#pending) {
        const unpin = p.unpin
        if (p.pin !== undefined) this.#pins.add(p.pin)
        else if (how !== 'commit' || unpin === undefined) continue
        else if (unpin === 'all') this.#pins.clear()
        else this.#pins.delete(unpin)
      }
    }
    this.#pending.length = 0
    if (how === 'rollback' && this.#tierAtBegin !== null) this.#sessionTier = this.#tierAtBegin.tier
    this.#tierAtBegin = null
    this.#localTier = null
    if (how === 'rollback' && this.#shardKeyAtBegin !== null) this.#shardKey = this.#shardKeyAtBegin.key
    this.#shardKeyAtBegin = null
    this.#localShardKey = null
    this.#view = null
  }

  /** Forgets session state (the server connection that held it is gone). */
  clearSessionPin(): void {
    this.#pins.clear()
    this.#pending.length = 0
    this.#view = null
  }

  /** Records a write that committed: its LSN (null when not causal, or not known yet) and the time. */
  recordWrite(lsn: string | null, at: number = Date.now()): void {
    this.#tokens.record(lsn, at)
    this.#context = null
  }

  /**
   * The token of a write recorded before without one (recordWrite(null)) is known now: `lsn`, or null
   * when it could not be read. Then reads that honour tokens go to the primary (the token given to the
   * engine is not a valid LSN: CONTRACT section 3 rule 6's fallback) until a later write's token is
   * known, which covers this write too (it was read after both ended).
   */
  recordToken(lsn: string | null): void {
    if (lsn === null) this.#tokens.lose()
    else this.#tokens.raise(lsn)
    this.#context = null
  }

  /**
   * For a statement whose settings are all `freshet.*` (SET/RESET freshet.freshness): applies them and
   * returns the command tag to answer with ('SET' or 'RESET'); null when the statement is not freshet's.
   *
   * As in PostgreSQL: RESET (or SET ... TO DEFAULT) returns to the startup tier; a SET inside a
   * transaction is undone by its ROLLBACK; SET LOCAL lasts until the transaction ends, and outside a
   * transaction it does nothing (PostgreSQL warns: see {@link localOutsideTransaction}).
   */
  consumeSettings(c: Classification): 'SET' | 'RESET' | null {
    const inTransaction = this.inTransaction
    const settings = c.settings
    if (!settings || !onlyFreshetSettings(c)) return null
    for (const s of settings) {
      if (s.name === 'freshet.shard_key') {
        this.#setShardKey(s.value ?? undefined, s.local, inTransaction)
        continue
      }
      if (s.name !== 'freshet.freshness') continue
      const tier = s.value === null ? this.#startupTier : s.value.toLowerCase()
      if (s.local) {
        if (inTransaction) this.#localTier = { tier }
      } else {
        if (inTransaction && this.#tierAtBegin === null) this.#tierAtBegin = { tier: this.#sessionTier }
        this.#sessionTier = tier
        this.#localTier = null
      }
      this.#view = null
    }
    return settings[0]!.value === null && !settings[0]!.local ? 'RESET' : 'SET'
  }

  #setShardKey(key: string | undefined, local: boolean, inTransaction: boolean): void {
    if (local) {
      if (inTransaction) this.#localShardKey = { key }
      return
    }
    if (inTransaction && this.#shardKeyAtBegin === null) this.#shardKeyAtBegin = { key: this.#shardKey }
    this.#shardKey = key
    this.#localShardKey = null
  }

  /**
   * "Wrote, so fetch a token": after a statement ran (`onPrimary`: on the primary), tracks whether the
   * open transaction wrote and answers whether a read-your-writes token is owed now: after an
   * autocommit write, or at the COMMIT of a transaction that wrote, never after a ROLLBACK. A failed
   * single statement wrote nothing; a failed string of several may have committed part of itself, so
   * it counts. `functionCall`: the proxy's FunctionCall message (no classification, may write).
   * @example
   * if (state.tokenDue(c, { before, after, failed, onPrimary: node === primary })) fetchToken()
   */
  tokenDue(
    c: Classification | null,
    outcome: StatementOutcome & { readonly onPrimary: boolean; readonly functionCall?: boolean },
  ): boolean {
    const { before, after } = outcome
    if (before === 'I' && after !== 'I') this.#wrote = false // a transaction starts afresh
    const wrote = c === null ? outcome.functionCall === true : writes(c)
    if (wrote && outcome.onPrimary && (!outcome.failed || (c !== null && c.statementCount > 1)))
      this.#wrote = true
    const due = this.#wrote && after === 'I' && (before === 'I' || c?.transaction?.action === 'commit')
    if (after === 'I') this.#wrote = false
    return due
  }

  /**
   * Keep-or-release: the connection stays with the session while a transaction is open (the last
   * ReadyForQuery was not idle), while session state pins it, while an extended-protocol batch is open
   * (`batchOpen`, proxy) or in session pool mode (`sessionMode`, proxy).
   */
  keepsConnection(options: { batchOpen?: boolean; sessionMode?: boolean } = {}): boolean {
    return (
      this.#txStatus !== 'I' ||
      this.sessionPin !== null ||
      options.batchOpen === true ||
      options.sessionMode === true
    )
  }

  /**
   * Return-or-close, asked by both faces when the session lets its connection go (see
   * reusesConnection); forgets the connection: the session is held on no node after it.
   * `unknownState`: the face cannot vouch for the connection (released with an error, in the middle
   * of a statement, startup settings not applied).
   * @example
   * const reuse = state.releaseConnection({ unknownState: busy }) // false: close it
   */
  releaseConnection(options: { readonly unknownState?: boolean } = {}): boolean {
    const reuse = reusesConnection({
      txStatus: this.#txStatus,
      sessionPin: this.sessionPin,
      touched: this.#touched,
      unknownState: options.unknownState === true,
    })
    this.#touched = false
    this.setPinned(null)
    return reuse
  }

  /** The SessionView for the engine (cached until something changes). */
  view(): SessionView {
    if (this.#view) return this.#view
    const inTransaction = this.inTransaction
    const pinReason: SessionView['pinReason'] =
      this.#pinnedNode === null ? null : inTransaction ? 'transaction' : (this.sessionPin ?? 'transaction')
    const tier = this.sessionTier
    this.#view = Object.freeze({
      pinnedNode: this.#pinnedNode,
      pinReason,
      inTransaction,
      ...(tier !== undefined ? { sessionTier: tier } : {}),
    })
    return this.#view
  }

  /** The RoutingContext for the engine: token and last write time (cached until a write). */
  context(): RoutingContext {
    if (this.#context) return this.#context
    const { lastWriteAt } = this.#tokens
    const token = this.#tokens.minToken()
    this.#context = Object.freeze({
      ...(token !== undefined ? { minLsn: token } : {}),
      ...(lastWriteAt !== undefined ? { lastWriteAt } : {}),
    })
    return this.#context
  }
}

/** A single SET/RESET of freshet's own settings only (`freshet.*`): answered by freshet, never by PostgreSQL. */
/**
 * Retry eligibility, the same in both faces: a statement whose replica failed may run again on the
 * primary, once, when it is a read, nothing of its answer reached the client, and no transaction or
 * session state ties it to the failed connection. (Which errors qualify is each face's I/O: a lost or
 * refused connection, an unavailable node, a recovery conflict.)
 * @example
 * mayRetryOnPrimary(c, { failedNode: 'replica_1', primary: 'primary', retried: false, answered: false, inTransaction: false, pinned: false }) // true for a read
 */
export function mayRetryOnPrimary(
  c: Classification | null,
  facts: {
    readonly failedNode: string
    readonly primary: string
    readonly retried: boolean
    readonly answered: boolean
    readonly inTransaction: boolean
    readonly pinned: boolean
  },
): boolean {
  return !(
    c === null ||
    c.kind !== 'read' ||
    c.requiresPrimary ||
    facts.failedNode === facts.primary ||
    facts.retried ||
    facts.answered ||
    facts.inTransaction ||
    facts.pinned
  )
}

/** A statement that makes or releases session state (it pins or unpins). */
export function touchesSessionState(c: Classification): boolean {
  return c.pin !== undefined || c.unpin !== undefined
}

/**
 * The rule for a connection a session lets go, the same in both faces: it goes back to the pool only
 * when no transaction is open, no session state is held on it, no statement on it made or released
 * session state (`touched`: a release such as RESET ALL or UNLISTEN * may not undo everything, and
 * DISCARD ALL / DEALLOCATE ALL drop the prepared statements the pool's clients count on), and the
 * face can vouch for its state; otherwise it is closed.
 * @example
 * reusesConnection({ txStatus: 'I', sessionPin: null, touched: false, unknownState: false }) // true
 */
export function reusesConnection(facts: {
  readonly txStatus: TxStatus
  readonly sessionPin: PinReason | null
  readonly touched: boolean
  readonly unknownState: boolean
}): boolean {
  return facts.txStatus === 'I' && facts.sessionPin === null && !facts.touched && !facts.unknownState
}

/** Whether a statement writes: one that needs the primary for what it does (a write, or unknown to the parser). */
export function writes(c: Classification): boolean {
  return c.requiresPrimary && (c.kind === 'write' || c.kind === 'unknown')
}

export function onlyFreshetSettings(c: Classification): boolean {
  const settings = c.settings
  if (!settings || settings.length === 0 || c.statementCount !== 1) return false
  for (const s of settings) if (!FRESHET_SETTING.test(s.name)) return false
  return true
}

/** `SET LOCAL freshet....` outside a transaction: PostgreSQL answers SET with a WARNING (25P01) and ignores it. */
export function localOutsideTransaction(c: Classification, inTransaction: boolean): boolean {
  if (inTransaction) return false
  for (const s of c.settings ?? NO_SETTINGS) if (s.local) return true
  return false
}

const NO_SETTINGS: NonNullable<Classification['settings']> = Object.freeze([])
