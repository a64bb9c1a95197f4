// A MariaDB cluster (primary + GTID replicas from the harness) with a freshet config and a routing pool over it.

import { type MariadbCluster, startMariadbCluster } from '../../src/cluster/index.js'
import type { FreshetConfigInput } from '../../src/core/config/schema.js'
import { createMysqlPool, type MysqlPool } from '../../src/mysql/index.js'
import { eventually } from './eventually.js'

/** A config for a MariaDB harness cluster, test-friendly intervals; `patch` merged one level deep. */
export function mariadbConfigFor(
  cluster: MariadbCluster,
  patch: Record<string, unknown> = {},
): FreshetConfigInput {
  const base: Record<string, unknown> = {
    version: 1,
    engine: 'mysql',
    cluster: {
      primary: { name: 'primary', url: cluster.primary.url() },
      replicas: cluster.replicas.map((r) => ({ name: r.name, url: r.url() })),
    },
    lag: { interval_ms: 100, heartbeat: { enabled: true, interval_ms: 100 } },
    health: { interval_ms: 200, timeout_ms: 2000 },
    circuit_breaker: { failure_threshold: 2, cooldown_ms: 1000 },
    pools: {
      primary: { min_idle: 1, max_active: 10, connection_timeout_ms: 5000 },
      replicas: { min_idle: 1, max_active: 10, connection_timeout_ms: 5000 },
      slow_start_ms: 0,
    },
    telemetry: { log_level: 'silent' },
  }
  for (const [key, value] of Object.entries(patch)) {
    const prev = base[key]
    base[key] =
      prev && typeof prev === 'object' && value && typeof value === 'object' && !Array.isArray(value)
        ? { ...(prev as object), ...(value as object) }
        : value
  }
  return base as FreshetConfigInput
}

/** Maps a server port (`SELECT @@port`) to the node name. */
export function mariadbNodeByPort(cluster: MariadbCluster): (port: number) => string {
  const map = new Map(cluster.nodes.map((n) => [n.port, n.name]))
  return (port) => map.get(port) ?? `unknown:${port}`
}

/** Waits until every replica is healthy with a lag reading. */
export async function mysqlPoolReady(pool: MysqlPool): Promise<void> {
  await pool.ready()
  await eventually('replicas have lag readings', () =>
    pool.snapshot().every((n) => n.role === 'primary' || (n.healthy && n.lag_ms !== null)),
  )
}

export interface MariadbFixture {
  readonly cluster: MariadbCluster
  readonly pool: MysqlPool
  /** Which node served `SELECT @@port AS port ...` run through `run`. */
  servedBy(run: (sql: string) => Promise<[unknown, unknown]>, sql?: string): Promise<string>
  stop(): Promise<void>
}

/** Starts a cluster, creates `setupSql` on the primary, waits for the replicas and opens a pool. */
export async function startMariadbFixture(
  options: { replicas?: number; patch?: Record<string, unknown>; setupSql?: readonly string[] } = {},
): Promise<MariadbFixture> {
  const cluster = await startMariadbCluster({ replicas: options.replicas ?? 2 })
  try {
    for (const sql of options.setupSql ?? []) await cluster.query('primary', sql)
    await cluster.waitForCatchUp()
    const pool = createMysqlPool(mariadbConfigFor(cluster, options.patch))
    await mysqlPoolReady(pool)
    const nodeOf = mariadbNodeByPort(cluster)
    return {
      cluster,
      pool,
      async servedBy(run, sql = 'SELECT @@port AS port') {
        const [rows] = await run(sql)
        return nodeOf(Number((rows as { port: number }[])[0]!.port))
      },
      async stop() {
        await pool.end().catch(() => {})
        await cluster.stop()
      },
    }
  } catch (err) {
    await cluster.stop()
    throw err
  }
}
