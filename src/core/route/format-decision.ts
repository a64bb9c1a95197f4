// Renders a Decision as one short human line, for `freshet explain`, logs and the dashboard.

import type { Decision } from './decision.js'

/**
 * One line that says where a statement goes and why.
 *
 * @example
 * formatDecision(d)
 * // 'replica_2 (replica) reason=replica tier=near_rt (hint) lag=120ms staleness_bound=180ms class=read'
 * // 's1_replica_1 (replica) reason=replica shard=shard_1 (statement key 42) tier=near_rt ...' (sharded)
 * // 'ERROR reason=fallback_error tier=near_rt (context) class=read: freshet: no replica within tier ...'
 */
export function formatDecision(d: Decision): string {
  let line = d.target === null ? 'ERROR' : d.role === null ? d.target : `${d.target} (${d.role})`
  line += ` reason=${d.reason}`
  if (d.shard) {
    line += ` shard=${d.shard.shard} (${d.shard.source}${d.shard.key !== undefined ? ` key ${d.shard.key}` : ''})`
  }
  if (d.wouldBe) line += ` would_be=${d.wouldBe.target} (${d.wouldBe.reason})`
  if (d.tier !== null) line += ` tier=${d.tier}`
  if (d.tierSource !== null) line += d.tier !== null ? ` (${d.tierSource})` : ` tier_source=${d.tierSource}`
  if (d.domainTable !== null) line += ` domain=${d.domainTable}`
  if (d.target !== null) {
    line += ` lag=${d.lagMs === null ? 'unknown' : `${d.lagMs}ms`}`
    line += ` staleness_bound=${d.stalenessBoundMs === null ? 'unknown' : `${d.stalenessBoundMs}ms`}`
  }
  if (d.minLsn !== null) line += ` min_lsn=${d.minLsn}`
  line += ` class=${d.classReason}`
  if (d.decideNs > 0) line += ` took=${(d.decideNs / 1000).toFixed(1)}us`
  if (d.parseError !== null) line += ` parse_error=${JSON.stringify(d.parseError)}`
  if (d.error !== null) line += `: ${d.error}`
  return line
}
