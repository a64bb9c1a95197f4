// What every end-to-end router setup provides, and the shared helpers to spawn and await one.

import { type ChildProcess, spawn } from 'node:child_process'
import { chownSync, closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import type { LocalCluster } from '../../src/cluster/index.js'

/** A router in front of the cluster, running. `pid` is the process whose CPU (with its children) is measured. */
export interface RunningRouter {
  readonly name: string
  readonly port: number
  /** null when there is no router process (direct). */
  readonly pid: number | null
  /** Workloads this router cannot run, with the reason (e.g. prepared statements under pgbouncer 1.18). */
  readonly unsupported: Readonly<Record<string, string>>
  stop(): Promise<void>
}

/** How to bring a router up, or why it cannot be. */
export interface RouterSetup {
  readonly name: string
  /** null when it can run here, else a one-line note why it is skipped. */
  missing(): string | null
  start(cluster: LocalCluster, dir: string): Promise<RunningRouter>
}

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p))
const NOBODY = 65534
export const isRoot = process.getuid?.() === 0

/** A fresh directory for one router's files, owned by nobody when we are root (servers refuse root). */
export function routerDir(parent: string, name: string): string {
  const dir = join(parent, name)
  mkdirSync(dir, { recursive: true, mode: 0o755 })
  if (isRoot) chownSync(dir, NOBODY, NOBODY)
  return dir
}

/** Spawns `command` (as nobody when root, dying with us), output to `logFile`. */
export function spawnServer(command: string, args: string[], logFile: string, asNobody = true): ChildProcess {
  const fd = openSync(logFile, 'a')
  const drop = asNobody && isRoot
  const [cmd, argv] = SETPRIV ? [SETPRIV, ['--pdeathsig', 'KILL', '--', command, ...args]] : [command, args]
  try {
    const child = spawn(cmd, argv, {
      stdio: ['ignore', fd, fd],
      env: { ...process.env, LC_ALL: 'C' },
      ...(drop ? { uid: NOBODY, gid: NOBODY } : {}),
    })
    child.on('error', () => {})
    return child
  } finally {
    closeSync(fd)
  }
}

/** Resolves once 127.0.0.1:port accepts a TCP connection; throws with the log tail after `timeoutMs`. */
export async function waitForPort(
  port: number,
  child: ChildProcess,
  logFile: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) break
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1')
      s.once('connect', () => {
        s.destroy()
        resolve(true)
      })
      s.once('error', () => resolve(false))
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 100))
  }
  const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n') : ''
  child.kill('SIGKILL')
  throw new Error(`router did not listen on ${port} within ${timeoutMs} ms:\n${tail}`)
}

/** Stops a child: `signal`, then SIGKILL after a grace period. */
export async function stopChild(
  child: ChildProcess,
  signal: NodeJS.Signals = 'SIGTERM',
  graceMs = 5000,
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  child.kill(signal)
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
}

/** The first of `paths` that exists, else null. */
export function findBinary(...paths: string[]): string | null {
  return paths.find((p) => existsSync(p)) ?? null
}
