// Shared by the HTTP and messaging suites: a real cluster and two independent pools on it (two app
// instances, or a producer and a consumer) that share nothing but the headers passed between them.

import { createPool, type FreshetPool } from '../../src/index.js'
import { type LocalCluster, startCluster } from '../cluster/index.js'
import { configFor, nodeByPort, poolReady } from './cluster-config.js'

export { withReplicasPaused } from './orm-cluster.js'

export interface TwoInstances {
  cluster: LocalCluster
  poolA: FreshetPool
  poolB: FreshetPool
  /** Node name for an inet_server_port() value. */
  nodeOf: (port: number) => string
  /** Ends both pools and stops the cluster. */
  stop(): Promise<void>
}

/**
 * Starts a primary and two replicas, runs `schema` on the primary, and opens two pools once every
 * replica reports a lag reading. Replays are awaited for at most 300 ms, so that with replicas paused
 * a read carrying a token settles on the primary quickly.
 */
export async function startTwoInstances(schema: readonly string[]): Promise<TwoInstances> {
  const cluster = await startCluster({ replicas: 2 })
  for (const sql of schema) await cluster.query('primary', sql)
  await cluster.waitForCatchUp()
  const config = configFor(cluster, { consistency: { max_wait_for_sync_ms: 300 } })
  const poolA = createPool(config)
  const poolB = createPool(config)
  for (const pool of [poolA, poolB]) {
    await poolReady(pool)
  }
  return {
    cluster,
    poolA,
    poolB,
    nodeOf: nodeByPort(cluster),
    async stop() {
      await poolA.end()
      await poolB.end()
      await cluster.stop()
    },
  }
}
