// One postgres postmaster process over a data directory: start, stop, kill, readiness, log tail.

import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, existsSync, fstatSync, openSync, readFileSync } from 'node:fs'
import { ClusterError } from './cluster-error.js'
import type { PgBinaries } from './pg-binaries.js'
import { pollUntil } from './poll-until.js'
import { killServer, logTail, stopServer } from './server-process.js'

/** How to stop a server: PostgreSQL's fast (SIGINT) or immediate (SIGQUIT) shutdown. */
export type StopMode = 'fast' | 'immediate'

/** setpriv, for --pdeathsig (undefined where util-linux lacks it). */
export const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p))

/** A postgres server failed to bind its port; the caller may retry on another one. */
export class PortInUseError extends ClusterError {}

/**
 * A postmaster run directly (no pg_ctl) in its own process group, as `bins.runAs` when set, with
 * `setpriv --pdeathsig KILL` so it dies with its parent. Its stdout/stderr go to `logFile`.
 */
export class PostgresServer {
  readonly dataDir: string
  readonly logFile: string
  readonly #bins: PgBinaries
  #child: ChildProcess | null = null
  #exited: Promise<void> = Promise.resolve()
  #logStart = 0

  constructor(bins: PgBinaries, dataDir: string, logFile: string) {
    this.#bins = bins
    this.dataDir = dataDir
    this.logFile = logFile
  }

  /** The postmaster's pid while it runs, else null. */
  get pid(): number | null {
    return this.#child?.pid ?? null
  }

  get running(): boolean {
    return this.#child !== null
  }

  /** Starts the postmaster and resolves once it accepts connections (primary or hot standby). */
  async start(timeoutMs = 30_000): Promise<void> {
    if (this.#child) return
    const logFd = openSync(this.logFile, 'a')
    this.#logStart = fstatSync(logFd).size
    const runAs = this.#bins.runAs
    const [command, args] = SETPRIV
      ? [SETPRIV, ['--pdeathsig', 'KILL', '--', this.#bins.postgres, '-D', this.dataDir]]
      : [this.#bins.postgres, ['-D', this.dataDir]]
    let child: ChildProcess
    try {
      child = spawn(command, args, {
        cwd: this.dataDir,
        detached: true,
        stdio: ['ignore', logFd, logFd],
        env: { ...process.env, LC_ALL: 'C' },
        ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
      })
    } finally {
      closeSync(logFd)
    }
    let exitCode: number | string | null = null
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        exitCode = code ?? signal
        if (this.#child === child) this.#child = null
        resolve()
      })
      child.once('error', (err) => {
        exitCode = err.message
        if (this.#child === child) this.#child = null
        resolve()
      })
    })
    child.unref()
    this.#child = child
    try {
      await pollUntil(
        () => {
          if (exitCode !== null) throw this.#failure(`exited (${exitCode}) while starting`)
          return this.#status() === 'ready' || this.#status() === 'standby'
        },
        timeoutMs,
        `postgres in ${this.dataDir} to accept connections`,
        25,
      )
    } catch (err) {
      if (this.#child === child) await this.kill()
      if (err instanceof PortInUseError || exitCode !== null) throw err
      throw this.#failure(`did not become ready within ${timeoutMs} ms`, err)
    }
  }

  /** Shuts down with PostgreSQL's fast or immediate mode and waits for the postmaster to exit. */
  stop(mode: StopMode = 'fast', timeoutMs = 30_000): Promise<void> {
    return stopServer(this.#child, this.#exited, mode === 'fast' ? 'SIGINT' : 'SIGQUIT', timeoutMs, () =>
      this.kill(),
    )
  }

  /** SIGKILLs the postmaster and every process of this node (a crash), and waits until all are gone. */
  async kill(): Promise<void> {
    if (this.#child?.pid) await killServer(this.#child, this.#exited, this.dataDir)
  }

  /** The last `lines` lines of the server's log (since `fromByte`). */
  logTail(lines = 20, fromByte = 0): string {
    return logTail(this.logFile, lines, fromByte)
  }

  /** Line 8 of postmaster.pid: `starting`, `ready`, `standby` or `stopping`. */
  #status(): string | undefined {
    try {
      return readFileSync(`${this.dataDir}/postmaster.pid`, 'utf8').split('\n')[7]?.trim()
    } catch {
      return undefined
    }
  }

  #failure(what: string, cause?: unknown): ClusterError {
    const tail = this.logTail(20, this.#logStart)
    const message = `postgres in ${this.dataDir} ${what}; end of ${this.logFile}:\n${tail}`
    const options = { cause, details: { logTail: tail } }
    return /could not bind|Address already in use/.test(tail)
      ? new PortInUseError(message, options)
      : new ClusterError(message, options)
  }
}

/** process.kill that reports whether the target existed instead of throwing. */
