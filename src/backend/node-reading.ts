// One probe's answer about a node (role, WAL position, lag): what the monitors produce and the topology
// tracker, the probe loop and the engine read.

/** One probe's reading of a node. */
export interface NodeReading {
  readonly ok: boolean
  /** Epoch ms when the reading completed. */
  readonly at: number
  /**
   * Epoch ms when the probe query was sent: what the node reported held at some moment after this, so
   * this is the reading's time for the staleness bound (never later than the truth).
   */
  readonly sentAt: number
  readonly inRecovery: boolean | null
  /** Replay LSN (replica) or current WAL LSN (primary), as text 'X/Y'. */
  readonly lsn: string | null
  /** Lag in ms measured on this node, or null when unknown. Primaries report 0. */
  readonly lagMs: number | null
  /** Where lagMs came from. */
  readonly lagSource:
    | 'primary'
    | 'caught_up'
    | 'heartbeat'
    | 'replay_timestamp'
    | 'seconds_behind_source'
    | null
  readonly replayPaused: boolean | null
  /** Timeline of a primary (from its WAL file name), used to pick the newest primary after a failover. */
  readonly timeline: number | null
  readonly error: string | null
  /** Round-trip time of the probe in ms. */
  readonly rttMs: number | null
}
