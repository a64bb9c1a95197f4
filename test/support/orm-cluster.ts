// Shared by the ORM suites (pg, Drizzle, Kysely, Prisma): one real cluster and pool per file, decision
// capture, paused replicas and the check every example run must pass.

import assert from 'node:assert/strict'
import { createPool, type Decision, type FreshetPool } from '../../src/index.js'
import { type LocalCluster, startCluster } from '../cluster/index.js'
import { configFor, nodeByPort, poolReady } from './cluster-config.js'

/** The tables every ORM suite and example uses. */
export const BLOG_SCHEMA = [
  'CREATE TABLE IF NOT EXISTS authors (id serial PRIMARY KEY, email text UNIQUE NOT NULL, name text NOT NULL)',
  `CREATE TABLE IF NOT EXISTS posts (id serial PRIMARY KEY, title text NOT NULL,
     published boolean NOT NULL DEFAULT false, author_id int NOT NULL REFERENCES authors (id))`,
  "INSERT INTO authors (email, name) VALUES ('alan@example.com', 'Alan')",
  "INSERT INTO posts (title, published, author_id) VALUES ('Computable numbers', true, 1)",
]

export interface OrmCluster {
  cluster: LocalCluster
  pool: FreshetPool
  /** Node name for an inet_server_port() value. */
  nodeOf: (port: number) => string
}

/**
 * Starts a primary and two replicas, runs `seed` on the primary, waits for the replicas to replay it, and
 * opens a pool once every replica reports a lag reading.
 */
export async function startOrmCluster(seed: readonly string[]): Promise<OrmCluster> {
  const cluster = await startCluster({ replicas: 2 })
  for (const sql of seed) await cluster.query('primary', sql)
  await cluster.waitForCatchUp()
  const pool = createPool(configFor(cluster))
  await poolReady(pool)
  return { cluster, pool, nodeOf: nodeByPort(cluster) }
}

/** Runs fn and returns its result with the nodes freshet sent its statements to, in order. */
export async function targetsOf<T>(
  pool: FreshetPool,
  fn: () => Promise<T>,
): Promise<{ result: T; nodes: string[] }> {
  const nodes: string[] = []
  const listener = (d: Decision) => nodes.push(d.target ?? 'error')
  pool.on('decision', listener)
  try {
    return { result: await fn(), nodes }
  } finally {
    pool.off('decision', listener)
  }
}

/** Runs fn with WAL replay paused on every replica (they stay connected and look healthy, but stale). */
export async function withReplicasPaused<T>(cluster: LocalCluster, fn: () => Promise<T>): Promise<T> {
  for (const r of cluster.replicas) await cluster.pauseReplay(r.name)
  try {
    return await fn()
  } finally {
    for (const r of cluster.replicas) await cluster.resumeReplay(r.name)
  }
}

/** An example's decision log shows its writes on the primary and at least one read on a replica. */
export function assertExampleRouted(lines: readonly string[]): void {
  assert.ok(
    lines.some((l) => l.startsWith('routed to primary (write)')),
    `no write on the primary:\n${lines.join('\n')}`,
  )
  assert.ok(
    lines.some((l) => /^routed to replica_\d \(/.test(l)),
    `no read on a replica:\n${lines.join('\n')}`,
  )
}
