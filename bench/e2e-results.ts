// The shape of bench/results/*.json, shared by the end-to-end bench, the plot and the baseline comparison.

/** One router × workload × clients cell: medians over the alternating rounds. */
export interface E2eCell {
  workload: string
  clients: number
  router: string
  /** `pgbench` drives a router's port; `library` is the Node load generator (pg.Pool / createPool). */
  kind: 'pgbench' | 'library'
  tps: number
  meanMs: number
  p99Ms: number
  /** CPU of the router process tree (for library rows: the whole Node process), % of one core; null if none. */
  cpuPct: number | null
  failed: number
  /** Throughput ÷ direct (pgbench) or ÷ pg.Pool (library), same cell, same run. */
  vsDirect: number | null
  /** Throughput ÷ pgbouncer, same cell, same run (pgbench rows only). */
  vsPgbouncer: number | null
  /** TPS of each round, in run order. */
  rounds: number[]
}

/** One router in the routing-under-lag run. */
export interface LagRow {
  router: string
  reads: number
  errors: number
  /** Share of reads answered by a replica, over the whole run. */
  replicaShare: number
  /** Reads answered by the primary (fallbacks: every setup here sends reads to replicas when they are fresh). */
  primaryReads: number
  /** Reads answered by the paused replica while it was paused. */
  pausedReplicaReads: number
  /** Reads whose value was older than the bound (the first missed write committed more than boundMs before the read began). */
  staleReads: number
  /** Worst staleness seen, ms. */
  maxStalenessMs: number
  /** maxStalenessMs <= the bound: the router kept the tier's promise in this run. */
  withinBound?: boolean
  /**
   * freshet library only: the largest staleness bound freshet reported (Decision.stalenessBoundMs) for a
   * read it sent to a replica; the measured staleness must not exceed it. Absent for other routers.
   */
  maxReportedBoundMs?: number
}

export interface LagResult {
  seconds: number
  pausedSeconds: number
  boundMs: number
  readers: number
  writesPerSecond: number
  notes: string[]
  rows: LagRow[]
}

export interface E2eResults {
  version: 1
  date: string
  machine: Record<string, string | number>
  settings: { seconds: number; rounds: number; clients: number[]; workloads: string[]; scale: number }
  notes: string[]
  cells: E2eCell[]
  lag: LagResult | null
}
