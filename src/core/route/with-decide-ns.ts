// Stamps how long deciding took onto a (frozen, possibly shared) Decision.

import type { ShardDecision } from '../shard/shard-router.js'
import type { Decision } from './decision.js'

/**
 * A frozen copy of `d` with `decideNs` set (and, for a sharded config, the shard decision). Decisions come frozen and the common primary ones are
 * shared, so the caller that timed classification plus decision stamps a copy.
 *
 * @example
 * const t0 = process.hrtime.bigint()
 * const d = withDecideNs(decider.decide(classify(sql), input), Number(process.hrtime.bigint() - t0))
 */
export function withDecideNs(d: Decision, decideNs: number, shard?: ShardDecision): Decision {
  return Object.freeze(shard === undefined ? { ...d, decideNs } : { ...d, decideNs, shard })
}
