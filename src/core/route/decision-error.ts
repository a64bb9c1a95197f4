// Turns an error decision into the FreshetError both faces throw (library) or send as ErrorResponse (proxy).

import { FreshetError, type FreshetErrorCode, NoEligibleNodeError } from '../errors.js'
import type { Decision } from './decision.js'

/**
 * The error a decision asks the caller to raise, or null when the decision has a target.
 * Codes: fallback_error -> FRESHET_NO_ELIGIBLE_NODE, fallback_rate_limited -> FRESHET_FALLBACK_RATE_LIMITED,
 * unannotated_error -> FRESHET_UNANNOTATED_READ, hint_route (unknown node) -> FRESHET_UNKNOWN_NODE.
 *
 * @example
 * const err = decisionError(decision)
 * if (err) throw err
 */
export function decisionError(d: Decision): FreshetError | null {
  if (d.target !== null) return null
  const message = d.error ?? `freshet: no target for this statement (${d.reason})`
  const details = { reason: d.reason, tier: d.tier, tierSource: d.tierSource, minLsn: d.minLsn }
  if (d.reason === 'fallback_error')
    return new NoEligibleNodeError('FRESHET_NO_ELIGIBLE_NODE', message, { details })
  return new FreshetError(codeFor(d), message, { details })
}

function codeFor(d: Decision): FreshetErrorCode {
  switch (d.reason) {
    case 'fallback_rate_limited':
      return 'FRESHET_FALLBACK_RATE_LIMITED'
    case 'unannotated_error':
      return 'FRESHET_UNANNOTATED_READ'
    case 'hint_route':
      return 'FRESHET_UNKNOWN_NODE'
    default:
      return 'FRESHET_NO_ELIGIBLE_NODE'
  }
}
