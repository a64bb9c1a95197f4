// Runs one pgbench cell (workload × clients) against a port and returns TPS, mean and p99 latency from per-transaction logs.

import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'

/** The pgbench workloads of the end-to-end bench. */
export const WORKLOADS = {
  'select-simple': ['-S', '-M', 'simple'],
  'select-extended': ['-S', '-M', 'extended'],
  'select-prepared': ['-S', '-M', 'prepared'],
  tpcb: ['-M', 'simple'],
} as const satisfies Record<string, readonly string[]>

export type Workload = keyof typeof WORKLOADS

/** One measured cell. */
export interface CellResult {
  tps: number
  meanMs: number
  p99Ms: number
  transactions: number
  failed: number
}

/** The q-quantile (0..1) of `xs`; sorts in place. */
export function quantile(xs: Float64Array, q: number): number {
  if (xs.length === 0) return Number.NaN
  xs.sort()
  return xs[Math.min(xs.length - 1, Math.floor(q * xs.length))]!
}

/**
 * `pgbench -n -j min(2,clients) -T seconds -l` against 127.0.0.1:`port` as `postgres` in db `freshet`.
 * TPS comes from pgbench's own line (without connection time); latencies from the per-transaction log
 * (its third column is the transaction's latency in µs).
 */
export async function runPgbench(
  bin: string,
  port: number,
  workload: Workload,
  clients: number,
  seconds: number,
  tmp: string,
): Promise<CellResult> {
  const dir = mkdtempSync(join(tmp, 'pgbench-'))
  const args = [
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-U',
    'postgres',
    '-n',
    ...WORKLOADS[workload],
    '-c',
    String(clients),
    '-j',
    String(Math.min(2, clients)),
    '-T',
    String(seconds),
    '-l',
    '--log-prefix',
    join(dir, 'tx'),
    'freshet',
  ]
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (out += d))
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)))
  try {
    const tps = Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? Number.NaN)
    const processed = Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1] ?? 0)
    const failed = Number(/number of failed transactions: (\d+)/.exec(out)?.[1] ?? 0)
    if (code !== 0 && !(processed > 0))
      throw new Error(`pgbench ${args.join(' ')} exited ${code}:\n${out.slice(-800)}`)
    const lat: number[] = []
    for (const f of readdirSync(dir)) {
      for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
        if (!line) continue
        const us = Number(line.split(' ')[2])
        if (Number.isFinite(us)) lat.push(us / 1000)
      }
    }
    const arr = Float64Array.from(lat)
    const meanMs = arr.reduce((a, b) => a + b, 0) / (arr.length || 1)
    const aborted = code === 0 ? 0 : clients
    return { tps, meanMs, p99Ms: quantile(arr, 0.99), transactions: processed, failed: failed + aborted }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
