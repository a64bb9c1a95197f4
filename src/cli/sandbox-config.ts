// The freshet.yaml that `freshet sandbox` writes: its nodes as the ordinary `app` role, its proxy and admin
// ports, ready for `createPool('freshet.yaml')`, `freshet proxy --config` and the examples.

import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import YAML from 'yaml'

/** A node as the sandbox config needs it. */
export interface SandboxConfigNode {
  readonly name: string
  readonly role: 'primary' | 'replica'
  /** Connection string as the ordinary role `app`. */
  readonly url: string
}

/** First line of every file the sandbox writes; the pid tells whether its sandbox still runs. */
const MARKER = '# written by `freshet sandbox` (pid '

/**
 * The sandbox's config as a plain object (the shape of freshet.yaml). Servers are reached as `app`,
 * never as the superuser; the proxy accepts `app`/`app` (SCRAM).
 * @example
 * const config = sandboxConfig(summary.nodes, { proxyListen: '127.0.0.1:6432', adminListen: '127.0.0.1:9187' })
 */
export function sandboxConfig(
  nodes: readonly SandboxConfigNode[],
  listen: { proxyListen: string; adminListen: string },
): Record<string, unknown> {
  const primary = nodes.find((n) => n.role === 'primary')
  if (!primary) throw new TypeError('sandboxConfig: no primary among the nodes')
  return {
    version: 1,
    cluster: {
      primary: { name: primary.name, url: primary.url },
      replicas: nodes.filter((n) => n.role === 'replica').map((n) => ({ name: n.name, url: n.url })),
    },
    // small pools: a laptop runs the sandbox, several example apps and maybe a second sandbox
    pools: { primary: { min_idle: 0, max_active: 20 }, replicas: { min_idle: 0, max_active: 20 } },
    proxy: {
      listen: listen.proxyListen,
      auth: { type: 'scram-sha-256', users: { app: { password: 'app' } } },
      // the admin console: psql postgres://admin:admin@<proxy>/freshet_admin -c 'SHOW NODES'
      admin: { users: { admin: { password: 'admin' } } },
    },
    admin: { listen: listen.adminListen },
    telemetry: { log_level: 'warn' },
  }
}

/**
 * Where the sandbox writes its config: `requested` when given (always), else ./freshet.yaml unless that
 * file is someone's own (not written by a sandbox, or by a sandbox that still runs), else `fallbackDir`.
 * @example chooseConfigPath(undefined, '/tmp/freshet-cluster-x') // '/work/app/freshet.yaml'
 */
export function chooseConfigPath(requested: string | undefined, fallbackDir: string): string {
  if (requested) return resolve(requested)
  const local = resolve('freshet.yaml')
  if (!existsSync(local)) return local
  const owner = writerPid(local)
  if (owner !== null && owner !== process.pid && !isAlive(owner)) return local
  return resolve(fallbackDir, 'freshet.yaml')
}

/** Writes the config with a header saying who wrote it and how to use it. */
export function writeSandboxConfig(path: string, config: Record<string, unknown>): string {
  const text =
    `${MARKER}${process.pid}); removed when that sandbox stops.\n` +
    '# library: createPool(this file)   proxy: freshet proxy --config this file   check: freshet check-config\n' +
    YAML.stringify(config)
  writeFileSync(path, text, { mode: 0o600 })
  return text
}

/** Removes the file if it still holds exactly what the sandbox wrote (the user may have edited it). */
export function removeSandboxConfig(path: string, written: string): boolean {
  try {
    if (readFileSync(path, 'utf8') !== written) return false
    unlinkSync(path)
    return true
  } catch {
    return false
  }
}

function writerPid(path: string): number | null {
  try {
    const first = readFileSync(path, 'utf8').split('\n', 1)[0] ?? ''
    if (!first.startsWith(MARKER)) return null
    const pid = Number.parseInt(first.slice(MARKER.length), 10)
    return Number.isInteger(pid) && pid > 0 ? pid : null
  } catch {
    return null
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
