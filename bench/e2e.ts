// End-to-end bench: pgbench through direct / pgbouncer / pgpool-II / the freshet proxy, and the library vs pg.Pool, in alternation.
// Run: npm run bench:e2e -- [--seconds 5] [--rounds 1] [--clients 1,16,64] [--workloads ...] [--routers ...] [--no-lag] [--quick]

import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { type LocalCluster, startCluster } from '../src/cluster/index.js'
import { median, printTable } from './bench-util.js'
import { treeCpuSeconds } from './e2e-cpu.js'
import { ensureTools, pgbenchPath } from './e2e-install.js'
import { runLagBench } from './e2e-lag.js'
import {
  LIBRARY_WORKLOADS,
  type LibraryVariant,
  runLibraryCell,
  startLibraryVariants,
} from './e2e-library.js'
import { type CellResult, runPgbench, WORKLOADS, type Workload } from './e2e-pgbench.js'
import type { E2eCell, E2eResults } from './e2e-results.js'
import { throughputSvg } from './plot.js'
import { direct } from './routers/direct.js'
import { freshetProxySetup } from './routers/freshet-proxy.js'
import { pgbouncer } from './routers/pgbouncer.js'
import { pgpoolSetup } from './routers/pgpool.js'
import type { RouterSetup, RunningRouter } from './routers/router.js'

const ROUTERS: RouterSetup[] = [
  direct,
  pgbouncer,
  pgpoolSetup(),
  freshetProxySetup({ name: 'freshet-proxy', unannotated: 'eventual' }),
  freshetProxySetup({ name: 'freshet-proxy-primary', unannotated: 'primary' }),
]

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '1' },
    clients: { type: 'string', default: '1,16,64' },
    workloads: { type: 'string', default: Object.keys(WORKLOADS).join(',') },
    routers: { type: 'string', default: [...ROUTERS.map((r) => r.name), 'library'].join(',') },
    scale: { type: 'string', default: '5' },
    'lag-seconds': { type: 'string', default: '12' },
    'no-lag': { type: 'boolean', default: false },
    'no-install': { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    out: { type: 'string', default: 'bench/results/latest.json' },
    svg: { type: 'string', default: 'bench/results/throughput.svg' },
  },
})
const quick = values.quick
const seconds = quick ? 2 : Number(values.seconds)
const rounds = quick ? 1 : Number(values.rounds)
const clientsList = (quick ? '16' : values.clients).split(',').map(Number)
const workloads = (quick ? 'select-simple,select-prepared' : values.workloads).split(',') as Workload[]
const wanted = new Set(values.routers.split(','))
const scale = Number(values.scale)
for (const w of workloads)
  if (!(w in WORKLOADS)) throw new Error(`unknown workload ${w}; one of ${Object.keys(WORKLOADS)}`)

const log = (s: string) => console.log(`[e2e] ${s}`)
const notes = ensureTools(!values['no-install'], log)
const pgbench = pgbenchPath()
if (!pgbench) {
  console.error('pgbench is required (Debian: apt-get install postgresql-contrib); stopping.')
  process.exit(2)
}

const tmp = mkdtempSync(join(tmpdir(), 'freshet-e2e-'))
chmodSync(tmp, 0o755)
let cluster: LocalCluster | null = null
const running: RunningRouter[] = []
let library: LibraryVariant[] = []
const stopAll = async () => {
  for (const r of running.splice(0)) await r.stop().catch(() => {})
  for (const l of library.splice(0)) await l.pool.end().catch(() => {})
  await cluster?.stop().catch(() => {})
  rmSync(tmp, { recursive: true, force: true })
}
process.once('SIGINT', () => void stopAll().then(() => process.exit(130)))

