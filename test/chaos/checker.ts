// The consistency checker: writers on the primary, readers through freshet per tier, and the verdict over what they saw.

import pg from 'pg'
import type { LocalCluster } from '../cluster/index.js'

/**
 * The tiers a reader asks for; 'fast' is a custom tier (max_lag_ms 200 in the chaos config); 'ryw' is a
 * session that writes, then reads its own write.
 */
export type ChaosTier = 'strict' | 'near_rt' | 'eventual' | 'fast' | 'ryw'
export const TIERS: readonly ChaosTier[] = ['strict', 'near_rt', 'eventual', 'fast', 'ryw']
/** The tiers read by a plain reader (not a read-your-writes session). */
export type ReadTier = Exclude<ChaosTier, 'ryw'>
const READ_TIERS: readonly ReadTier[] = ['strict', 'near_rt', 'eventual', 'fast']

/** Monotonic milliseconds shared by every record (never jumps with the wall clock). */
export const now = (): number => performance.now()

/** One acknowledged counter write on the primary. */
export interface WriteRecord {
  value: number
  lsn: string
  node: string
  ackAt: number
}

/** One write attempt, acked or not, for the unavailability windows. */
export interface WriteAttempt {
  at: number
  ok: boolean
}

/** One read through freshet. */
export interface ReadRecord {
  face: string
  tier: ChaosTier
  startedAt: number
  endedAt: number
  /** Counter value (tiers) or the session's highest own row (ryw); null on error. */
  value: number | null
  /** For ryw: the session's own last acknowledged write. */
  expected?: number
  node: string | null
  replica: boolean
  /** Decision reason, when the face can attribute it (library: always; proxy: eventual only). */
  reason: string | null
  /** The staleness bound freshet reported at dispatch (Decision.stalenessBoundMs), when known. */
  boundMs: number | null
  error: string | null
}

/** One write decision freshet made (library or proxy engine), for the "never on a standby" check. */
export interface WriteDecision {
  face: string
  at: number
  target: string | null
}

/** One acknowledged ryw write, for the lost-write check. */
export interface RywWrite {
  session: string
  n: number
}

/** A face of freshet the readers go through. */
export interface Face {
  readonly name: string
  /** Runs one tier read of the counter (`sql` carries the hint); resolves with value, port and decision facts. */
  read(
    tier: ReadTier,
    sql: string,
  ): Promise<{ value: number; port: number; reason: string | null; boundMs: number | null }>
  /** A read-your-writes session: `write(n)` then `read()` the highest own row. */
  session(id: string): Promise<RywSession>
  close(): Promise<void>
}

export interface RywSession {
  /** Writes row `n` (calling `acked()` once the write is acknowledged), then reads the highest own row. */
  round(n: number, acked: () => void): Promise<{ value: number; port: number; reason: string | null }>
  close(): Promise<void>
}

/** Everything a run recorded. */
export class ChaosLog {
  readonly writes: WriteRecord[] = []
  readonly attempts: WriteAttempt[] = []
  readonly reads: ReadRecord[] = []
  readonly writeDecisions: WriteDecision[] = []
  readonly rywWrites: RywWrite[] = []
  /** Writes refused by a standby (SQLSTATE 25006): freshet sent a write to a replica. */
  readonly standbyRefusals: string[] = []
  /** Cluster role changes: who the primary was from `at`; `promoting` marks the promotion window. */
  readonly roles: { at: number; primary: string; promoting: string | null }[] = []
  /** Fault events, for reports. */
  readonly faults: { at: number; what: string }[] = []

  fault(what: string): void {
    this.faults.push({ at: now(), what })
  }
}

export const COUNTER_SETUP = [
  'CREATE TABLE IF NOT EXISTS chaos_counter (id int PRIMARY KEY, v bigint NOT NULL)',
  'INSERT INTO chaos_counter VALUES (1, 0) ON CONFLICT DO NOTHING',
  'CREATE TABLE IF NOT EXISTS chaos_ledger (seq bigint PRIMARY KEY, writer int NOT NULL)',
  'CREATE TABLE IF NOT EXISTS chaos_ryw (session text NOT NULL, n int NOT NULL, PRIMARY KEY (session, n))',
]

