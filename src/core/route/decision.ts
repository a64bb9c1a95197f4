// A routing decision: a frozen value that logs, the admin API, `explain` and metric labels print unchanged.

import type { ShardDecision } from '../shard/shard-router.js'

/**
 * Why a statement went where it went, in decision-order rank (CONTRACT section 3). Small and fixed so
 * it can be a metric label.
 */
export type DecisionReason =
  | 'emergency_primary' // controls.route_all_to_primary (or replica pools disabled)
  | 'shadow' // routing.shadow: decided a replica, sent to the primary
  | 'pinned_transaction' // an open transaction holds a node
  | 'pinned_session' // session state (temp table, LISTEN, advisory lock, SET, WITH HOLD cursor)
  | 'hint_route' // /*+ ROUTE_TO: ... */
  | 'write' // statement class requires the primary
  | 'volatile_function' // a read calling a volatile function not on the read-only allow-list
  | 'rule' // a classifier rule decided
  | 'context_primary' // withPrimary(fn): the request context sends every read to the primary
  | 'unknown_tier' // a hint, context or session named a tier routing.tiers does not have: primary
  | 'unannotated_primary' // read with no tier: routing.unannotated = primary
  | 'unannotated_error' // read with no tier: routing.unannotated = error (the statement fails)
  | 'strict_tier' // a tier with max_lag_ms 0 and no replica proven caught up
  | 'read_your_writes' // only replicas that replayed the token qualified (or: waited, then primary)
  | 'sticky_after_write' // within consistency.sticky_after_write_ms of this context's last write
  | 'replica' // a replica within the tier's bound, picked by the policy
  | 'fallback_primary' // no replica qualified: tier fallback primary
  | 'fallback_least_lagged' // no replica qualified: tier fallback least_lagged
  | 'fallback_error' // no replica qualified: tier fallback error (the statement fails)
  | 'fallback_rate_limited' // fallback primary over its rate cap: the statement fails

/** Where a decision sends a statement. */
export type TargetRole = 'primary' | 'replica'

export interface Decision {
  /** Node name (from config), or null when the decision is an error. */
  readonly target: string | null
  readonly role: TargetRole | null
  /** Freshness tier applied to this read, or null for writes and pinned statements. */
  readonly tier: string | null
  readonly reason: DecisionReason
  /** Lag of the target as of its last probe (ms); 0 for the primary; null when unknown. */
  readonly lagMs: number | null
  /**
   * Upper bound on the target's staleness at dispatch (ms, rounded): a read it serves misses no write
   * acknowledged more than this long ago. 0 for the primary; null when unknown. Tier eligibility is
   * decided on this, not on `lagMs` (CONTRACT section 3).
   */
  readonly stalenessBoundMs: number | null
  /** Read-your-writes token the decision honoured, if any. */
  readonly minLsn: string | null
  /** What decided the tier: hint, context, a domains table, or the unannotated default. */
  readonly tierSource: 'hint' | 'context' | 'domain' | 'rule' | 'session' | 'unannotated' | null
  /** The table whose `domains` entry set the tier, when tierSource is 'domain'. */
  readonly domainTable: string | null
  /** The statement class reason from the classifier. */
  readonly classReason: string
  /** Error for fallback_error / fallback_rate_limited decisions. */
  readonly error: string | null
  /** Nanoseconds spent deciding (classification included). */
  readonly decideNs: number
  /** Parser error when the statement could not be parsed (routed to the primary). */
  readonly parseError: string | null
  /**
   * Reason 'shadow' only (routing.shadow): the replica this statement would have gone to, and why.
   * Absent on every other decision.
   */
  readonly wouldBe?: {
    readonly target: string
    readonly reason: DecisionReason
    readonly lagMs: number | null
  }
  /**
   * Sharded configs only: which shard served the statement and where its key came from (ShardedRouting).
   * Absent for an unsharded config.
   */
  readonly shard?: ShardDecision
}
