// Builds a freshet config for a harness cluster, with fast probes so tests observe changes quickly.

import type { FreshetConfigInput } from '../../src/core/config/schema.js'
import type { ShardedConfigInput } from '../../src/library/create-pool.js'
import type { FreshetPool } from '../../src/library/freshet-pool.js'
import type { LocalCluster, ShardedCluster } from '../cluster/index.js'
import { eventually } from './eventually.js'

/**
 * `nodes` (the `cluster` or `shards`/`sharding` keys, `engine`) plus test-friendly intervals and pools;
 * `patch` is merged one level deep. One place for the settings every harness config shares.
 */
export function testConfig(
  nodes: Record<string, unknown>,
  patch: Record<string, unknown> = {},
): FreshetConfigInput {
  const base: Record<string, unknown> = {
    version: 1,
    ...nodes,
    lag: { interval_ms: 100, heartbeat: { enabled: true, interval_ms: 100 } },
    // A reading is trusted for 3 x 100 ms + timeout_ms: generous, as CI machines run servers, clients
    // and browsers on 2 cores and a probe answer can be late.
    health: { interval_ms: 200, timeout_ms: 2000 },
    circuit_breaker: { failure_threshold: 2, cooldown_ms: 1000 },
    pools: {
      // Generous connect timeouts: CI machines have 2 cores shared by servers, clients and tests.
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

/** A config for `cluster`, with test-friendly intervals; `patch` is merged one level deep. */
export function configFor(cluster: LocalCluster, patch: Record<string, unknown> = {}): FreshetConfigInput {
  const nodes = {
    cluster: {
      primary: { name: cluster.primary.name, url: cluster.primary.url() },
      replicas: cluster.replicas.map((r) => ({ name: r.name, url: r.url() })),
    },
  }
  return testConfig(nodes, patch)
}

/**
 * A config for a harness sharded cluster: `sc.config()` (shards, and sharding with the tables defined so
 * far) with test-friendly intervals; `patch` is merged one level deep (a `sharding` patch into the
 * harness's sharding section).
 * @example
 * const pool = createPool(shardedConfigFor(sc, { routing: { unannotated: 'near_rt' } }))
 */
export function shardedConfigFor(
  sc: ShardedCluster,
  patch: Record<string, unknown> = {},
): ShardedConfigInput {
  return testConfig(sc.config(), patch) as ShardedConfigInput
}

/** Maps a server port (inet_server_port()) to the node name. */
export function nodeByPort(cluster: LocalCluster): (port: number) => string {
  const map = new Map(cluster.nodes.map((n) => [n.port, n.name]))
  return (port) => map.get(port) ?? `unknown:${port}`
}

/** Waits until `pool` has started and every replica is healthy with a lag reading: routing checks start from there. */
export async function poolReady(pool: FreshetPool): Promise<void> {
  await pool.ready()
  await eventually('replicas have lag readings', () =>
    pool
      .snapshot()
      .every(
        (n) =>
          n.role === 'primary' || (n.healthy && n.lag_ms !== null && (n.staleness_bound_ms ?? 1e9) < 300),
      ),
  )
}
