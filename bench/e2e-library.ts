// The library arm of the end-to-end bench: pgbench's select-only statement issued from Node through createPool vs a plain pg.Pool.

import pg from 'pg'
import type { LocalCluster } from '../src/cluster/index.js'
import { createPool, type FreshetPool } from '../src/index.js'
import { type CellResult, quantile, type Workload } from './e2e-pgbench.js'

/** A library variant: something with pg.Pool's `query`. */
export interface LibraryVariant {
  readonly name: string
  readonly pool: { query(q: string | pg.QueryConfig): Promise<unknown>; end(): Promise<void> }
}

export const LIBRARY_WORKLOADS: readonly Workload[] = ['select-simple', 'select-extended', 'select-prepared']

const SELECT = 'SELECT abalance FROM pgbench_accounts WHERE aid = '

/** pg.Pool, createPool with unannotated reads on the primary (pure overhead), and with them `eventual` (replicas). */
export async function startLibraryVariants(
  cluster: LocalCluster,
  maxClients: number,
): Promise<LibraryVariant[]> {
  const url = cluster.primary.url()
  const freshet = (unannotated: string): FreshetPool =>
    createPool({
      cluster: {
        primary: { name: cluster.primary.name, url },
        replicas: cluster.replicas.map((r) => ({ name: r.name, url: r.url() })),
      },
      routing: { unannotated },
      pools: {
        primary: { min_idle: 1, max_active: maxClients },
        replicas: { min_idle: 1, max_active: maxClients },
      },
      telemetry: { log_level: 'silent', log_sampling_rate: 0 },
    })
  const primary = freshet('primary')
  const eventual = freshet('eventual')
  await Promise.all([primary.ready(), eventual.ready()])
  return [
    { name: 'pg.Pool', pool: new pg.Pool({ connectionString: url, max: maxClients }) },
    { name: 'createPool', pool: primary },
    { name: 'createPool-eventual', pool: eventual },
  ]
}

/**
 * `clients` callers in a closed loop for `seconds`, each with its own random aid, in the workload's
 * protocol: simple = literal text (pg's simple query), extended = unnamed parameterised statement,
 * prepared = a named statement (parsed once per connection, as `pgbench -M prepared`).
 */
export async function runLibraryCell(
  variant: LibraryVariant,
  workload: Workload,
  clients: number,
  seconds: number,
  accounts: number,
): Promise<CellResult> {
  const lat: number[] = []
  let failed = 0
  const start = performance.now()
  const deadline = start + seconds * 1000
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < deadline) {
        const aid = 1 + Math.floor(Math.random() * accounts)
        const q: string | pg.QueryConfig =
          workload === 'select-simple'
            ? SELECT + aid
            : workload === 'select-prepared'
              ? { name: 'bench_select', text: `${SELECT}$1`, values: [aid] }
              : { text: `${SELECT}$1`, values: [aid] }
        const t0 = performance.now()
        try {
          await variant.pool.query(q)
          lat.push(performance.now() - t0)
        } catch {
          failed++
        }
      }
    }),
  )
  const wall = (performance.now() - start) / 1000
  const arr = Float64Array.from(lat)
  return {
    tps: arr.length / wall,
    meanMs: arr.reduce((a, b) => a + b, 0) / (arr.length || 1),
    p99Ms: quantile(arr, 0.99),
    transactions: arr.length,
    failed,
  }
}
