// The freshet proxy as a child process (from source via tsx) with a config for the bench cluster.

import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from '../../src/cluster/free-port.js'
import { type RouterSetup, routerDir, spawnServer, stopChild, waitForPort } from './router.js'

const CLI_PROXY = fileURLToPath(new URL('../../src/cli/proxy.ts', import.meta.url))
const MAIN = fileURLToPath(new URL('./freshet-proxy-main.ts', import.meta.url))

/** Options of {@link freshetProxySetup}. */
export interface FreshetProxyOptions {
  /** Setup name (default `freshet-proxy`). */
  name?: string
  /** `routing.unannotated`: `eventual` lets plain reads use replicas as pgpool-II does; `primary` is the default. */
  unannotated?: string
  /** Pool sizes per node (default 20, like pgbouncer's pool). */
  poolSize?: number
  /** Extra `routing.tiers` entries, e.g. for the lag run. */
  tiers?: Record<string, unknown>
  /** The CLI entry to run (default this tree's freshet-proxy-main.ts; another tree's to compare commits). */
  main?: string
}

export function freshetProxySetup(opts: FreshetProxyOptions = {}): RouterSetup {
  const name = opts.name ?? 'freshet-proxy'
  const size = opts.poolSize ?? 20
  return {
    name,
    missing: () =>
      existsSync(CLI_PROXY) ? null : 'freshet proxy not available yet (src/cli/proxy.ts missing)',
    async start(cluster, parent) {
      const dir = routerDir(parent, name)
      const port = await freePort()
      const adminPort = await freePort()
      const config = {
        version: 1,
        cluster: {
          primary: { name: cluster.primary.name, url: cluster.primary.url() },
          replicas: cluster.replicas.map((r) => ({ name: r.name, url: r.url() })),
        },
        routing: { unannotated: opts.unannotated ?? 'primary', ...(opts.tiers ? { tiers: opts.tiers } : {}) },
        pools: {
          primary: { min_idle: Math.min(5, size), max_active: size },
          replicas: { min_idle: Math.min(5, size), max_active: size },
        },
        proxy: { listen: `127.0.0.1:${port}`, pool_mode: 'transaction', auth: { type: 'trust' } },
        admin: { listen: `127.0.0.1:${adminPort}` },
        telemetry: { log_level: 'warn', log_sampling_rate: 0 },
      }
      const file = join(dir, 'freshet.json')
      writeFileSync(file, JSON.stringify(config, null, 2))
      const log = join(dir, 'proxy.log')
      const child = spawnServer(
        process.execPath,
        ['--import', 'tsx', opts.main ?? MAIN, 'proxy', '--config', file],
        log,
        false,
      )
      await waitForPort(port, child, log, 30_000)
      return { name, port, pid: child.pid ?? null, unsupported: {}, stop: () => stopChild(child, 'SIGTERM') }
    },
  }
}
