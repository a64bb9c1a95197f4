// pool.query / pool.execute through createMysqlPool vs a plain mysql2 pool against the same MariaDB node,
// in alternating rounds in one run, at 1 and 16 callers; plus eventual reads spread over two replicas.
// Run: npx tsx bench/mysql-library.ts [--seconds 3] [--rounds 3]
import { parseArgs } from 'node:util'
import mysql from 'mysql2/promise'
import { startMariadbCluster } from '../src/cluster/index.js'
import { createMysqlPool, mysqlConnectionOptions } from '../src/mysql/index.js'
import { alternate, median, printTable } from './bench-util.js'

type Query = (sql: string, values: unknown[]) => Promise<unknown>

async function throughput(query: Query, sql: string, clients: number, seconds: number): Promise<number> {
  const deadline = performance.now() + seconds * 1000
  let done = 0
  await Promise.all(
    Array.from({ length: clients }, async (_, w) => {
      while (performance.now() < deadline) {
        await query(sql, [(w * 7919 + done) % 1000])
        done++
      }
    }),
  )
  return done / seconds
}

export async function runMysqlLibraryBench(seconds = 3, rounds = 3) {
  const cluster = await startMariadbCluster({ replicas: 2 })
  try {
    await cluster.query('primary', 'CREATE TABLE bench_accounts (aid INT PRIMARY KEY, abalance INT NOT NULL)')
    await cluster.query('primary', 'INSERT INTO bench_accounts SELECT seq, 0 FROM seq_0_to_999')
    await cluster.waitForCatchUp()
    const url = cluster.primary.url()
    const plain = mysql.createPool({ ...mysqlConnectionOptions(url), connectionLimit: 16 })
    // Same node for both: unannotated reads go to the primary.
    const freshet = createMysqlPool({
      engine: 'mysql',
      cluster: {
        primary: { name: 'primary', url },
        replicas: cluster.replicas.map((r) => ({ name: r.name, url: r.url() })),
      },
      pools: { primary: { min_idle: 16, max_active: 16 }, replicas: { min_idle: 1, max_active: 16 } },
      telemetry: { log_level: 'silent' },
    })
    await freshet.ready()
    const SELECT = 'SELECT abalance FROM bench_accounts WHERE aid = ?'
    const EVENTUAL = `/* FRESHNESS: EVENTUAL */ ${SELECT}`
    const rows: (string | number)[][] = []
    for (const clients of [1, 16]) {
      const r = await alternate(
        {
          'mysql2 query': () => throughput((s, v) => plain.query(s, v), SELECT, clients, seconds),
          'freshet query': () => throughput((s, v) => freshet.query(s, v), SELECT, clients, seconds),
          'mysql2 execute': () =>
            throughput((s, v) => plain.execute(s, v as never), SELECT, clients, seconds),
          'freshet execute': () => throughput((s, v) => freshet.execute(s, v), SELECT, clients, seconds),
          'freshet eventual': () => throughput((s, v) => freshet.query(s, v), EVENTUAL, clients, seconds),
        },
        rounds,
      )
      const label = `${clients} client${clients > 1 ? 's' : ''}`
      for (const [name, baseline] of [
        ['freshet query', 'mysql2 query'],
        ['freshet execute', 'mysql2 execute'],
        ['freshet eventual', 'mysql2 query'],
      ] as const) {
        const ours = median(r[name])
        const against = median(r[baseline])
        rows.push([label, name, against.toFixed(0), ours.toFixed(0), (ours / against).toFixed(3)])
      }
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
  const rows = await runMysqlLibraryBench(Number(values.seconds), Number(values.rounds))
  console.log(
    '\nMySQL library: queries/s, median of alternating rounds (ratio = freshet / plain mysql2 pool; "eventual" reads spread over 2 replicas)',
  )
  printTable(['concurrency', 'freshet', 'mysql2 q/s', 'freshet q/s', 'ratio'], rows)
}
