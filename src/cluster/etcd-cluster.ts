// A real local etcd cluster for fleet tests: N members from Debian's etcd-server binary on free loopback
// ports in a temporary directory; members can be stopped, killed and restarted; nothing outlives us.

import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ClusterError } from './cluster-error.js'
import { freePort } from './free-port.js'
import { pollUntil } from './poll-until.js'
import { SETPRIV } from './postgres-server.js'
import { killServer, logTail, stopServer } from './server-process.js'
import { startWatchdog, type Watchdog } from './watchdog.js'

/** Options of {@link startEtcdCluster}. */
export interface EtcdClusterOptions {
  /** Number of members (default 3). */
  members?: number
  /** The etcd binary (default `FRESHET_ETCD_BIN`, else `etcd` on PATH, e.g. /usr/bin/etcd from etcd-server). */
  binary?: string
  /** How long a member may take to start (default 30 s). */
  startTimeoutMs?: number
}

/** One etcd member: a process over its own data directory. */
export class EtcdMember {
  readonly name: string
  readonly dir: string
  readonly clientPort: number
  readonly peerPort: number
  readonly #args: readonly string[]
  readonly #binary: string
  readonly #logFile: string
  #child: ChildProcess | null = null
  #exited: Promise<void> = Promise.resolve()

  /** @internal built by {@link startEtcdCluster} */
  constructor(
    binary: string,
    root: string,
    name: string,
    clientPort: number,
    peerPort: number,
    args: string[],
  ) {
    this.#binary = binary
    this.name = name
    this.dir = join(root, name)
    this.clientPort = clientPort
    this.peerPort = peerPort
    this.#logFile = join(root, `${name}.log`)
    this.#args = args
    mkdirSync(this.dir, { recursive: true })
  }

  /** The client URL, e.g. `http://127.0.0.1:23791`. */
  get endpoint(): string {
    return `http://127.0.0.1:${this.clientPort}`
  }

  /** The member's pid while it runs, else null. */
  get pid(): number | null {
    return this.#child?.pid ?? null
  }

  get running(): boolean {
    return this.#child !== null
  }

