// A MariaDB cluster (primary + GTID replicas from the harness) with a freshet config and a routing pool over it.

import { type MariadbCluster, startMariadbCluster } from '../../src/cluster/index.js'
import type { FreshetConfigInput } from '../../src/core/config/schema.js'
import { createMysqlPool, type MysqlPool } from '../../src/mysql/index.js'
import { testConfig } from './cluster-config.js'
import { eventually } from './eventually.js'

/** A config for a MariaDB harness cluster, test-friendly intervals; `patch` merged one level deep. */
export function mariadbConfigFor(
  cluster: MariadbCluster,
  patch: Record<string, unknown> = {},
): FreshetConfigInput {
  const nodes = {
    engine: 'mysql',
    cluster: {
      primary: { name: 'primary', url: cluster.primary.url() },
      replicas: cluster.replicas.map((r) => ({ name: r.name, url: r.url() })),
    },
  }
  return testConfig(nodes, patch)
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
