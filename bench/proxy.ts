// pgbench direct, through pgbouncer, a bare Node socket pipe and freshet's proxy, alternated: ratios, CPU and syscalls per transaction.
// Usage: npx tsx bench/proxy.ts [--seconds 10] [--clients 1,16] [--rounds 2] [--modes simple,extended,prepared,tpcb,insert,insert-extended,own]
//        (insert: one autocommit single-row INSERT per transaction; freshet runs with causal consistency on, its default)
//        (own: `SET freshet.freshness`, which freshet answers itself: the proxy alone is the bottleneck, for --workers)
//        [--workers N] (also freshet with proxy.workers: N) [--no-pgbouncer] [--no-pipe] [--strace 3] (seconds of an strace -c run per router and cell; 0 = none)
//        [--profile dir] (a .cpuprofile of the proxy during its first run of each cell; PROFILE_INTERVAL_US=500 samples less often than the default 100 µs)
//        [--baseline dir] (also freshet from another checkout, e.g. `git archive main | tar -x -C dir`,
//        alternated with this one: before/after in the same run)

import { type ChildProcess, spawn } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { connect, createServer, type Server } from 'node:net'
import { availableParallelism, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { startProxy } from '../src/cli/proxy.js'
import { startCluster } from '../src/cluster/index.js'
import { benchEngine } from './bench-util.js'
import { treeCpuSeconds } from './e2e-cpu.js'
import { pgbench, type Run } from './pgbench-run.js'
import { pgbouncer } from './routers/pgbouncer.js'
import type { RunningRouter } from './routers/router.js'

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    clients: { type: 'string', default: '1,16' },
    rounds: { type: 'string', default: '2' },
    modes: { type: 'string', default: 'simple,extended' },
    'no-pgbouncer': { type: 'boolean', default: false },
    'no-pipe': { type: 'boolean', default: false },
    /** also run freshet with proxy.workers: N (0 = not) */
    workers: { type: 'string', default: '0' },
    strace: { type: 'string', default: '3' },
    profile: { type: 'string' },
    baseline: { type: 'string' },
  },
})

function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** This process's CPU seconds, user + system (the in-process routers, plus the engine's health probes). */
function ownCpu(): { total: number; sys: number } {
  const u = process.cpuUsage()
  return { total: (u.user + u.system) / 1e6, sys: u.system / 1e6 }
}

/** A bare Node.js socket pipe to `port`: no parsing, no pooling (one server connection per client). */
function startPipe(target: number): Promise<{ server: Server; port: number }> {
  const server = createServer({ noDelay: true }, (client) => {
    const upstream = connect({ port: target, host: '127.0.0.1', noDelay: true })
    client.pipe(upstream).pipe(client)
    const end = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', end).on('close', end)
    upstream.on('error', end).on('close', end)
  })
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const a = server.address()
      resolve({ server, port: typeof a === 'object' && a ? a.port : 0 })
    }),
  )
}

interface SyscallCount {
  calls: number
  reads: number
  writes: number
}

/** Runs `work` with `strace -c` attached to `pid`'s main thread; syscall counts from its summary. */
async function straced(pid: number, work: () => Promise<Run>): Promise<{ run: Run; sys: SyscallCount }> {
  const child: ChildProcess = spawn('strace', ['-c', '-p', String(pid)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let text = ''
  child.stderr!.on('data', (d) => {
    text += d
  })
  await new Promise((r) => setTimeout(r, 300)) // attach
  const run = await work()
  const exited = new Promise((r) => child.once('close', r))
  child.kill('SIGINT')
  await exited
  const sys: SyscallCount = { calls: 0, reads: 0, writes: 0 }
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/)
    const name = f.at(-1)
    const calls = Number(f[3])
    if (f.length < 5 || !Number.isFinite(calls)) continue
    if (name === 'total') sys.calls = calls
    else if (/^(read|readv|recvfrom|recvmsg)$/.test(name!)) sys.reads += calls
    else if (/^(write|writev|sendto|sendmsg)$/.test(name!)) sys.writes += calls
  }
  return { run, sys }
}

