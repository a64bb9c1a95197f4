// The per-request and per-session facts the decision reads besides the statement itself.

import type { PinReason } from '../classify/classification.js'

/** Request-scoped context (library: AsyncLocalStorage; proxy: per client session). */
export interface RoutingContext {
  /** Tier requested by freshness(tier, fn) or X-DB-Route-Hint. */
  readonly tier?: string
  /** withPrimary(fn): everything to the primary. */
  readonly primary?: boolean
  /** Read-your-writes token (an LSN such as 0/16B3748) the reads must have replayed. */
  readonly minLsn?: string
  /** Epoch ms of this context's last write, for consistency.sticky_after_write_ms. */
  readonly lastWriteAt?: number
}

/** Connection-bound state of a session (a library client or a proxy client). */
export interface SessionView {
  /** Node the session is pinned to (open transaction or session state), or null. */
  readonly pinnedNode: string | null
  readonly pinReason: 'transaction' | PinReason | null
  /** Inside BEGIN ... COMMIT. */
  readonly inTransaction: boolean
  /** Default tier of the session (SET freshet.freshness / startup option). */
  readonly sessionTier?: string
}

export const IDLE_SESSION: SessionView = Object.freeze({
  pinnedNode: null,
  pinReason: null,
  inTransaction: false,
})
