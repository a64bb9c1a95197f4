// One mariadbd process over a data directory: install, start, stop, kill, readiness, log tail.

import { type ChildProcess, spawn } from 'node:child_process'
import { chownSync, closeSync, existsSync, fstatSync, mkdirSync, openSync } from 'node:fs'
import { join } from 'node:path'
import mysql from 'mysql2/promise'
import { ClusterError } from './cluster-error.js'
import { run } from './cluster-template.js'
import type { MariadbBinaries } from './mariadb-binaries.js'
import { pollUntil } from './poll-until.js'
import { PortInUseError } from './postgres-server.js'
import { killServer, logTail, stopServer } from './server-process.js'

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p))

/** Settings of one server: its identity in replication and its place on the network. */
export interface MariadbServerOptions {
  readonly serverId: number
  readonly port: number
  /** Extra `--name=value` server options. */
  readonly settings?: Readonly<Record<string, string>>
}

/**
 * A mariadbd run directly in its own process group, as `bins.runAs` when set, with
 * `setpriv --pdeathsig KILL` so it dies with its parent. It chdirs into its node directory, so the
 * cluster watchdog (which kills what runs inside the cluster root) finds it.
 */
export class MariadbServer {
  readonly dir: string
  readonly dataDir: string
  readonly logFile: string
  readonly #bins: MariadbBinaries
  #child: ChildProcess | null = null
  #exited: Promise<void> = Promise.resolve()
  #logStart = 0

  constructor(bins: MariadbBinaries, dir: string) {
    this.#bins = bins
    this.dir = dir
    this.dataDir = join(dir, 'data')
    this.logFile = join(dir, 'error.log')
  }

  get pid(): number | null {
    return this.#child?.pid ?? null
  }

  get running(): boolean {
    return this.#child !== null
  }

  /** Creates the system tables (about half a second). */
  async install(): Promise<void> {
    mkdirSync(this.dir, { recursive: true })
    const runAs = this.#bins.runAs
    if (runAs) chownSync(this.dir, runAs.uid, runAs.gid)
    await run(this.#bins, this.#bins.installDb, [
      '--no-defaults',
      `--datadir=${this.dataDir}`,
      '--auth-root-authentication-method=normal',
      '--skip-test-db',
      '--skip-name-resolve',
      '--innodb-log-file-size=8M',
      `--tmpdir=${this.dir}`,
    ])
  }

  /** Starts the server and resolves once it answers a query over TCP. */
  async start(options: MariadbServerOptions, timeoutMs = 30_000): Promise<void> {
    if (this.#child) return
    const logFd = openSync(this.logFile, 'a')
    this.#logStart = fstatSync(logFd).size
    const args = [
      '--no-defaults',
      `--datadir=${this.dataDir}`,
      `--port=${options.port}`,
      '--bind-address=127.0.0.1',
      `--socket=${join(this.dir, 'mysqld.sock')}`,
      `--pid-file=${join(this.dir, 'mysqld.pid')}`,
      `--server-id=${options.serverId}`,
      `--tmpdir=${this.dir}`,
      '--skip-name-resolve',
      '--innodb-buffer-pool-size=16M',
      '--innodb-log-file-size=8M',
      '--performance-schema=OFF',
      '--max-connections=500',
      ...Object.entries(options.settings ?? {}).map(([k, v]) => `--${k}=${v}`),
    ]
    const runAs = this.#bins.runAs
    const [command, argv] = SETPRIV
      ? [SETPRIV, ['--pdeathsig', 'KILL', '--', this.#bins.server, ...args]]
      : [this.#bins.server, args]
    let child: ChildProcess
    try {
      child = spawn(command, argv, {
        cwd: this.dir,
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
      const gone = (why: number | string | null) => {
        exitCode = why
        if (this.#child === child) this.#child = null
        resolve()
      }
      child.once('exit', (code, sig) => gone(code ?? sig))
      child.once('error', (err) => gone(err.message))
    })
    child.unref()
    this.#child = child
    try {
      await pollUntil(
        async () => {
          if (exitCode !== null) throw this.#failure(`exited (${exitCode}) while starting`)
          const c = await mysql.createConnection({ host: '127.0.0.1', port: options.port, user: 'root' })
          await c.query('SELECT 1').finally(() => c.destroy())
          return true
        },
        timeoutMs,
        `mariadbd in ${this.dir} to accept connections`,
        25,
      )
    } catch (err) {
      if (this.#child === child) await this.kill()
      const failure = err instanceof ClusterError && err.cause instanceof ClusterError ? err.cause : err
      if (failure instanceof PortInUseError || exitCode !== null) throw failure
      throw this.#failure(`did not become ready within ${timeoutMs} ms`, err)
    }
  }

  /** A clean shutdown (SIGTERM), waiting for the process to exit; SIGKILL after `timeoutMs`. */
  stop(timeoutMs = 30_000): Promise<void> {
    return stopServer(this.#child, this.#exited, 'SIGTERM', timeoutMs, () => this.kill())
  }

  /** SIGKILLs the server (a crash) and waits until nothing of it runs. */
  async kill(): Promise<void> {
    if (this.#child?.pid) await killServer(this.#child, this.#exited, this.dir)
  }

  /** The last `lines` lines of the server's error log (since `fromByte`). */
  logTail(lines = 20, fromByte = 0): string {
    return logTail(this.logFile, lines, fromByte)
  }

  #failure(what: string, cause?: unknown): ClusterError {
    const tail = this.logTail(20, this.#logStart)
    const message = `mariadbd in ${this.dir} ${what}; end of ${this.logFile}:\n${tail}`
    const options = { cause, details: { logTail: tail } }
    return /Address already in use|Can't start server: Bind/.test(tail)
      ? new PortInUseError(message, options)
      : new ClusterError(message, options)
  }
}