// The row lock on the counter serialises writers, so commit order is value order.
const WRITE_SQL =
  'WITH c AS (UPDATE chaos_counter SET v = v + 1 WHERE id = 1 RETURNING v) ' +
  'INSERT INTO chaos_ledger (seq, writer) SELECT v, $1 FROM c RETURNING seq::int AS v, pg_current_wal_lsn()::text AS lsn'

export const READ_SQL: Record<ReadTier, string> = {
  strict:
    '/* FRESHNESS: STRICT */ SELECT v::int AS v, inet_server_port() AS port FROM chaos_counter WHERE id = 1',
  near_rt:
    '/* FRESHNESS: NEAR_RT */ SELECT v::int AS v, inet_server_port() AS port FROM chaos_counter WHERE id = 1',
  eventual:
    '/* FRESHNESS: EVENTUAL */ SELECT v::int AS v, inet_server_port() AS port FROM chaos_counter WHERE id = 1',
  fast: '/* FRESHNESS: fast */ SELECT v::int AS v, inet_server_port() AS port FROM chaos_counter WHERE id = 1',
}

/** Rejects after `ms` (the workers' own bound: a hung read is an error, not a stuck worker). */
export function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

/** Waits `ms` (pacing between operations of a worker, not synchronisation), or less when stopping. */
function pace(ms: number, stop: { stopped: boolean }): Promise<void> {
  return stop.stopped ? Promise.resolve() : new Promise((r) => setTimeout(r, ms))
}

export interface WorkloadOptions {
  cluster: LocalCluster
  faces: Face[]
  log: ChaosLog
  nodeOf: (port: number) => string
  writers?: number
  /** Pause between operations of one worker (ms). */
  paceMs?: number
  /** Per-operation bound (ms). */
  opTimeoutMs?: number
}

/**
 * Starts writers (directly on whatever `cluster.primary` is now) and, per face, one reader per tier and
 * one read-your-writes session. `stop()` ends them and resolves when every worker has returned.
 */
export function startWorkload(o: WorkloadOptions): { stop(): Promise<void> } {
  const stop = { stopped: false }
  const paceMs = o.paceMs ?? 15
  const opTimeout = o.opTimeoutMs ?? 5000
  const workers: Promise<void>[] = []
  for (let w = 0; w < (o.writers ?? 2); w++) workers.push(writer(w, o, stop, paceMs, opTimeout))
  for (const face of o.faces) {
    for (const tier of READ_TIERS) workers.push(reader(face, tier, o, stop, paceMs, opTimeout))
    workers.push(rywSession(face, o, stop, paceMs, opTimeout))
  }
  return {
    stop: async () => {
      stop.stopped = true
      await Promise.all(workers)
    },
  }
}

async function writer(
  id: number,
  o: WorkloadOptions,
  stop: { stopped: boolean },
  paceMs: number,
  opTimeout: number,
): Promise<void> {
  let client: pg.Client | null = null
  let clientNode = ''
  while (!stop.stopped) {
    try {
      // Follow the cluster's primary: after a failover the writers retry against the new one.
      if (client && clientNode !== o.cluster.primary.name) {
        void client.end().catch(() => {})
        client = null
      }
      if (!client) {
        const node = o.cluster.primary
        const c = new pg.Client({
          host: node.host,
          port: node.port,
          user: 'postgres',
          database: 'freshet',
          connectionTimeoutMillis: 1000,
        })
        c.on('error', () => {})
        clientNode = node.name
        client = c
        await deadline(c.connect(), opTimeout, 'writer connect')
      }
      const res = await deadline(client.query(WRITE_SQL, [id]), opTimeout, 'write')
      const row = res.rows[0] as { v: number; lsn: string }
      const at = now()
      o.log.writes.push({ value: row.v, lsn: row.lsn, node: clientNode, ackAt: at })
      o.log.attempts.push({ at, ok: true })
    } catch {
      o.log.attempts.push({ at: now(), ok: false })
      if (client) void client.end().catch(() => {})
      client = null
    }
    await pace(paceMs, stop)
  }
  if (client) await (client as pg.Client).end().catch(() => {})
}