  /** Starts the process (a restart reuses the data directory: the member rejoins). */
  spawn(): void {
    if (this.#child) return
    const logFd = openSync(this.#logFile, 'a')
    const argv = [this.#binary, ...this.#args, '--data-dir', join(this.dir, 'data')]
    const [command, args] = SETPRIV
      ? [SETPRIV, ['--pdeathsig', 'KILL', '--', ...argv]]
      : [argv[0]!, argv.slice(1)]
    let child: ChildProcess
    try {
      // cwd inside the cluster root: the watchdog and processesIn() find the member by it
      child = spawn(command, args, { cwd: this.dir, detached: true, stdio: ['ignore', logFd, logFd] })
    } finally {
      closeSync(logFd)
    }
    this.#exited = new Promise((resolve) => {
      child.once('exit', () => {
        if (this.#child === child) this.#child = null
        resolve()
      })
      child.once('error', () => {
        if (this.#child === child) this.#child = null
        resolve()
      })
    })
    child.unref()
    this.#child = child
  }

  /** True once the member answers `/health` with a leader (the cluster has quorum). */
  async healthy(): Promise<boolean> {
    try {
      const res = await fetch(`${this.endpoint}/health`, { signal: AbortSignal.timeout(1000) })
      const body = (await res.json()) as { health?: string }
      return body.health === 'true'
    } catch {
      return false
    }
  }

  /** Graceful stop (SIGTERM), waiting for the process to exit. */
  stop(): Promise<void> {
    return stopServer(this.#child, this.#exited, 'SIGTERM', null, () => this.kill())
  }

  /** SIGKILL (a crash), waiting until no process of this member is left. */
  kill(): Promise<void> {
    return killServer(this.#child, this.#exited, this.dir)
  }

  /** The last lines of the member's log. */
  logTail(lines = 20): string {
    return logTail(this.#logFile, lines)
  }
}

/**
 * A running etcd cluster. `endpoints` lists every member's client URL (what `fleet.etcd.endpoints` takes).
 * @example
 * const etcd = await startEtcdCluster({ members: 3 })
 * await etcd.kill('etcd_2')      // the two left keep quorum
 * await etcd.start('etcd_2')     // rejoins from its data directory
 * await etcd.stop()
 */
export class EtcdCluster {
  readonly root: string
  readonly members: readonly EtcdMember[]
  readonly #watchdog: Watchdog
  readonly #timeoutMs: number

  /** @internal use {@link startEtcdCluster} */
  constructor(root: string, members: EtcdMember[], watchdog: Watchdog, timeoutMs: number) {
    this.root = root
    this.members = members
    this.#watchdog = watchdog
    this.#timeoutMs = timeoutMs
  }

  get endpoints(): string[] {
    return this.members.map((m) => m.endpoint)
  }

  member(name: string): EtcdMember {
    const m = this.members.find((x) => x.name === name)
    if (!m)
      throw new ClusterError(`no etcd member '${name}' (have ${this.members.map((x) => x.name).join(', ')})`)
    return m
  }

  /** SIGKILLs one member. */
  kill(name: string): Promise<void> {
    return this.member(name).kill()
  }

  /** Restarts a stopped or killed member and waits until it reports healthy. */
  async start(name: string): Promise<void> {
    const m = this.member(name)
    m.spawn()
    await this.#waitHealthy([m])
  }

  /** Waits until every running member reports a leader. */
  waitHealthy(): Promise<void> {
    return this.#waitHealthy(this.members.filter((m) => m.running))
  }

  /** Stops every member (SIGKILL: the data is thrown away) and removes the directory. */
  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.kill()))
    rmSync(this.root, { recursive: true, force: true })
    this.#watchdog.release()
  }

  async #waitHealthy(members: readonly EtcdMember[]): Promise<void> {
    try {
      await pollUntil(
        async () => {
          for (const m of members) if (!m.running) throw new ClusterError(`etcd member ${m.name} exited`)
          return (await Promise.all(members.map((m) => m.healthy()))).every(Boolean)
        },
        this.#timeoutMs,
        `etcd members ${members.map((m) => m.name).join(', ')} to be healthy`,
        50,
      )
    } catch (err) {
      const tails = members.map((m) => `--- ${m.name}:\n${m.logTail(10)}`).join('\n')
      throw new ClusterError(`${(err as Error).message}\n${tails}`, { cause: err })
    }
  }
}

/** The etcd binary to run: `FRESHET_ETCD_BIN`, else the first `etcd` on PATH. */
export function resolveEtcdBinary(binary = process.env.FRESHET_ETCD_BIN): string {
  if (binary) return binary
  for (const dir of (process.env.PATH ?? '/usr/bin').split(':')) {
    const candidate = join(dir || '.', 'etcd')
    if (existsSync(candidate)) return candidate
  }
  throw new ClusterError(
    "etcd not found: install Debian's etcd-server package (apt-get install etcd-server) or set FRESHET_ETCD_BIN",
  )
}

/**
 * Starts an etcd cluster on free loopback ports and waits until it has a leader. Retries on fresh
 * ports when another process took one between picking and binding.
 */
export async function startEtcdCluster(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  const binary = resolveEtcdBinary(options.binary)
  const count = options.members ?? 3
  const timeoutMs = options.startTimeoutMs ?? 30_000
  let lastError: unknown
  for (let attempt = 0; attempt < 3; attempt++) {
    const root = mkdtempSync(join(tmpdir(), 'freshet-etcd-'))
    const watchdog = startWatchdog(root)
    const ports: number[] = []
    while (ports.length < count * 2) {
      const p = await freePort()
      if (!ports.includes(p)) ports.push(p)
    }
    const names = Array.from({ length: count }, (_, i) => `etcd_${i + 1}`)
    const peers = names.map((n, i) => `${n}=http://127.0.0.1:${ports[i * 2 + 1]}`).join(',')
    const members = names.map((name, i) => {
      const client = ports[i * 2]!
      const peer = ports[i * 2 + 1]!
      return new EtcdMember(binary, root, name, client, peer, [
        '--name',
        name,
        '--listen-client-urls',
        `http://127.0.0.1:${client}`,
        '--advertise-client-urls',
        `http://127.0.0.1:${client}`,
        '--listen-peer-urls',
        `http://127.0.0.1:${peer}`,
        '--initial-advertise-peer-urls',
        `http://127.0.0.1:${peer}`,
        '--initial-cluster',
        peers,
        '--initial-cluster-state',
        'new',
        '--initial-cluster-token',
        `freshet-${process.pid}-${attempt}`,
        // loopback: short heartbeats, so elections after a kill take well under a second
        '--heartbeat-interval',
        '50',
        '--election-timeout',
        '500',
        '--log-level',
        'warn',
        '--logger',
        'zap',
      ])
    })
    const cluster = new EtcdCluster(root, members, watchdog, timeoutMs)
    for (const m of members) m.spawn()
    try {
      await cluster.waitHealthy()
      return cluster
    } catch (err) {
      lastError = err
      await cluster.stop().catch(() => {})
      if (!/address already in use/i.test((err as Error).message)) throw err
    }
  }
  throw lastError
}
