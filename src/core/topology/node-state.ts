// What the router knows about one node at a moment: the view that backend monitors produce and the
// decision reads. Plain data, replaced (not mutated) by the monitors.

export type NodeRole = 'primary' | 'replica' | 'unknown'
export type BreakerState = 'closed' | 'open' | 'half_open'

export interface NodeState {
  readonly name: string
  /** Role from config, corrected by pg_is_in_recovery() probes (a promoted replica becomes primary). */
  readonly role: NodeRole
  readonly weight: number
  readonly zone: string | null
  /** Last health check succeeded. */
  readonly healthy: boolean
  readonly breaker: BreakerState
  /** Replication lag in ms; 0 for the primary; null when unknown or the reading is too old. */
  readonly lagMs: number | null
  /** Replay LSN of a replica (or current WAL LSN of the primary), as a bigint of bytes; null if unknown. */
  readonly replayLsn: bigint | null
  /** Epoch ms of the lag reading. */
  readonly checkedAt: number
  /**
   * Epoch ms (freshet's clock) as of which this replica provably holds every acknowledged write: the
   * staleness bound at `now` is `now - freshAsOf` (see staleness-bound.ts). Null when nothing is
   * proven; the primary's is ignored (its bound is 0).
   */
  readonly freshAsOf: number | null
  /** Connections in use right now (least_connections). */
  readonly active: number
  /** EWMA of response time in ms (least_latency); null until measured. */
  readonly latencyEwmaMs: number | null
  /** 0..1 share multiplier while a replica ramps up after exclusion (slow start); 1 when settled. */
  readonly rampFactor: number
}

/** The whole topology as the router sees it: one primary name and every node's state. */
export interface TopologyView {
  readonly primary: string
  readonly nodes: ReadonlyMap<string, NodeState>
  /** Replica names in config order. */
  readonly replicas: readonly string[]
}
