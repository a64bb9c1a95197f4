// A proxy client's read-your-writes tokens: which writes still owe one, when to read it (wal-positions.ts)
// and which of the client's statements must wait for it.
//
// A token is read after the write's ReadyForQuery, never on the client's own connection, and only when
// it can matter: at once for a client whose reads go to replicas (its next read will need it, and the
// answer is usually back before that read arrives), else when a read that a replica might serve comes.
// A client that only writes, or whose reads all go to the primary (routing.unannotated: primary, the
// default), reads no token at all; a burst of writes owes one token, read once.

import type { Decision, DecisionReason } from '../core/route/decision.js'
import type { SessionState } from '../session/session-state.js'
import type { WalPositions } from './wal-positions.js'

// decisions whose target depends on the token (or on the replicas, which the token narrows)
const TOKEN_REASONS: ReadonlySet<DecisionReason> = new Set<DecisionReason>([
  'read_your_writes',
  'fallback_primary',
  'fallback_least_lagged',
  'fallback_error',
  'fallback_rate_limited',
])

/**
 * Whether a read's decision would depend on the session's read-your-writes token: it goes to a replica,
 * or to the primary only because no replica qualified. A read sent to the primary for a reason decided
 * before any replica is looked at (unannotated, a strict tier, a write function, a pin, the sticky
 * window) does not.
 *
 * @example
 * tokenMatters(engine.decide(c, view, context, { dryRun: true }).decision)
 */
export function tokenMatters(d: Decision): boolean {
  return d.role === 'replica' || TOKEN_REASONS.has(d.reason)
}

/**
 * The tokens of one client session.
 *
 * @example
 * tokens.wrote(conn.node) // at an autocommit write's (or COMMIT's) ReadyForQuery
 * // before deciding a read the token could send elsewhere: wait for it, reading the owed ones
 * if ((tokens.reading || tokens.owed) && tokenMatters(dryRun.decision)) {
 *   if (tokens.owed) tokens.readOwed()
 *   wait()
 * }
 * tokens.decided(decision) // after deciding it
 */
export class SessionTokens {
  readonly #positions: WalPositions
  readonly #state: SessionState
  readonly #known: (node: string, lsn: string | null) => void
  /** Tokens being read: reads that need them wait. */
  #reading = 0
  /** Nodes whose writes ended with no token read since. */
  readonly #owed: string[] = []
  /** This session's last read went where a token matters: read the next write's token at once. */
  #eager = false

  /**
   * `known` is told each token read (null: it could not be; state.recordToken has it already), for the
   * session to record per-shard tokens and go on with what waited.
   */
  constructor(
    positions: WalPositions,
    state: SessionState,
    known: (node: string, lsn: string | null) => void,
  ) {
    this.#positions = positions
    this.#state = state
    this.#known = known
  }

  /** Tokens are being read. */
  get reading(): boolean {
    return this.#reading > 0
  }

  /** A write of this session ended on `node` (its ReadyForQuery came): it owes a token. */
  wrote(node: string): void {
    if (!this.#owed.includes(node)) this.#owed.push(node)
    if (this.#eager) this.#read()
  }

  /** Writes ended with no token read since. */
  get owed(): boolean {
    return this.#owed.length > 0
  }

  /**
   * Reads the owed tokens now: a read about to be decided needs them (its dry-run decision says so, see
   * tokenMatters), and waits while they are being read.
   */
  readOwed(): void {
    this.#read()
  }

  /** A read was decided: whether this session's reads need tokens (see wrote). */
  decided(d: Decision): void {
    this.#eager = tokenMatters(d)
  }

  #read(): void {
    for (const node of this.#owed) {
      this.#reading++
      this.#positions.after(node, this.#arrived)
    }
    this.#owed.length = 0
  }

  readonly #arrived = (node: string, lsn: string | null): void => {
    this.#reading--
    this.#state.recordToken(lsn)
    this.#known(node, lsn)
  }
}
