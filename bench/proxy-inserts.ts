// Sequential single-row inserts (one client, autocommit, causal consistency on): direct vs the proxy in transaction and session mode
// (and transaction mode with causal consistency off: the token fetch's share), alternated. Wall time and this process's CPU per insert
// (the pg client runs here too, so the proxy's own CPU is the row's CPU minus direct's).
// Usage: npx tsx bench/proxy-inserts.ts [--inserts 5000] [--rounds 3]

import { parseArgs } from 'node:util'
import pg from 'pg'
import { startProxy } from '../src/cli/proxy.js'
import { startCluster } from '../src/cluster/index.js'
import { benchEngine } from './bench-util.js'

const { values } = parseArgs({
  options: { inserts: { type: 'string', default: '5000' }, rounds: { type: 'string', default: '3' } },
})
const inserts = Number(values.inserts)

const cluster = await startCluster({ replicas: 1 })
try {
  await cluster.query('primary', 'CREATE TABLE bench_inserts (id serial PRIMARY KEY, v int)')
  const proxyFor = (mode: 'transaction' | 'session', causal = true) =>
    startProxy({
      engine: benchEngine(cluster, {
        pools: { primary: { min_idle: 1, max_active: 4 }, replicas: { min_idle: 1, max_active: 4 } },
        proxy: { pool_mode: mode },
        consistency: { causal },
      }),
      listen: '127.0.0.1:0',
      adminListen: false,
    })
  const tx = await proxyFor('transaction')
  const session = await proxyFor('session')
  const noToken = await proxyFor('transaction', false)
  const portOf = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1))
  const targets: [string, number][] = [
    ['direct', cluster.primary.port],
    ['proxy, transaction mode', portOf(tx.address)],
    ['proxy, session mode', portOf(session.address)],
    ['proxy, tx mode, no causal', portOf(noToken.address)],
  ]
  const times = new Map<string, number[]>(targets.map(([n]) => [n, []]))
  const cpu = new Map<string, number[]>(targets.map(([n]) => [n, []]))
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const [name, port] of targets) {
      const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'freshet' })
      await client.connect()
      await client.query('INSERT INTO bench_inserts (v) VALUES (0)') // warm: pool checkout, statement caches
      const start = performance.now()
      const cpuStart = process.cpuUsage()
      for (let i = 0; i < inserts; i++) await client.query(`INSERT INTO bench_inserts (v) VALUES (${i})`)
      const used = process.cpuUsage(cpuStart)
      times.get(name)!.push(performance.now() - start)
      cpu.get(name)!.push((used.user + used.system) / inserts)
      await client.end()
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
  const direct = median(times.get('direct')!)
  const directCpu = median(cpu.get('direct')!)
  console.log(`${inserts} sequential inserts, simple protocol, median of ${values.rounds} alternating rounds`)
  for (const [name] of targets) {
    const ms = median(times.get(name)!)
    const us = median(cpu.get(name)!)
    console.log(
      `${name.padEnd(27)} ${ms.toFixed(0).padStart(6)} ms  x${(ms / direct).toFixed(2)}  +${(((ms - direct) * 1000) / inserts).toFixed(0)} µs/insert  CPU ${us.toFixed(1)} µs/insert (+${(us - directCpu).toFixed(1)} over direct)`,
    )
  }
  await tx.stop()
  await session.stop()
  await noToken.stop()
} finally {
  await cluster.stop()
}
