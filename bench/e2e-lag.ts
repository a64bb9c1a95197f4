// Routing quality under lag: readers during a replica pause, through freshet (library, proxy), pgpool-II and a lag-blind round robin.

import pg from 'pg'
import type { LocalCluster } from '../src/cluster/index.js'
import { createPool } from '../src/index.js'
import type { LagResult, LagRow } from './e2e-results.js'
import { freshetProxySetup } from './routers/freshet-proxy.js'
import { pgpoolSetup } from './routers/pgpool.js'
import type { RouterSetup, RunningRouter } from './routers/router.js'

const BOUND_MS = 500 // the default near_rt tier's max_lag_ms
const READERS = 8
const WRITE_EVERY_MS = 20
const READ = `/* FRESHNESS: NEAR_RT */ SELECT n, inet_server_port() AS port FROM bench_counter WHERE id = 1`

interface Read {
  t0: number
  n: number
  port: number
}

type Query = (sql: string) => Promise<{ n: number; port: number }>

/** pg.Pool rows as { n, port }. */
function viaPool(pool: { query(sql: string): Promise<pg.QueryResult> }): Query {
  return async (sql) => {
    const r = await pool.query(sql)
    const row = r.rows[0] as { n: string; port: number }
    return { n: Number(row.n), port: row.port }
  }
}

/**
 * Each router gets the same schedule: `seconds` of reads from 8 callers, replica_1's replay paused from
 * a quarter to three quarters of the way, while a writer bumps a counter on the primary every 20 ms.
 * A read is stale when the first write it missed had been acknowledged more than 500 ms before the
 * read started (the acknowledgement time is an upper bound of the commit, so staleness is slightly
 * underestimated, by one round trip).
 */
