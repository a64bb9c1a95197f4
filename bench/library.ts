// pool.query through createPool vs a plain pg.Pool against the same node, in alternating rounds in one
// run, at 1 and 16 concurrent callers. Run: npx tsx bench/library.ts [--seconds 3] [--rounds 3]
import { parseArgs } from 'node:util'
import pg from 'pg'
import { startCluster } from '../src/cluster/index.js'
import { createPool } from '../src/index.js'
import { alternate, median, printTable } from './bench-util.js'

type Query = (sql: string, values: unknown[]) => Promise<unknown>

async function throughput(query: Query, clients: number, seconds: number): Promise<number> {
  const deadline = performance.now() + seconds * 1000
  let done = 0
  await Promise.all(
    Array.from({ length: clients }, async (_, w) => {
      while (performance.now() < deadline) {
        await query('SELECT abalance FROM bench_accounts WHERE aid = $1', [(w * 7919 + done) % 1000])
        done++
      }
    }),
  )
  return done / seconds
}

export async function runLibraryBench(seconds = 3, rounds = 3) {
  const cluster = await startCluster({ replicas: 1, onProgress: () => {} })
  try {
    await cluster.query(
      'primary',
      'CREATE TABLE bench_accounts AS SELECT g AS aid, 0 AS abalance FROM generate_series(0, 999) g; ALTER TABLE bench_accounts ADD PRIMARY KEY (aid)',
    )
    await cluster.waitForCatchUp()
    const url = cluster.primary.url()
    const plain = new pg.Pool({ connectionString: url, max: 16 })
    // Same node for both: reads are unannotated, so freshet routes them to the primary.
    const freshet = createPool({
      cluster: {
        primary: { name: 'primary', url },
        replicas: cluster.replicas.map((r) => ({ name: r.name, url: r.url() })),
      },
      pools: { primary: { min_idle: 16, max_active: 16 }, replicas: { min_idle: 1, max_active: 4 } },
      telemetry: { log_level: 'silent' },
    })
    await freshet.ready()
    const rows: (string | number)[][] = []
    for (const clients of [1, 16]) {
      const r = await alternate(
        {
          'pg.Pool': () => throughput((s, v) => plain.query(s, v), clients, seconds),
          createPool: () => throughput((s, v) => freshet.query(s, v), clients, seconds),
        },
        rounds,
      )
      const base = median(r['pg.Pool'])
      const ours = median(r.createPool)
      rows.push([
        `${clients} client${clients > 1 ? 's' : ''}`,
        base.toFixed(0),
        ours.toFixed(0),
        (ours / base).toFixed(3),
      ])
    }
    await plain.end()
    await freshet.end()
    return rows
  } finally {
    await cluster.stop()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: { seconds: { type: 'string', default: '3' }, rounds: { type: 'string', default: '3' } },
  })
  const rows = await runLibraryBench(Number(values.seconds), Number(values.rounds))
  console.log(
    '\nLibrary: queries/s, median of alternating rounds (ratio = createPool / pg.Pool, same node, same run)',
  )
  printTable(['concurrency', 'pg.Pool q/s', 'createPool q/s', 'ratio'], rows)
}
