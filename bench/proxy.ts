// pgbench straight to the primary, through pgbouncer and through freshet's proxy, alternated, with ratios and CPU per transaction.
// Usage: npx tsx bench/proxy.ts [--seconds 10] [--clients 16] [--rounds 2] [--modes simple,prepared,tpcb]
//        [--no-pgbouncer] [--profile dir] (a .cpuprofile of the proxy during its runs, per mode)

import { spawn } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { startCluster } from '../src/cluster/index.js'
import { parseConfig } from '../src/core/config/parse-config.js'
import { ProxyServer } from '../src/proxy/proxy-server.js'
import { RoutingEngine } from '../src/routing/routing-engine.js'
import { treeCpuSeconds } from './e2e-cpu.js'
import { pgbouncer } from './routers/pgbouncer.js'
import type { RunningRouter } from './routers/router.js'

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    clients: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '2' },
    modes: { type: 'string', default: 'simple,prepared,tpcb' },
    'no-pgbouncer': { type: 'boolean', default: false },
    profile: { type: 'string' },
  },
})

interface Run {
  tps: number
  transactions: number
}

function pgbench(port: number, args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env = {
      ...process.env,
      PGHOST: '127.0.0.1',
      PGPORT: String(port),
      PGUSER: 'postgres',
      PGPASSWORD: 'x',
    }
    const child = spawn('pgbench', [...args, 'freshet'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => {
      out += d
    })
    child.stderr.on('data', (d) => {
      err += d
    })
    child.on('error', reject)
    child.on('close', (code) => {
      const tps = /tps = ([\d.]+)/.exec(out)
      const done = /number of transactions actually processed: (\d+)/.exec(out)
      if (code !== 0 || (!tps && !args.includes('-i')))
        reject(new Error(`pgbench ${args.join(' ')} failed: ${err || out}`))
      else resolve({ tps: Number(tps?.[1] ?? 0), transactions: Number(done?.[1] ?? 0) })
    })
  })
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** CPU µs per transaction of a measured run: `cpu` is the CPU seconds it took. */
const usPerTx = (cpuSeconds: number, run: Run) => (cpuSeconds * 1e6) / Math.max(1, run.transactions)

/** This process's CPU seconds, user + system (the in-process proxy, plus the engine's health probes). */
function ownCpuSeconds(): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

/** This process's system (kernel) CPU seconds: mostly socket reads and writes. */
function ownSystemSeconds(): number {
  return process.cpuUsage().system / 1e6
}

const cluster = await startCluster({ replicas: 1 })
const scratch = mkdtempSync(join(tmpdir(), 'freshet-bench-proxy-'))
chmodSync(scratch, 0o755) // pgbouncer runs as nobody when we are root
let bouncer: RunningRouter | null = null
try {
  const engine = new RoutingEngine(
    parseConfig(
      JSON.stringify({
        version: 1,
        cluster: {
          primary: { name: 'primary', url: cluster.primary.url() },
          replicas: cluster.replicas.map((r) => ({ name: r.name, url: r.url() })),
        },
        pools: { primary: { min_idle: 0, max_active: 20 }, replicas: { min_idle: 0, max_active: 20 } },
        proxy: { listen: '127.0.0.1:0', auth: { type: 'trust' } },
        telemetry: { log_level: 'silent' },
      }),
    ),
  )
  await engine.start()
  const proxy = new ProxyServer(engine, { log: () => {} })
  const { port } = await proxy.listen()
  if (!values['no-pgbouncer'] && pgbouncer.missing() === null)
    bouncer = await pgbouncer.start(cluster, scratch)
  await pgbench(cluster.primary.port, ['-i', '-s', '1', '-q'])
  const base = ['-n', '-c', values.clients!, '-j', '2', '-T', values.seconds!]
  const allModes: Record<string, [string, string[]]> = {
    simple: ['select-only simple', ['-S', '-M', 'simple']],
    prepared: ['select-only prepared', ['-S', '-M', 'prepared']],
    tpcb: ['tpc-b simple', ['-M', 'simple']],
  }
  const profiler = values.profile ? new Session() : null
  if (profiler) {
    mkdirSync(values.profile!, { recursive: true })
    profiler.connect()
    await profiler.post('Profiler.enable')
    await profiler.post('Profiler.setSamplingInterval', { interval: 100 })
  }
  const rows: string[][] = []
  for (const key of values.modes!.split(',')) {
    const [name, args] = allModes[key.trim()] ?? []
    if (!name || !args) throw new Error(`unknown mode ${key} (simple, prepared, tpcb)`)
    const direct: number[] = []
    const viaBouncer: number[] = []
    const bouncerCpu: number[] = []
    const viaProxy: number[] = []
    const proxyCpu: number[] = []
    const proxySys: number[] = []
    const skipBouncer = bouncer === null || (key === 'prepared' && 'select-prepared' in bouncer.unsupported)
    for (let r = 0; r < Number(values.rounds); r++) {
      direct.push((await pgbench(cluster.primary.port, [...base, ...args])).tps)
      if (!skipBouncer) {
        const before = treeCpuSeconds(bouncer!.pid!)
        const run = await pgbench(bouncer!.port, [...base, ...args])
        viaBouncer.push(run.tps)
        bouncerCpu.push(usPerTx(treeCpuSeconds(bouncer!.pid!) - before, run))
      }
      if (profiler && r === 0) await profiler.post('Profiler.start')
      const before = ownCpuSeconds()
      const sysBefore = ownSystemSeconds()
      const run = await pgbench(port, [...base, ...args])
      proxyCpu.push(usPerTx(ownCpuSeconds() - before, run))
      proxySys.push(usPerTx(ownSystemSeconds() - sysBefore, run))
      viaProxy.push(run.tps)
      if (profiler && r === 0) {
        const { profile } = await profiler.post('Profiler.stop')
        writeFileSync(join(values.profile!, `proxy-${key}.cpuprofile`), JSON.stringify(profile))
      }
    }
    const d = median(direct)
    const b = skipBouncer ? Number.NaN : median(viaBouncer)
    const p = median(viaProxy)
    const fmt = (x: number, digits = 0) => (Number.isNaN(x) ? '-' : x.toFixed(digits))
    rows.push([
      name,
      fmt(d),
      fmt(b),
      fmt(b / d, 2),
      fmt(skipBouncer ? Number.NaN : median(bouncerCpu), 1),
      fmt(p),
      fmt(p / d, 2),
      fmt(median(proxyCpu), 1),
      fmt(median(proxySys), 1),
    ])
  }
  const headers = [
    'workload',
    'direct tps',
    'pgbouncer tps',
    'ratio',
    'CPU µs/tx',
    'freshet tps',
    'ratio',
    'CPU µs/tx',
    'of it sys',
  ]
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  for (const [n, row] of [headers, ...rows].entries()) {
    console.log(row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '))
    if (n === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '))
  }
  profiler?.disconnect()
  await proxy.close(1000)
  await engine.stop()
} finally {
  await bouncer?.stop()
  await cluster.stop()
  rmSync(scratch, { recursive: true, force: true })
}
