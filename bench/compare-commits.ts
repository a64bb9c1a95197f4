// The same benchmark on two source trees (say, the commit before a redesign and main), in one run, in
// alternating rounds: the freshet proxy under pgbench, and createPool's pool.query, CPU per transaction.
// Usage: npx tsx bench/compare-commits.ts --base /tmp/freshet-pre [--head .] [--seconds 5] [--rounds 3]
//        [--clients 1,16] [--modes simple,extended] [--no-library] [--json bench/results/compare-commits.json]
// Each tree needs its node_modules (a symlink to this checkout's is fine):
//   git archive <commit> | tar -x -C /tmp/freshet-pre && ln -s "$PWD/node_modules" /tmp/freshet-pre/

import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { startCluster } from '../src/cluster/index.js'
import { median, printTable } from './bench-util.js'
import { treeCpuSeconds } from './e2e-cpu.js'
import { pgbench } from './pgbench-run.js'
import { freshetProxySetup } from './routers/freshet-proxy.js'

const { values } = parseArgs({
  options: {
    base: { type: 'string' },
    head: { type: 'string', default: '.' },
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    clients: { type: 'string', default: '1,16' },
    modes: { type: 'string', default: 'simple,extended' },
    'no-library': { type: 'boolean', default: false },
    json: { type: 'string', default: 'bench/results/compare-commits.json' },
  },
})
if (!values.base) throw new Error('--base <source tree> is required')
const trees = { base: resolve(values.base), head: resolve(values.head) }
for (const dir of Object.values(trees)) {
  if (!existsSync(join(dir, 'node_modules'))) throw new Error(`${dir} has no node_modules (see the header)`)
}
const seconds = Number(values.seconds)
const rounds = Number(values.rounds)
const clientCounts = values.clients.split(',').map(Number)
const modes = values.modes.split(',')
type Side = keyof typeof trees

/** One measured run: transactions per second and CPU microseconds of the router per transaction. */
interface Sample {
  tps: number
  cpuUsPerTx: number
}

// The library loop, written into each tree so that it imports that tree's createPool.
const LOOP = `import { createPool } from '../src/index.js'
const [url, replicaUrl, seconds, clients] = process.argv.slice(2)
const n = Number(clients)
const pool = createPool({
  cluster: { primary: { name: 'primary', url }, replicas: [{ name: 'replica_1', url: replicaUrl }] },
  pools: { primary: { min_idle: n, max_active: n }, replicas: { min_idle: 1, max_active: 4 } },
  telemetry: { log_level: 'silent' },
})
await pool.ready()
const run = async (ms) => {
  const deadline = performance.now() + ms
  let done = 0
  await Promise.all(Array.from({ length: n }, async (_, w) => {
    while (performance.now() < deadline) {
      await pool.query('SELECT abalance FROM pgbench_accounts WHERE aid = $1', [((w * 7919 + done) % 100000) + 1])
      done++
    }
  }))
  return done
}
await run(1000)
const cpu0 = process.cpuUsage()
const t0 = performance.now()
const queries = await run(Number(seconds) * 1000)
const wall = (performance.now() - t0) / 1000
const cpu = process.cpuUsage(cpu0)
console.log(JSON.stringify({ queries, wall, cpuUs: cpu.user + cpu.system }))
await pool.end()
`

function runLoop(tree: string, args: string[]): Promise<Sample> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(tree, 'bench', '.compare-commits-loop.mts'), ...args],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    )
    let out = ''
    child.stdout.on('data', (d) => {
      out += d
    })
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? ''
      if (code !== 0) return reject(new Error(`library loop in ${tree} exited ${code}: ${out}`))
      const r = JSON.parse(line) as { queries: number; wall: number; cpuUs: number }
      resolvePromise({ tps: r.queries / r.wall, cpuUsPerTx: r.cpuUs / r.queries })
    })
  })
}

