// One client session's routing state: transaction and pin tracking, the session tier, the RYW token.

import type { Classification, PinReason } from '../core/classify/classification.js'
import type { RoutingContext, SessionView } from '../core/route/routing-context.js'

/** The freshet setting namespace: consumed by freshet, never sent to PostgreSQL. */
const FRESHET_SETTING = /^freshet\./

/**
 * What a face (proxy client, library client) knows about one session between statements. The views it
 * hands to the engine are cached and rebuilt only when something changes, so deciding allocates nothing
 * per statement.
 *
 * @example
 * const s = new SessionState()
 * s.consumeSettings(engine.classify("SET freshet.freshness = 'eventual'")) // true: answered locally
 * engine.route(sql, s.view(), s.context())
 */
export class SessionState {
  #pinnedNode: string | null = null
  #inTransaction = false
  #sessionPin: PinReason | null = null
  #sessionTier: string | undefined
  #token: string | undefined
  #lastWriteAt: number | undefined
  #view: SessionView | null = null
  #context: RoutingContext | null = null

  /** The session's default tier (SET freshet.freshness / startup option), if any. */
  get sessionTier(): string | undefined {
    return this.#sessionTier
  }

  /** The read-your-writes token (LSN of this session's last write), if any. */
  get token(): string | undefined {
    return this.#token
  }

  /** Session state that holds this session on one server connection, or null. */
  get sessionPin(): PinReason | null {
    return this.#sessionPin
  }

  get inTransaction(): boolean {
    return this.#inTransaction
  }

  set sessionTier(tier: string | undefined) {
    this.#sessionTier = tier === undefined ? undefined : tier.toLowerCase()
    this.#view = null
  }

  /** The node this session is held on (open transaction or session state), or null. */
  setPinned(node: string | null, inTransaction: boolean): void {
    if (node === this.#pinnedNode && inTransaction === this.#inTransaction) return
    this.#pinnedNode = node
    this.#inTransaction = inTransaction
    this.#view = null
  }

  /** Applies the pin/unpin a finished statement carries. `wasInTransaction`: it ran inside BEGIN..COMMIT. */
  applyPins(c: Classification, wasInTransaction: boolean): void {
    if (c.pin && !(c.pin === 'session_set' && wasInTransaction)) this.#sessionPin = c.pin
    if (c.unpin === 'all' || (c.unpin !== undefined && c.unpin === this.#sessionPin)) this.#sessionPin = null
    this.#view = null
  }

  /** Forgets session state (the server connection that held it is gone). */
  clearSessionPin(): void {
    this.#sessionPin = null
    this.#view = null
  }

  /** Records a write that committed: its LSN (null when not causal) and the time. */
  recordWrite(lsn: string | null, at: number = Date.now()): void {
    if (lsn !== null) this.#token = lsn
    this.#lastWriteAt = at
    this.#context = null
  }

  /**
   * For a statement whose settings are all `freshet.*` (SET/RESET freshet.freshness): applies them and
   * returns the command tag to answer with ('SET' or 'RESET'); null when the statement is not freshet's.
   */
  consumeSettings(c: Classification): 'SET' | 'RESET' | null {
    const settings = c.settings
    if (!settings || !onlyFreshetSettings(c)) return null
    for (const s of settings) {
      if (s.name === 'freshet.freshness') this.sessionTier = s.value ?? undefined
    }
    return settings[0]!.value === null ? 'RESET' : 'SET'
  }

  /** The SessionView for the engine (cached until something changes). */
  view(): SessionView {
    if (this.#view) return this.#view
    const pinReason: SessionView['pinReason'] =
      this.#pinnedNode === null
        ? null
        : this.#inTransaction
          ? 'transaction'
          : (this.#sessionPin ?? 'transaction')
    this.#view = Object.freeze({
      pinnedNode: this.#pinnedNode,
      pinReason,
      inTransaction: this.#inTransaction,
      ...(this.#sessionTier !== undefined ? { sessionTier: this.#sessionTier } : {}),
    })
    return this.#view
  }

  /** The RoutingContext for the engine: token and last write time (cached until a write). */
  context(): RoutingContext {
    if (this.#context) return this.#context
    this.#context = Object.freeze({
      ...(this.#token !== undefined ? { minLsn: this.#token } : {}),
      ...(this.#lastWriteAt !== undefined ? { lastWriteAt: this.#lastWriteAt } : {}),
    })
    return this.#context
  }
}

/** A single SET/RESET of freshet's own settings only (`freshet.*`): answered by freshet, never by PostgreSQL. */
export function onlyFreshetSettings(c: Classification): boolean {
  const settings = c.settings
  if (!settings || settings.length === 0 || c.statementCount !== 1) return false
  for (const s of settings) if (!FRESHET_SETTING.test(s.name)) return false
  return true
}
