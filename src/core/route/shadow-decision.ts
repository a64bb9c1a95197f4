// routing.shadow (rollout): a decision that chose a replica becomes a primary decision that remembers where it would have gone.

import type { Decision } from './decision.js'

/**
 * Under `routing.shadow: true` every statement runs on the primary while decisions are still made and
 * reported: a replica decision turns into reason 'shadow' with target `primary` and the original
 * target, reason and lag in `wouldBe`. Primary and error decisions pass through unchanged, so
 * `routing_decisions_total{reason="shadow"}` over all decisions is the share replicas would take.
 * @example
 * shadowDecision(replicaDecision, 'primary')
 * // { target: 'primary', role: 'primary', reason: 'shadow', lagMs: 0,
 * //   wouldBe: { target: 'replica_1', reason: 'replica', lagMs: 12 }, ... }
 */
export function shadowDecision(d: Decision, primary: string): Decision {
  if (d.role !== 'replica' || d.target === null) return d
  return Object.freeze({
    ...d,
    target: primary,
    role: 'primary',
    reason: 'shadow',
    lagMs: 0,
    stalenessBoundMs: 0,
    wouldBe: Object.freeze({ target: d.target, reason: d.reason, lagMs: d.lagMs }),
  })
}