const dir = mkdtempSync(join(tmpdir(), 'freshet-compare-'))
const cluster = await startCluster({ replicas: 1, onProgress: () => {} })
const proxies: { side: Side; port: number; pid: number; stop: () => Promise<void> }[] = []
const results: { cell: string; side: Side; sample: Sample }[] = []
try {
  await pgbench(cluster.primary.port, ['-i', '-s', '1', '-q'])
  await cluster.waitForCatchUp()
  for (const side of Object.keys(trees) as Side[]) {
    const main = join(trees[side], 'bench', 'routers', 'freshet-proxy-main.ts')
    const running = await freshetProxySetup({ name: side, main }).start(cluster, dir)
    proxies.push({ side, port: running.port, pid: running.pid!, stop: () => running.stop() })
    if (!values['no-library']) writeFileSync(join(trees[side], 'bench', '.compare-commits-loop.mts'), LOOP)
  }
  for (const mode of modes) {
    for (const clients of clientCounts) {
      const cell = `proxy ${mode} ${clients}c`
      const args = [
        '-S',
        '-M',
        mode,
        '-c',
        String(clients),
        '-j',
        String(Math.min(clients, 2)),
        '-T',
        String(seconds),
      ]
      for (const p of proxies) await pgbench(p.port, [...args.slice(0, -1), '1']) // warm-up
      for (let r = 0; r < rounds; r++) {
        for (const p of r % 2 === 0 ? proxies : [...proxies].reverse()) {
          const cpu0 = treeCpuSeconds(p.pid)
          const run = await pgbench(p.port, args)
          const cpu = treeCpuSeconds(p.pid) - cpu0
          results.push({
            cell,
            side: p.side,
            sample: { tps: run.tps, cpuUsPerTx: (cpu * 1e6) / run.transactions },
          })
        }
      }
    }
  }
  if (!values['no-library']) {
    const sides = Object.keys(trees) as Side[]
    for (const clients of clientCounts) {
      const cell = `library ${clients}c`
      const args = [cluster.primary.url(), cluster.replicas[0]!.url(), String(seconds), String(clients)]
      for (let r = 0; r < rounds; r++) {
        for (const side of r % 2 === 0 ? sides : [...sides].reverse()) {
          results.push({ cell, side, sample: await runLoop(trees[side], args) })
        }
      }
    }
  }
} finally {
  for (const p of proxies) await p.stop()
  for (const tree of Object.values(trees))
    rmSync(join(tree, 'bench', '.compare-commits-loop.mts'), { force: true })
  await cluster.stop()
  rmSync(dir, { recursive: true, force: true })
}

const cells = [...new Set(results.map((r) => r.cell))]
const rows = cells.map((cell) => {
  const of = (side: Side, f: (s: Sample) => number) =>
    median(results.filter((r) => r.cell === cell && r.side === side).map((r) => f(r.sample)))
  const cpu = { base: of('base', (s) => s.cpuUsPerTx), head: of('head', (s) => s.cpuUsPerTx) }
  const tps = { base: of('base', (s) => s.tps), head: of('head', (s) => s.tps) }
  return { cell, cpu, tps, cpuRatio: cpu.head / cpu.base, tpsRatio: tps.head / tps.base }
})
console.log(`base ${trees.base}\nhead ${trees.head}\n${rounds} alternating rounds of ${seconds} s; medians`)
printTable(
  ['cell', 'CPU µs/tx base', 'CPU µs/tx head', 'CPU head/base', 'TPS base', 'TPS head', 'TPS head/base'],
  rows.map((r) => [
    r.cell,
    r.cpu.base.toFixed(1),
    r.cpu.head.toFixed(1),
    r.cpuRatio.toFixed(3),
    r.tps.base.toFixed(0),
    r.tps.head.toFixed(0),
    r.tpsRatio.toFixed(3),
  ]),
)
writeFileSync(
  values.json,
  JSON.stringify({ date: new Date().toISOString(), trees, seconds, rounds, rows, results }, null, 2),
)
