// One node as the engine's snapshot() reports it: the shape the admin API, metrics and status print.

/** One node as `snapshot()` reports it (CONTRACT section 5). */
export interface NodeSnapshot {
  name: string
  role: string
  lag_ms: number | null
  /**
   * Upper bound on how stale a read this node serves now can be (ms): 0 for the primary, null when
   * nothing is proven. Tier eligibility uses this (docs/routing.md, "The staleness bound").
   */
  staleness_bound_ms: number | null
  /** When this replica was last proven to hold every acknowledged write (ISO time), or null. */
  fresh_as_of: string | null
  /**
   * Replicas: WAL bytes between the primary's LSN at its last probe and this replica's replay LSN at
   * its last probe (0 when caught up); null for the primary or without both readings.
   */
  lag_bytes: number | null
  replay_lsn: string | null
  healthy: boolean
  breaker: string
  checked_at: string | null
  lag_source: string | null
  replay_paused: boolean | null
  error: string | null
}