async function reader(
  face: Face,
  tier: ReadTier,
  o: WorkloadOptions,
  stop: { stopped: boolean },
  paceMs: number,
  opTimeout: number,
): Promise<void> {
  while (!stop.stopped) {
    const startedAt = now()
    try {
      const r = await deadline(face.read(tier, READ_SQL[tier]), opTimeout, `${face.name} ${tier} read`)
      const node = o.nodeOf(r.port)
      o.log.reads.push({
        face: face.name,
        tier,
        startedAt,
        endedAt: now(),
        value: r.value,
        node,
        replica: node !== o.cluster.primary.name,
        reason: r.reason,
        boundMs: r.boundMs,
        error: null,
      })
    } catch (err) {
      o.log.reads.push(errorRead(face.name, tier, startedAt, err))
    }
    await pace(paceMs, stop)
  }
}

async function rywSession(
  face: Face,
  o: WorkloadOptions,
  stop: { stopped: boolean },
  paceMs: number,
  opTimeout: number,
): Promise<void> {
  const id = `${face.name}-${Math.random().toString(36).slice(2, 8)}`
  let session: RywSession | null = null
  let n = 0
  while (!stop.stopped) {
    try {
      session ??= await deadline(face.session(id), opTimeout, `${face.name} session`)
      n++
      const k = n
      let readFrom: number | null = null
      try {
        const r = await deadline(
          session.round(k, () => {
            o.log.rywWrites.push({ session: id, n: k })
            readFrom = now()
          }),
          opTimeout,
          `${face.name} ryw round`,
        )
        const node = o.nodeOf(r.port)
        o.log.reads.push({
          face: face.name,
          tier: 'ryw',
          startedAt: readFrom ?? now(),
          endedAt: now(),
          value: r.value,
          expected: k,
          node,
          replica: node !== o.cluster.primary.name,
          reason: r.reason,
          boundMs: null,
          error: null,
        })
      } catch (err) {
        if ((err as { code?: string }).code === '25006') o.log.standbyRefusals.push(`${face.name}: ${err}`)
        // only a read after an acknowledged write counts as a ryw read
        if (readFrom !== null) o.log.reads.push(errorRead(face.name, 'ryw', readFrom, err))
        throw err
      }
    } catch {
      // A new session after any failure: a broken connection must not be reused.
      if (session) await session.close().catch(() => {})
      session = null
    }
    await pace(paceMs, stop)
  }
  if (session) await (session as RywSession).close().catch(() => {})
}

function errorRead(face: string, tier: ChaosTier, startedAt: number, err: unknown): ReadRecord {
  return {
    face,
    tier,
    startedAt,
    endedAt: now(),
    value: null,
    node: null,
    replica: false,
    reason: null,
    boundMs: null,
    error: (err as Error).message ?? String(err),
  }
}

// ---- verdict ------------------------------------------------------------------------------------

export interface TierBounds {
  /** max_lag_ms per tier from the config under test. */
  maxLagMs: Record<ReadTier, number>
  /**
   * Measurement slack added to non-zero bounds: what measuring itself needs, not freshet's probe
   * timing (freshet's staleness bound is an upper bound at dispatch). The checker's clock and freshet's
   * differ by one loopback round trip and timer jitter; 50 ms at most.
   */
  slackMs: number
}

export interface TierReport {
  reads: number
  replica: number
  fallbacks: number
  violations: number
  errors: number
  /** Largest staleness seen (ms) among successful reads: read start minus the time the value was superseded. */
  maxStalenessMs: number
}

export interface Window {
  from: number
  ms: number
  /** The nearest fault event before the window. */
  near: string
}

