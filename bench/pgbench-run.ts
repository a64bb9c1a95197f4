// Runs pgbench against a port as the bench's superuser (database freshet) and reads its summary.

import { spawn } from 'node:child_process'

/** What one pgbench run reports. */
export interface Run {
  tps: number
  transactions: number
  /** pgbench's mean latency, µs */
  latencyUs: number
}

/**
 * Runs `pgbench <args> freshet` against 127.0.0.1:`port`; resolves with its TPS (without connection
 * time), transactions and mean latency, rejects with its output when it fails.
 * @example
 * const { tps } = await pgbench(proxyPort, ['-S', '-M', 'simple', '-c', '16', '-j', '2', '-T', '10'])
 */
export function pgbench(port: number, args: string[]): Promise<Run> {
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
      const lat = /latency average = ([\d.]+) ms/.exec(out)
      if (code !== 0 || (!tps && !args.includes('-i')))
        reject(new Error(`pgbench ${args.join(' ')} failed: ${err || out}`))
      else
        resolve({
          tps: Number(tps?.[1] ?? 0),
          transactions: Number(done?.[1] ?? 0),
          latencyUs: Number(lat?.[1] ?? 0) * 1000,
        })
    })
  })
}