const cores = availableParallelism()
const cluster = await startCluster({ replicas: 1 })
const scratch = mkdtempSync(join(tmpdir(), 'freshet-bench-proxy-'))
chmodSync(scratch, 0o755) // pgbouncer runs as nobody when we are root
let bouncer: RunningRouter | null = null
let pipe: { server: Server; port: number } | null = null
try {
  // a generous connect timeout: 16 clients open their server connections at once on a loaded machine
  const pool = { min_idle: 0, max_active: 20, connection_timeout_ms: 5000 }
  const pools = { primary: pool, replicas: pool }
  const engineWith = (workers: number) => benchEngine(cluster, { pools, proxy: { workers } })
  // as `freshet proxy` runs: metrics, the admin API and its decision log attached
  const running = await startProxy({
    engine: engineWith(1),
    listen: '127.0.0.1:0',
    adminListen: '127.0.0.1:0',
  })
  const portOf = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1))
  const port = portOf(running.address)
  const workerCount = Number(values.workers)
  const multi =
    workerCount > 1
      ? await startProxy({
          engine: engineWith(workerCount),
          listen: '127.0.0.1:0',
          adminListen: '127.0.0.1:0',
        })
      : null
  // another checkout's proxy in this process, alternated with ours (its own module instances)
  const baseline = values.baseline
    ? await (async () => {
        const dir = resolve(values.baseline!)
        const cli = (await import(
          pathToFileURL(join(dir, 'src/cli/proxy.ts')).href
        )) as typeof import('../src/cli/proxy.js')
        const util = (await import(
          pathToFileURL(join(dir, 'bench/bench-util.ts')).href
        )) as typeof import('./bench-util.js')
        return cli.startProxy({
          engine: util.benchEngine(cluster, { pools, proxy: { workers: 1 } }),
          listen: '127.0.0.1:0',
          adminListen: '127.0.0.1:0',
        })
      })()
    : null
  if (!values['no-pgbouncer'] && pgbouncer.missing() === null)
    bouncer = await pgbouncer.start(cluster, scratch)
  if (!values['no-pipe']) pipe = await startPipe(cluster.primary.port)
  await pgbench(cluster.primary.port, ['-i', '-s', '1', '-q'])
  await cluster.query('primary', 'CREATE TABLE bench_proxy_inserts (v int)')
  const insertScript = join(scratch, 'insert.sql')
  writeFileSync(
    insertScript,
    '\\set v random(1, 1000000)\nINSERT INTO bench_proxy_inserts (v) VALUES (:v);\n',
  )
  // a statement freshet answers itself (its own setting): no server work, so the proxy is the bottleneck
  // and `--workers N` shows how its own per-statement work spreads over cores. Direct, pgbouncer and the
  // pipe send it to PostgreSQL (a custom setting it accepts): compare freshet with its workers here.
  const ownScript = join(scratch, 'own.sql')
  writeFileSync(ownScript, "SET freshet.freshness = 'eventual';\n")
  const allModes: Record<string, [string, string[]]> = {
    simple: ['select-only simple', ['-S', '-M', 'simple']],
    extended: ['select-only extended', ['-S', '-M', 'extended']],
    prepared: ['select-only prepared', ['-S', '-M', 'prepared']],
    tpcb: ['tpc-b simple', ['-M', 'simple']],
    insert: ['insert simple', ['-f', insertScript, '-M', 'simple']],
    'insert-extended': ['insert extended', ['-f', insertScript, '-M', 'extended']],
    own: ['proxy-answered SET', ['-f', ownScript, '-M', 'simple']],
  }
  const profiler = values.profile ? new Session() : null
  if (profiler) {
    mkdirSync(values.profile!, { recursive: true })
    profiler.connect()
    await profiler.post('Profiler.enable')
    await profiler.post('Profiler.setSamplingInterval', {
      interval: Number(process.env.PROFILE_INTERVAL_US ?? 100),
    })
  }
  interface Router {
    name: string
    port: number
    /** CPU seconds so far (total, of it system), or null for direct */
    cpu: (() => { total: number; sys: number }) | null
    pid: number | null
  }
  const routers: Router[] = [{ name: 'direct', port: cluster.primary.port, cpu: null, pid: null }]
  if (bouncer)
    routers.push({
      name: 'pgbouncer',
      port: bouncer.port,
      cpu: () => ({ total: treeCpuSeconds(bouncer!.pid!), sys: Number.NaN }),
      pid: bouncer.pid!,
    })
  if (pipe) routers.push({ name: 'node pipe', port: pipe.port, cpu: ownCpu, pid: process.pid })
  if (baseline)
    routers.push({
      name: 'freshet (baseline)',
      port: portOf(baseline.address),
      cpu: ownCpu,
      pid: process.pid,
    })
  routers.push({ name: 'freshet', port, cpu: ownCpu, pid: process.pid })
  if (multi)
    routers.push({
      name: `freshet, ${workerCount} workers`,
      port: portOf(multi.address),
      // the workers, plus this process's share (the probes and node:cluster's accept)
      cpu: () => {
        const own = ownCpu()
        const workers = multi.workers!.pids().reduce((sum, pid) => sum + treeCpuSeconds(pid), 0)
        return { total: own.total + workers, sys: Number.NaN }
      },
      pid: null,
    })
  const straceSeconds = Number(values.strace)
  console.log(`${cores} cores; ${values.seconds} s x ${values.rounds} alternating rounds per cell; scale 1`)
  const rows: string[][] = []
  for (const clients of values.clients!.split(',').map(Number)) {
    for (const key of values.modes!.split(',')) {
      const [name, args] = allModes[key.trim()] ?? []
      if (!name || !args) throw new Error(`unknown mode ${key} (${Object.keys(allModes).join(', ')})`)
      const base = ['-n', '-c', String(clients), '-j', String(Math.min(2, clients)), '-T', values.seconds!]
      const cells = new Map<string, { tps: number[]; lat: number[]; cpu: number[]; sys: number[] }>()
      const active = routers.filter(
        (r) => !(r.name === 'pgbouncer' && key === 'prepared' && 'select-prepared' in bouncer!.unsupported),
      )
      for (const r of active) cells.set(r.name, { tps: [], lat: [], cpu: [], sys: [] })
      for (let round = 0; round < Number(values.rounds); round++) {
        for (const r of active) {
          const cell = cells.get(r.name)!
          const profiling = profiler !== null && round === 0 && r.name === 'freshet'
          if (profiling) await profiler!.post('Profiler.start')
          const before = r.cpu?.()
          const run = await pgbench(r.port, [...base, ...args])
          const after = r.cpu?.()
          if (profiling) {
            const { profile } = await profiler!.post('Profiler.stop')
            writeFileSync(
              join(values.profile!, `proxy-${key}-${clients}.cpuprofile`),
              JSON.stringify(profile),
            )
          }
          cell.tps.push(run.tps)
          cell.lat.push(run.latencyUs)
          if (before && after) {
            const tx = Math.max(1, run.transactions)
            cell.cpu.push(((after.total - before.total) * 1e6) / tx)
            cell.sys.push(((after.sys - before.sys) * 1e6) / tx)
          }
        }
      }
      const syscalls = new Map<string, SyscallCount & { tx: number }>()
      if (straceSeconds > 0)
        for (const r of active) {
          if (r.pid === null) continue
          const s = await straced(r.pid, () =>
            pgbench(r.port, [...base.slice(0, -1), String(straceSeconds), ...args]),
          )
          syscalls.set(r.name, { ...s.sys, tx: Math.max(1, s.run.transactions) })
        }
      const d = median(cells.get('direct')!.tps)
      const dLat = median(cells.get('direct')!.lat)
      const b = cells.has('pgbouncer') ? median(cells.get('pgbouncer')!.tps) : Number.NaN
      const fmt = (x: number, digits = 0) => (Number.isFinite(x) ? x.toFixed(digits) : '-')
      const signed = (x: number) => (Number.isFinite(x) && x >= 0 ? `+${fmt(x)}` : fmt(x))
      for (const r of active) {
        const c = cells.get(r.name)!
        const t = median(c.tps)
        const sc = syscalls.get(r.name)
        rows.push([
          `${name}, ${clients}c`,
          r.name,
          fmt(t),
          fmt(t / d, 2),
          fmt(t / b, 2),
          fmt(median(c.cpu), 1),
          fmt(median(c.sys), 1),
          r.name === 'direct' ? fmt(dLat, 0) : signed(median(c.lat) - dLat),
          sc ? fmt(sc.calls / sc.tx, 1) : '-',
          sc ? `${fmt(sc.reads / sc.tx, 1)}/${fmt(sc.writes / sc.tx, 1)}` : '-',
        ])
      }
    }
  }
  const headers = [
    'cell',
    'router',
    'tps',
    'x direct',
    'x pgbouncer',
    'CPU µs/tx',
    'of it sys',
    'latency µs',
    'syscalls/tx',
    'reads/writes per tx',
  ]
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  for (const [n, row] of [headers, ...rows].entries()) {
    console.log(row.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '))
    if (n === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '))
  }
  profiler?.disconnect()
  await multi?.stop()
  await baseline?.stop()
  await running.stop()
} finally {
  pipe?.server.close()
  await bouncer?.stop()
  await cluster.stop()
  rmSync(scratch, { recursive: true, force: true })
}