export interface ChaosReport {
  tiers: Record<string, TierReport>
  violations: string[]
  writesAcked: number
  writeAttempts: number
  lostWrites: number[]
  lostRywWrites: number
  writesOnStandby: string[]
  writeUnavailability: Window[]
  primaryOnlyReads: Window[]
  readErrorWindows: Window[]
  faults: { at: number; what: string }[]
}

/**
 * Judges a run. `finalLedger` / `finalRyw` are what the final primary holds; `bounds` the tiers' limits.
 */
export function verdict(
  log: ChaosLog,
  bounds: TierBounds,
  finalLedger: Set<number>,
  finalRyw: Set<string>,
): ChaosReport {
  // supersededAt(v): the earliest ack of any write with a larger value; after that, v is old news.
  const acked = [...log.writes].sort((a, b) => a.value - b.value)
  const values = acked.map((w) => w.value)
  const suffixMin: number[] = new Array(acked.length)
  let min = Number.POSITIVE_INFINITY
  for (let i = acked.length - 1; i >= 0; i--) {
    min = Math.min(min, acked[i]!.ackAt)
    suffixMin[i] = min
  }
  const supersededAt = (v: number): number => {
    // first index with value > v
    let lo = 0
    let hi = values.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (values[mid]! > v) hi = mid
      else lo = mid + 1
    }
    return lo < values.length ? suffixMin[lo]! : Number.POSITIVE_INFINITY
  }

  const tiers: Record<string, TierReport> = {}
  const violations: string[] = []
  for (const r of log.reads) {
    const key = `${r.face}/${r.tier}`
    tiers[key] ??= { reads: 0, replica: 0, fallbacks: 0, violations: 0, errors: 0, maxStalenessMs: 0 }
    const t = tiers[key]
    t.reads++
    if (r.error !== null || r.value === null) {
      t.errors++
      continue
    }
    if (r.replica) t.replica++
    if (r.reason?.startsWith('fallback_')) t.fallbacks++
    else if (r.reason === null && !r.replica && r.tier !== 'strict') t.fallbacks++
    if (r.tier === 'ryw') {
      if (r.value < (r.expected ?? 0)) {
        t.violations++
        violations.push(`${key}: read ${r.value} after writing ${r.expected} (node ${r.node}, ${r.reason})`)
      }
      continue
    }
    const staleness = r.startedAt - supersededAt(r.value)
    t.maxStalenessMs = Math.max(t.maxStalenessMs, staleness)
    const lag = bounds.maxLagMs[r.tier]
    // least_lagged may exceed the tier bound by design; it must not exceed the bound freshet reported.
    const bound =
      lag === 0
        ? 0
        : (r.reason === 'fallback_least_lagged' && r.boundMs !== null ? Math.max(lag, r.boundMs) : lag) +
          bounds.slackMs
    if (staleness > bound) {
      t.violations++
      violations.push(
        `${key}: value ${r.value} was ${Math.round(staleness)} ms old (bound ${bound} ms) on ${r.node} (${r.reason}, bound ${r.boundMs})`,
      )
    }
  }

  const lostWrites = log.writes.filter((w) => !finalLedger.has(w.value)).map((w) => w.value)
  const lostRywWrites = log.rywWrites.filter((w) => !finalRyw.has(`${w.session}:${w.n}`)).length

  const writesOnStandby: string[] = [...log.standbyRefusals]
  for (const d of log.writeDecisions) {
    if (d.target === null) continue
    const role = roleAt(log, d.at)
    // A standby at that time: neither the primary nor being promoted, and never a primary before (an
    // old primary is killed and stays down, so a late decision for it fails without writing anywhere).
    const formerPrimary = log.roles.some((r) => r.at <= d.at && r.primary === d.target)
    if (d.target !== role.primary && d.target !== role.promoting && !formerPrimary) {
      writesOnStandby.push(`${d.face}: write decided for ${d.target} while the primary was ${role.primary}`)
    }
  }

  const near = (at: number) => {
    let what = 'start'
    for (const f of log.faults) if (f.at <= at) what = f.what
    return what
  }
  const t0 = log.faults[0]?.at ?? 0
  const rel = (w: { from: number; ms: number }): Window => ({
    from: Math.round(w.from - t0),
    ms: Math.round(w.ms),
    near: near(w.from),
  })

  return {
    tiers,
    violations,
    writesAcked: log.writes.length,
    writeAttempts: log.attempts.length,
    lostWrites,
    lostRywWrites,
    writesOnStandby,
    writeUnavailability: failureWindows(
      [...log.attempts].sort((a, b) => a.at - b.at).map((a) => ({ at: a.at, bad: !a.ok })),
      0,
    ).map(rel),
    primaryOnlyReads: failureWindows(
      log.reads
        .filter(
          (r) => (r.tier === 'near_rt' || r.tier === 'eventual' || r.tier === 'fast') && r.error === null,
        )
        .sort((a, b) => a.startedAt - b.startedAt)
        .map((r) => ({ at: r.startedAt, bad: !r.replica })),
      500,
    ).map(rel),
    readErrorWindows: failureWindows(
      [...log.reads]
        .sort((a, b) => a.startedAt - b.startedAt)
        .map((r) => ({ at: r.startedAt, bad: r.error !== null })),
      0,
    ).map(rel),
    faults: log.faults.map((f) => ({ at: Math.round(f.at - t0), what: f.what })),
  }
}

