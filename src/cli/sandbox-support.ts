// What the sandboxes (PostgreSQL in sandbox.ts, sharded in sandbox-sharded.ts, MariaDB in
// sandbox-mariadb.ts) share: the request the command line makes, the listen ports, durations, Ctrl-C.

import { createServer } from 'node:net'
import { ClusterError } from '../cluster/cluster-error.js'
import { isFreshetError } from '../core/errors.js'
import { removeSandboxConfig } from './sandbox-config.js'

/** What the command line asks of the sandbox; each row of {@link SANDBOX_OPTIONS} fills one field. */
export interface SandboxRequest {
  replicas: number
  /** Apply delay per replica in ms. */
  lag: Record<string, number>
  /** Proxy port; undefined: 6432, or a free one when taken; 0: a free one. */
  port?: number
  /** Admin API and dashboard port; undefined: 9187, or a free one when taken; 0: a free one. */
  adminPort?: number
  /** Where to write freshet.yaml (default ./freshet.yaml, see chooseConfigPath). */
  configPath?: string
  /** The servers: PostgreSQL (default) or MariaDB (src/cli/sandbox-mariadb.ts). */
  engine?: 'postgres' | 'mariadb'
  /** Shards (src/cli/sandbox-sharded.ts): each a primary with `replicas` replicas (default 1), plus the aggregate node. */
  shards?: number
}

/**
 * Parses `500ms`, `12s`, `1.5s`, `1m` (a bare number is milliseconds) into milliseconds.
 * @example parseDuration('12s') // 12000
 */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim())
  if (!match) throw new ClusterError(`invalid duration '${text}' (use e.g. 500ms, 12s, 1m)`)
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? 'ms'] ?? 1
  return Math.round(Number(match[1]) * unit)
}

/** `12 s`, `1 m`, `500 ms`. */
export function formatDuration(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000} m`
  if (ms >= 1000) return `${ms / 1000} s`
  return `${ms} ms`
}

/** Whether `port` on 127.0.0.1 can be listened on right now. */
function portFree(portNumber: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(portNumber, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/**
 * The listen address for one of the sandbox's ports: the requested port exactly (0: a free one), or the
 * default when free, else a free one, saying so.
 */
export async function chooseListen(
  requested: number | undefined,
  fallback: number,
  what: string,
): Promise<string> {
  if (requested !== undefined) return `127.0.0.1:${requested}`
  if (await portFree(fallback)) return `127.0.0.1:${fallback}`
  console.log(`${what}: port ${fallback} is taken (another sandbox, pgbouncer?), using a free port instead`)
  return '127.0.0.1:0'
}

/** The proxy's and the dashboard's listen addresses for a request (see {@link chooseListen}). */
export async function chooseFrontListen(
  request: SandboxRequest,
): Promise<{ proxyListen: string; adminListen: string }> {
  const proxyListen = await chooseListen(request.port, 6432, 'proxy')
  return { proxyListen, adminListen: await chooseListen(request.adminPort, 9187, 'dashboard') }
}

/**
 * The listen addresses a started proxy actually bound (not 0), for the config file the sandbox writes.
 * @example boundListen(running, '127.0.0.1:0') // { proxyListen: '127.0.0.1:6432', adminListen: '127.0.0.1:9187' }
 */
export function boundListen(
  running: { readonly address: string; readonly adminUrl: string | null },
  adminListen: string,
): { proxyListen: string; adminListen: string } {
  return {
    proxyListen: running.address,
    adminListen: running.adminUrl ? new URL(running.adminUrl).host : adminListen,
  }
}

/** Resolves on SIGINT/SIGTERM; keeps the process alive until then or until cancel(). */
export function waitForSignal(): { signal: Promise<NodeJS.Signals>; cancel(): void } {
  // Signal listeners do not keep the event loop alive, and the servers' handles are unref'd.
  const keepAlive = setInterval(() => {}, 1 << 30)
  let onSignal: (sig: NodeJS.Signals) => void = () => {}
  const cancel = () => {
    clearInterval(keepAlive)
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = (sig) => {
      cancel()
      resolve(sig)
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  })
  return { signal, cancel }
}

/** What a sandbox's start step registers: things to stop (in reverse order) and the config it wrote. */
export interface SandboxLifecycle {
  /** Registers something started; on Ctrl-C or a failed start, stopped last-registered first. */
  onStop(stop: () => Promise<unknown>): void
  /** The config file written (removed on stop if it still holds what was written). */
  wrote(path: string, text: string): void
}

/**
 * The lifecycle every sandbox shares: signal handlers go in before `start` (a Ctrl-C during boot waits
 * for it and cleans up, instead of killing the process with servers half started); a failed start stops
 * what it started and exits 1 on a freshet or port error; then waits for SIGINT/SIGTERM, stops everything
 * (a second Ctrl-C exits at once; the watchdog removes what is left), removes the config and says `stopped`.
 * @example
 * return runSandboxLifecycle(async (life) => { const c = await startCluster(); life.onStop(() => c.stop()) },
 *   () => 'stopped every server')
 */
export async function runSandboxLifecycle(
  start: (life: SandboxLifecycle) => Promise<void>,
  stopped: () => string,
): Promise<number> {
  const stops: (() => Promise<unknown>)[] = []
  let config: { path: string; text: string } | null = null
  const life: SandboxLifecycle = {
    onStop: (stop) => void stops.push(stop),
    wrote: (path, text) => {
      config = { path, text }
    },
  }
  const stopAll = async (quiet: boolean) => {
    for (const stop of stops.reverse()) await (quiet ? stop().catch(() => {}) : stop())
  }
  const { signal, cancel } = waitForSignal()
  try {
    await start(life)
  } catch (err) {
    cancel()
    await stopAll(true)
    if (isFreshetError(err) || (err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      console.error(`freshet sandbox: ${(err as Error).message}`)
      return 1
    }
    throw err
  }
  const sig = await signal
  console.log(`\n${sig}: stopping the sandbox...`)
  const force = () => process.exit(130)
  process.once('SIGINT', force)
  process.once('SIGTERM', force)
  await stopAll(false)
  const written = config as { path: string; text: string } | null
  if (written && removeSandboxConfig(written.path, written.text)) console.log(`removed ${written.path}`)
  console.log(stopped())
  return 0
}
