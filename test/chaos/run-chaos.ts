// One chaos run: a real cluster with relays in front of the replicas, freshet's faces, the workload and the fault schedule.

import { parseConfig } from '../../src/core/config/parse-config.js'
import { createPool, type FreshetPool } from '../../src/index.js'
import { ProxyServer } from '../../src/proxy/proxy-server.js'
import { RoutingEngine } from '../../src/routing/routing-engine.js'
import { type FaultRelay, type LocalCluster, startCluster, startFaultRelay } from '../cluster/index.js'
import {
  ChaosLog,
  type ChaosReport,
  COUNTER_SETUP,
  type Face,
  startWorkload,
  type TierBounds,
  verdict,
} from './checker.js'
import { libraryFace, proxyFace } from './faces.js'
import { runSchedule, seededRandom } from './faults.js'

export interface ChaosOptions {
  /** Schedule length for the long run (ms); ignored by the short schedule. */
  durationMs?: number
  short?: boolean
  seed?: number
  /** Which faces read: default both. */
  faces?: ('library' | 'proxy')[]
  onProgress?: (msg: string) => void
}

// The default probe settings (lag.interval_ms 250, heartbeat 250 ms, health 1 s / 500 ms): the guarantee
// must hold as shipped, not with probes tuned for the test.
const MAX_LAG = { strict: 0, near_rt: 500, eventual: 2000, fast: 200 }

/** The bounds the checker applies: the tiers' own, plus what measuring needs (see TierBounds.slackMs). */
export const BOUNDS: TierBounds = { maxLagMs: MAX_LAG, slackMs: 50 }

/** freshet's config for the run: replicas are reached through their relays. */
function chaosConfig(cluster: LocalCluster, relays: Map<string, FaultRelay>): string {
  return JSON.stringify({
    version: 1,
    cluster: {
      primary: { name: cluster.primary.name, url: cluster.primary.url() },
      replicas: cluster.replicas.map((r) => ({
        name: r.name,
        url: `postgres://postgres@127.0.0.1:${relays.get(r.name)!.port}/freshet`,
      })),
    },
    routing: {
      tiers: {
        strict: { max_lag_ms: 0 },
        near_rt: { max_lag_ms: MAX_LAG.near_rt, fallback: 'primary' },
        // 2 s instead of the default 60 s so that faults of a few seconds cross the bound.
        eventual: { max_lag_ms: MAX_LAG.eventual, fallback: 'least_lagged' },
        // a custom tier tighter than the probe interval
        fast: { max_lag_ms: MAX_LAG.fast, fallback: 'primary' },
      },
    },
    circuit_breaker: { failure_threshold: 2, cooldown_ms: 1000 },
    consistency: { max_wait_for_sync_ms: 500 },
    pools: {
      primary: { min_idle: 1, max_active: 10, connection_timeout_ms: 1000 },
      replicas: { min_idle: 1, max_active: 10, connection_timeout_ms: 500 },
      slow_start_ms: 0,
    },
    proxy: {
      listen: '127.0.0.1:0',
      auth: { type: 'scram-sha-256', users: { app: { password: 'app' } } },
      shutdown_timeout_ms: 1000,
    },
    telemetry: { log_level: 'silent' },
  })
}

/** Boots everything, runs workload and schedule, checks, tears down; resolves with the report. */
export async function runChaos(o: ChaosOptions = {}): Promise<ChaosReport> {
  const progress = o.onProgress ?? (() => {})
  const wanted = o.faces ?? ['library', 'proxy']
  const cluster = await startCluster({
    replicas: 2,
    settings: { synchronous_standby_names: 'ANY 1 (replica_1, replica_2)' },
  })
  const relays = new Map<string, FaultRelay>()
  let pool: FreshetPool | null = null
  let engine: RoutingEngine | null = null
  let proxy: ProxyServer | null = null
  const faces: Face[] = []
  const log = new ChaosLog()
  try {
    for (const sql of COUNTER_SETUP) await cluster.query('primary', sql)
    await cluster.query('primary', 'GRANT ALL ON chaos_counter, chaos_ledger, chaos_ryw TO app')
    await cluster.waitForCatchUp()
    for (const r of cluster.replicas) {
      const name = r.name
      relays.set(name, await startFaultRelay({ target: () => cluster.node(name).port }))
    }
    const config = parseConfig(chaosConfig(cluster, relays))
    if (wanted.includes('library')) {
      pool = createPool(config, { pg: { query_timeout: 4000 } })
      pool.on('error', () => {})
      await pool.ready()
      faces.push(libraryFace(pool, log))
    }
    if (wanted.includes('proxy')) {
      engine = new RoutingEngine(config)
      await engine.start()
      proxy = new ProxyServer(engine, { log: () => {} })
      const { port } = await proxy.listen()
      faces.push(proxyFace(proxy, `postgres://app:app@127.0.0.1:${port}/freshet`, log))
    }
    const nodeOf = (port: number) => cluster.nodes.find((n) => n.port === port)?.name ?? `unknown:${port}`
    progress(`cluster up; faces: ${faces.map((f) => f.name).join(', ')}`)
    const workload = startWorkload({ cluster, faces, log, nodeOf })
    try {
      await runSchedule(
        { cluster, relays, log, rand: seededRandom(o.seed ?? 1) },
        { durationMs: o.durationMs ?? 60_000, short: o.short ?? false },
      )
    } finally {
      await workload.stop()
    }
    progress('schedule done; checking')
    const ledger = await cluster.query<{ seq: number }>(
      cluster.primary.name,
      'SELECT seq::int AS seq FROM chaos_ledger',
    )
    const ryw = await cluster.query<{ k: string }>(
      cluster.primary.name,
      "SELECT session || ':' || n AS k FROM chaos_ryw",
    )
    return verdict(log, BOUNDS, new Set(ledger.rows.map((r) => r.seq)), new Set(ryw.rows.map((r) => r.k)))
  } finally {
    for (const f of faces) await f.close().catch(() => {})
    await proxy?.close(500).catch(() => {})
    await engine?.stop().catch(() => {})
    await pool?.end().catch(() => {})
    for (const r of relays.values()) await r.close()
    await cluster.stop()
  }
}