function roleAt(log: ChaosLog, at: number): { primary: string; promoting: string | null } {
  let role = log.roles[0] ?? { primary: 'primary', promoting: null }
  for (const r of log.roles) if (r.at <= at) role = r
  return role
}

/** Maximal runs of `bad` samples, from the first bad one to the next good one, longer than `minMs`. */
function failureWindows(
  samples: { at: number; bad: boolean }[],
  minMs: number,
): { from: number; ms: number }[] {
  const out: { from: number; ms: number }[] = []
  let start: number | null = null
  for (const s of samples) {
    if (s.bad && start === null) start = s.at
    else if (!s.bad && start !== null) {
      if (s.at - start > minMs) out.push({ from: start, ms: s.at - start })
      start = null
    }
  }
  const last = samples.at(-1)
  if (start !== null && last && last.at - start > minMs) out.push({ from: start, ms: last.at - start })
  return out
}

/** A report as readable text (the long runner prints it; tests print it on failure). */
export function formatReport(r: ChaosReport): string {
  const lines: string[] = []
  lines.push('face/tier            reads  replica  fallbacks  violations  errors  max staleness ms')
  for (const [key, t] of Object.entries(r.tiers).sort()) {
    lines.push(
      `${key.padEnd(20)} ${String(t.reads).padStart(5)}  ${String(t.replica).padStart(7)}  ${String(t.fallbacks).padStart(9)}  ${String(t.violations).padStart(10)}  ${String(t.errors).padStart(6)}  ${String(Math.round(t.maxStalenessMs)).padStart(16)}`,
    )
  }
  lines.push(
    `writes acked ${r.writesAcked} of ${r.writeAttempts} attempts; lost acked writes ${r.lostWrites.length}; lost ryw writes ${r.lostRywWrites}`,
  )
  lines.push(`writes decided for a standby: ${r.writesOnStandby.length}`)
  const win = (name: string, ws: Window[]) =>
    lines.push(
      `${name}: ${ws.length ? ws.map((w) => `${w.ms} ms at +${w.from} ms (after: ${w.near})`).join('; ') : 'none'}`,
    )
  win('write unavailability', r.writeUnavailability)
  win('near_rt/eventual/fast reads served only by the primary (> 500 ms)', r.primaryOnlyReads)
  win('read error windows', r.readErrorWindows)
  lines.push(`faults: ${r.faults.map((f) => `+${f.at} ${f.what}`).join(', ')}`)
  for (const v of r.violations.slice(0, 20)) lines.push(`VIOLATION ${v}`)
  for (const v of r.writesOnStandby.slice(0, 20)) lines.push(`WRITE ON STANDBY ${v}`)
  return lines.join('\n')
}