export async function runLagBench(
  cluster: LocalCluster,
  tmp: string,
  seconds: number,
  log: (s: string) => void,
): Promise<LagResult> {
  await cluster.query(
    'primary',
    'CREATE TABLE bench_counter (id int PRIMARY KEY, n bigint NOT NULL); INSERT INTO bench_counter VALUES (1, 0)',
  )
  await cluster.waitForCatchUp(30_000)
  const notes: string[] = []
  const committedAt: number[] = [0]
  const writer = new pg.Client({ connectionString: cluster.primary.url() })
  await writer.connect()
  let writing = true
  const writerLoop = (async () => {
    while (writing) {
      const r = await writer.query('UPDATE bench_counter SET n = n + 1 WHERE id = 1 RETURNING n')
      committedAt[Number(r.rows[0].n)] = performance.now()
      await new Promise((res) => setTimeout(res, WRITE_EVERY_MS))
    }
  })()

  // pgpool-II 4.3 measures delay in WAL bytes only: translate the time bound at this writer's WAL rate.
  const lsn = async () => (await writer.query('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l as string
  const l0 = await lsn()
  const n0 = committedAt.length
  await new Promise((r) => setTimeout(r, 2000))
  const bytes = Number(
    (await writer.query('SELECT pg_wal_lsn_diff($1, $2) AS d', [await lsn(), l0])).rows[0].d,
  )
  const writesPerSecond = (committedAt.length - n0) / 2
  const thresholdBytes = Math.max(1, Math.round((bytes / 2) * (BOUND_MS / 1000)))
  notes.push(
    `pgpool-II: delay_threshold = ${thresholdBytes} bytes (≈${BOUND_MS} ms of this writer's WAL), sr_check_period = 1 s, primary weight 0`,
  )
  notes.push(
    'freshet: reads carry /* FRESHNESS: NEAR_RT */ (max_lag_ms 500, fallback primary); default probes (250 ms, paired with a primary position sample); eligibility by the staleness bound',
  )

  const replica1 = cluster.node('replica_1').port
  const replicaPorts = new Set(cluster.replicas.map((r) => r.port))
  const rows: LagRow[] = []
  const started: RunningRouter[] = []

  const measure = async (router: string, query: Query, reportedBound?: () => number) => {
    await cluster.waitForCatchUp(30_000)
    const reads: Read[] = []
    let errors = 0
    const t0 = performance.now()
    const pauseAt = t0 + (seconds * 1000) / 4
    const resumeAt = t0 + (seconds * 3000) / 4
    const end = t0 + seconds * 1000
    const schedule = (async () => {
      await new Promise((r) => setTimeout(r, pauseAt - performance.now()))
      await cluster.pauseReplay('replica_1')
      await new Promise((r) => setTimeout(r, resumeAt - performance.now()))
      await cluster.resumeReplay('replica_1')
    })()
    await Promise.all(
      Array.from({ length: READERS }, async () => {
        while (performance.now() < end) {
          const start = performance.now()
          try {
            const { n, port } = await query(READ)
            reads.push({ t0: start, n, port })
          } catch {
            errors++
            await new Promise((r) => setTimeout(r, 10))
          }
        }
      }),
    )
    await schedule
    let stale = 0
    let maxStaleness = 0
    let onReplica = 0
    let onPrimary = 0
    let onPaused = 0
    for (const r of reads) {
      if (replicaPorts.has(r.port)) onReplica++
      else onPrimary++
      if (r.port === replica1 && r.t0 >= pauseAt && r.t0 <= resumeAt) onPaused++
      const missed = committedAt[r.n + 1]
      const staleness = missed !== undefined && missed < r.t0 ? r.t0 - missed : 0
      if (staleness > BOUND_MS) stale++
      maxStaleness = Math.max(maxStaleness, staleness)
    }
    rows.push({
      router,
      reads: reads.length,
      errors,
      replicaShare: reads.length ? onReplica / reads.length : 0,
      primaryReads: onPrimary,
      pausedReplicaReads: onPaused,
      staleReads: stale,
      maxStalenessMs: maxStaleness,
      withinBound: maxStaleness <= BOUND_MS,
      ...(reportedBound ? { maxReportedBoundMs: reportedBound() } : {}),
    })
    log(
      `lag ${router}: ${reads.length} reads, ${stale} stale, ${onPrimary} on primary, max staleness ${Math.round(maxStaleness)} ms (bound ${BOUND_MS} ms)`,
    )
  }

  try {
    // Baseline that shows the measurement can see staleness: round robin over the replicas, no lag checks.
    const perReplica = cluster.replicas.map((r) => new pg.Pool({ connectionString: r.url(), max: READERS }))
    let next = 0
    await measure('round-robin (no lag check)', (sql) =>
      viaPool(perReplica[next++ % perReplica.length]!)(sql),
    )
    await Promise.all(perReplica.map((p) => p.end()))

    const lib = createPool({
      cluster: {
        primary: { name: cluster.primary.name, url: cluster.primary.url() },
        replicas: cluster.replicas.map((r) => ({ name: r.name, url: r.url() })),
      },
      pools: {
        primary: { min_idle: 1, max_active: READERS },
        replicas: { min_idle: 1, max_active: READERS },
      },
      telemetry: { log_level: 'silent', log_sampling_rate: 0 },
    })
    await lib.ready()
    // the bound freshet itself reported for the replica reads: measured staleness must stay under it
    let maxReported = 0
    lib.on('decision', (d) => {
      if (d.role === 'replica' && d.stalenessBoundMs !== null)
        maxReported = Math.max(maxReported, d.stalenessBoundMs)
    })
    await measure('freshet library', viaPool(lib as unknown as pg.Pool), () => maxReported)
    await lib.end()

    const throughRouter = async (label: string, setup: RouterSetup) => {
      const why = setup.missing()
      if (why) return void notes.push(`${label}: skipped, ${why}`)
      const r = await setup.start(cluster, tmp)
      started.push(r)
      const pool = new pg.Pool({
        host: '127.0.0.1',
        port: r.port,
        user: 'postgres',
        database: 'freshet',
        max: READERS,
      })
      await measure(label, viaPool(pool))
      if (label.startsWith('pgpool')) {
        // pgpool's own view: per-node select counts and the replication delay it saw.
        const nodes = await pool.query('SHOW pool_nodes').catch(() => null)
        for (const n of nodes?.rows ?? []) {
          notes.push(
            `pgpool-II node ${n.port}: role ${n.role}, select_cnt ${n.select_cnt}, replication_delay ${n.replication_delay}, status ${n.status}`,
          )
        }
      }
      await pool.end()
    }
    await throughRouter('freshet-proxy', freshetProxySetup({ name: 'freshet-proxy-lag' }))
    await throughRouter(
      'pgpool-II',
      pgpoolSetup({
        name: 'pgpool-II-lag',
        srCheckPeriod: 1,
        delayThresholdBytes: thresholdBytes,
        primaryWeight: 0,
        readOnlyFunctions: ['inet_server_port'],
        children: READERS + 4,
      }),
    )
  } finally {
    await cluster.resumeReplay('replica_1').catch(() => {})
    for (const r of started) await r.stop().catch(() => {})
    writing = false
    await writerLoop.catch(() => {})
    await writer.end()
  }
  return {
    seconds,
    pausedSeconds: seconds / 2,
    boundMs: BOUND_MS,
    readers: READERS,
    writesPerSecond,
    notes,
    rows,
  }
}