try {
  log('starting a primary and two replicas ...')
  cluster = await startCluster({ replicas: 2, onProgress: () => {}, settings: { max_connections: '500' } })
  log(`pgbench -i -s ${scale} ...`)
  const init = spawnSync(
    pgbench,
    [
      '-i',
      '-q',
      '-s',
      String(scale),
      '-h',
      '127.0.0.1',
      '-p',
      String(cluster.primary.port),
      '-U',
      'postgres',
      'freshet',
    ],
    { encoding: 'utf8' },
  )
  if (init.status !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`)
  await cluster.waitForCatchUp(120_000)

  for (const setup of ROUTERS) {
    if (!wanted.has(setup.name)) continue
    const why = setup.missing()
    if (why) {
      notes.push(`${setup.name}: skipped, ${why}`)
      continue
    }
    try {
      running.push(await setup.start(cluster, tmp))
      log(`${setup.name} up`)
    } catch (err) {
      notes.push(`${setup.name}: skipped, failed to start: ${(err as Error).message.split('\n')[0]}`)
    }
  }
  if (wanted.has('library')) library = await startLibraryVariants(cluster, Math.max(...clientsList))
  for (const n of notes) log(n)

  const accounts = 100_000 * scale
  const cells: E2eCell[] = []
  for (const workload of workloads) {
    for (const clients of clientsList) {
      // Every variant of this cell, run A B C ... A B C ... so load from other work hits all alike.
      type Variant = {
        name: string
        kind: E2eCell['kind']
        run: () => Promise<CellResult & { cpuPct: number | null }>
      }
      const variants: Variant[] = []
      for (const r of running) {
        const why = r.unsupported[workload]
        if (why) {
          if (clients === clientsList[0]) notes.push(`${r.name} ${workload}: skipped, ${why}`)
          continue
        }
        variants.push({
          name: r.name,
          kind: 'pgbench',
          run: async () => {
            const c0 = r.pid ? treeCpuSeconds(r.pid) : 0
            const t0 = performance.now()
            const res = await runPgbench(pgbench, r.port, workload, clients, seconds, tmp)
            const wall = (performance.now() - t0) / 1000
            const cpuPct = r.pid ? ((treeCpuSeconds(r.pid) - c0) / wall) * 100 : null
            return { ...res, cpuPct }
          },
        })
      }
      if (LIBRARY_WORKLOADS.includes(workload)) {
        for (const v of library) {
          variants.push({
            name: v.name,
            kind: 'library',
            run: async () => {
              const c0 = process.cpuUsage()
              const t0 = performance.now()
              const res = await runLibraryCell(v, workload, clients, seconds, accounts)
              const c = process.cpuUsage(c0)
              return { ...res, cpuPct: ((c.user + c.system) / 1000 / (performance.now() - t0)) * 100 }
            },
          })
        }
      }
      const results = new Map<string, (CellResult & { cpuPct: number | null })[]>()
      for (let round = 0; round < rounds; round++) {
        for (const v of variants) {
          const res = await v.run()
          const list = results.get(v.name) ?? []
          list.push(res)
          results.set(v.name, list)
          log(
            `${workload} c=${clients} r${round + 1} ${v.name}: ${res.tps.toFixed(0)} tps, p99 ${res.p99Ms.toFixed(2)} ms`,
          )
        }
      }
      const med = (name: string) => {
        const rs = results.get(name)
        return rs ? median(rs.map((x) => x.tps)) : null
      }
      const directTps = med('direct')
      const bouncerTps = med('pgbouncer')
      const plainTps = med('pg.Pool')
      for (const v of variants) {
        const rs = results.get(v.name)!
        const tps = median(rs.map((x) => x.tps))
        const base = v.kind === 'library' ? plainTps : directTps
        const cpu = rs.map((x) => x.cpuPct).filter((x): x is number => x !== null)
        cells.push({
          workload,
          clients,
          router: v.name,
          kind: v.kind,
          tps,
          meanMs: median(rs.map((x) => x.meanMs)),
          p99Ms: median(rs.map((x) => x.p99Ms)),
          cpuPct: cpu.length ? median(cpu) : null,
          failed: rs.reduce((a, x) => a + x.failed, 0),
          vsDirect: base ? tps / base : null,
          vsPgbouncer: v.kind === 'pgbench' && bouncerTps ? tps / bouncerTps : null,
          rounds: rs.map((x) => x.tps),
        })
      }
    }
  }

  for (const l of library.splice(0)) await l.pool.end()
  const lag =
    values['no-lag'] || quick ? null : await runLagBench(cluster, tmp, Number(values['lag-seconds']), log)

  const results: E2eResults = {
    version: 1,
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpu_model: cpus()[0]?.model ?? 'unknown',
      load_avg_1m_at_end: Number(loadavg()[0]!.toFixed(2)),
      node: process.version,
      pgbench: spawnSync(pgbench, ['--version'], { encoding: 'utf8' }).stdout.trim(),
      shared: 'yes: other engineers ran test suites at the same time; compare ratios, not absolute numbers',
    },
    settings: { seconds, rounds, clients: clientsList, workloads, scale },
    notes,
    cells,
    lag,
  }
  printResults(results)
  mkdirSync('bench/results', { recursive: true })
  writeFileSync(values.out, `${JSON.stringify(results, null, 2)}\n`)
  writeFileSync(values.svg, throughputSvg(results))
  log(`wrote ${values.out} and ${values.svg}`)
} finally {
  await stopAll()
}

function printResults(r: E2eResults): void {
  const f = (x: number | null, d = 2) => (x === null || !Number.isFinite(x) ? '-' : x.toFixed(d))
  console.log(
    `\nEnd to end: median of ${r.settings.rounds} alternating round(s) of ${r.settings.seconds} s; ratios from the same run` +
      '\n(×direct for library rows is ×pg.Pool; CPU: router process tree, % of one core; library rows: whole Node process)',
  )
  printTable(
    ['workload', 'clients', 'router', 'tps', 'mean ms', 'p99 ms', 'cpu %', '×direct', '×pgbouncer', 'failed'],
    r.cells.map((c) => [
      c.workload,
      c.clients,
      c.router,
      c.tps.toFixed(0),
      f(c.meanMs),
      f(c.p99Ms),
      f(c.cpuPct, 0),
      f(c.vsDirect),
      f(c.vsPgbouncer),
      c.failed,
    ]),
  )
  if (r.lag) {
    const l = r.lag
    console.log(
      `\nRouting under lag: ${l.readers} readers for ${l.seconds} s, replica_1 paused ${l.pausedSeconds} s, ` +
        `${l.writesPerSecond} writes/s; stale = value older than ${l.boundMs} ms`,
    )
    printTable(
      [
        'router',
        'reads',
        'errors',
        'replica share',
        'primary reads',
        'paused-replica reads',
        'stale reads',
        'max staleness ms',
        `vs bound ${l.boundMs} ms`,
        'max bound reported',
      ],
      l.rows.map((x) => [
        x.router,
        x.reads,
        x.errors,
        f(x.replicaShare * 100, 1) + '%',
        x.primaryReads,
        x.pausedReplicaReads,
        x.staleReads,
        x.maxStalenessMs.toFixed(0),
        x.maxStalenessMs <= l.boundMs ? 'within' : `OVER by ${(x.maxStalenessMs - l.boundMs).toFixed(0)}`,
        x.maxReportedBoundMs === undefined ? '-' : x.maxReportedBoundMs.toFixed(0),
      ]),
    )
    for (const n of l.notes) console.log(`  note: ${n}`)
  }
  for (const n of r.notes) console.log(`note: ${n}`)
}
