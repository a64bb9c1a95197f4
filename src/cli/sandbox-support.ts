// What both sandboxes (PostgreSQL in sandbox.ts, MariaDB in sandbox-mariadb.ts) share: the request the
// command line makes, the listen ports, durations, and waiting for Ctrl-C.

import { createServer } from 'node:net'
import { ClusterError } from '../cluster/cluster-error.js'

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
