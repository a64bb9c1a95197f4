// A real local MariaDB cluster (one primary, N GTID replicas) for tests, benchmarks and `freshet sandbox --engine mariadb`.

import { chownSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mysql from 'mysql2/promise'
import { ClusterError } from './cluster-error.js'
import { freePort } from './free-port.js'
import { type MariadbBinaries, resolveMariadbBinaries } from './mariadb-binaries.js'
import { MariadbServer } from './mariadb-server.js'
import { pollUntil } from './poll-until.js'
import { PortInUseError } from './postgres-server.js'
import { startWatchdog, type Watchdog } from './watchdog.js'

/** Options of {@link startMariadbCluster}. */
export interface MariadbClusterOptions {
  /** Number of GTID replicas, named `replica_1` ... (default 2). */
  replicas?: number
  /** MASTER_DELAY per replica in ms (rounded up to whole seconds, MariaDB's unit), e.g. `{ replica_2: 12_000 }`. */
  lag?: Record<string, number>
  /** Directory with `mariadbd` and `mariadb-install-db` (default: env FRESHET_MARIADB_BIN, else the system's). */
  binDir?: string
  onProgress?: (msg: string) => void
}

/** One node of a {@link MariadbCluster}. */
export interface MariadbNode {
  readonly name: string
  readonly host: string
  readonly port: number
  readonly serverId: number
  /**
   * A connection URL: `app` (password `app`, database privileges plus replication monitoring) by
   * default, `root` (no password) for administration.
   * @example node.url() // mysql://app:app@127.0.0.1:40123/freshet
   */
  url(user?: 'app' | 'root', db?: string): string
}

const HOST = '127.0.0.1'
const PORT_ATTEMPTS = 5
/** The replication user, the application user: both created on the primary and replicated. */
const BOOT_SQL = [
  "CREATE USER 'repl'@'%' IDENTIFIED BY 'repl'",
  "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%'",
  'CREATE DATABASE freshet',
  "CREATE USER 'app'@'%' IDENTIFIED BY 'app'",
  "GRANT ALL ON freshet.* TO 'app'@'%'",
  "GRANT REPLICATION CLIENT, SLAVE MONITOR ON *.* TO 'app'@'%'",
]
const COMMON_SETTINGS = {
  'log-bin': 'mysql-bin',
  'binlog-format': 'ROW',
  'log-slave-updates': 'ON',
  'gtid-strict-mode': 'ON',
  'gtid-domain-id': '0',
}

class Node implements MariadbNode {
  readonly host = HOST
  readonly server: MariadbServer
  port = 0
  delayMs = 0
  constructor(
    readonly name: string,
    readonly serverId: number,
    readonly replica: boolean,
    root: string,
    bins: MariadbBinaries,
  ) {
    this.server = new MariadbServer(bins, join(root, name))
  }
  url(user: 'app' | 'root' = 'app', db = 'freshet'): string {
    const auth = user === 'app' ? 'app:app' : 'root'
    return `mysql://${auth}@${this.host}:${this.port}/${encodeURIComponent(db)}`
  }
  get settings(): Record<string, string> {
    return this.replica ? { ...COMMON_SETTINGS, 'read-only': 'ON' } : COMMON_SETTINGS
  }
}

/**
 * A running local MariaDB cluster. Create it with {@link startMariadbCluster}; always `stop()` it (a
 * watchdog also cleans up if this process dies first).
 *
 * @example
 * const cluster = await startMariadbCluster({ replicas: 2 })
 * await cluster.query('primary', 'CREATE TABLE t (id int primary key)')
 * await cluster.waitForCatchUp()
 * await cluster.stopSqlThread('replica_1')   // replica_1 stops applying: its lag grows
 * await cluster.stop()
 */
export class MariadbCluster {
  readonly root: string
  readonly bins: MariadbBinaries
  readonly #nodes: Node[]
  readonly #watchdog: Watchdog
  readonly #onProgress: (msg: string) => void
  #stopping: Promise<void> | null = null

  /** @internal use {@link startMariadbCluster} */
  constructor(
    root: string,
    bins: MariadbBinaries,
    nodes: Node[],
    watchdog: Watchdog,
    onProgress: (m: string) => void,
  ) {
    this.root = root
    this.bins = bins
    this.#nodes = nodes
    this.#watchdog = watchdog
    this.#onProgress = onProgress
  }

  get primary(): MariadbNode {
    return this.#nodes[0]!
  }

  get replicas(): MariadbNode[] {
    return this.#nodes.slice(1)
  }

  get nodes(): MariadbNode[] {
    return [...this.#nodes]
  }

  node(name: string): MariadbNode {
    return this.#node(name)
  }

  /** Whether the node's server process runs. */
  running(name: string): boolean {
    return this.#node(name).server.running
  }

  /** @internal */
  async boot(): Promise<void> {
    await Promise.all(this.#nodes.map((n) => n.server.install()))
    this.#onProgress(`installed ${this.#nodes.length} MariaDB ${this.bins.version} data directories`)
    await Promise.all(this.#nodes.map((n) => this.#startOnFreePort(n)))
    for (const sql of BOOT_SQL) await this.query('primary', sql, [], 'mysql')
    await Promise.all(this.#nodes.slice(1).map((n) => this.#attach(n)))
    await this.waitForCatchUp(30_000)
    this.#onProgress(
      `primary on ${HOST}:${this.primary.port}, ${this.#nodes.length - 1} GTID replica(s) streaming`,
    )
  }

  /**
   * Runs one statement on a node as `root` in database `freshet` (or `db`) over a fresh connection.
   * @example const [rows] = await cluster.query('replica_1', 'SELECT @@gtid_slave_pos AS pos')
   */
  async query<T = Record<string, unknown>>(
    name: string,
    sql: string,
    params: unknown[] = [],
    db = 'freshet',
  ): Promise<T[]> {
    const node = this.#node(name)
    const c = await mysql.createConnection({ host: HOST, port: node.port, user: 'root', database: db })
    try {
      const [rows] = await c.query(sql, params)
      return rows as T[]
    } finally {
      c.destroy()
    }
  }

  /** The node's GTID position: the primary's `gtid_binlog_pos`, a replica's `gtid_slave_pos`. */
  async gtid(name: string): Promise<string> {
    const node = this.#node(name)
    const v = node.replica ? '@@gtid_slave_pos' : '@@gtid_binlog_pos'
    const [row] = await this.query<{ pos: string }>(name, `SELECT ${v} AS pos`, [], 'mysql')
    return row!.pos
  }

  /** Sets the replica's apply delay (CHANGE MASTER TO MASTER_DELAY, whole seconds, rounded up). */
  async setDelay(name: string, ms: number): Promise<void> {
    const node = this.#replica(name)
    node.delayMs = ms
    await this.query(name, 'STOP SLAVE', [], 'mysql')
    await this.query(name, `CHANGE MASTER TO MASTER_DELAY = ${Math.ceil(ms / 1000)}`, [], 'mysql')
    await this.query(name, 'START SLAVE', [], 'mysql')
  }

  /** Stops the replica's SQL (apply) thread: events keep arriving, nothing is applied. */
  async stopSqlThread(name: string): Promise<void> {
    await this.query(this.#replica(name).name, 'STOP SLAVE SQL_THREAD', [], 'mysql')
  }

  async startSqlThread(name: string): Promise<void> {
    await this.query(this.#replica(name).name, 'START SLAVE SQL_THREAD', [], 'mysql')
  }

  /** Stops both replication threads of a replica (STOP SLAVE). */
  async stopReplication(name: string): Promise<void> {
    await this.query(this.#replica(name).name, 'STOP SLAVE', [], 'mysql')
  }

  async startReplication(name: string): Promise<void> {
    await this.query(this.#replica(name).name, 'START SLAVE', [], 'mysql')
  }

  /** Clean shutdown of one node's server. */
  async stopNode(name: string): Promise<void> {
    await this.#node(name).server.stop()
  }

  /** SIGKILLs one node's server (a crash). */
  async kill(name: string): Promise<void> {
    await this.#node(name).server.kill()
  }

  /** Starts a stopped node again on its port; a replica resumes replication on its own. */
  async start(name: string): Promise<void> {
    const node = this.#node(name)
    await node.server.start({ serverId: node.serverId, port: node.port, settings: node.settings })
  }

  /**
   * Waits until every running replica without an apply delay has applied the primary's current GTID
   * position (MASTER_GTID_WAIT).
   */
  async waitForCatchUp(timeoutMs = 10_000, names?: readonly string[]): Promise<void> {
    const pos = await this.gtid('primary')
    const replicas = this.#nodes.filter(
      (n) => n.replica && n.server.running && (names ? names.includes(n.name) : n.delayMs === 0),
    )
    await Promise.all(
      replicas.map(async (n) => {
        const [row] = await this.query<{ r: number }>(
          n.name,
          'SELECT MASTER_GTID_WAIT(?, ?) AS r',
          [pos, timeoutMs / 1000],
          'mysql',
        )
        if (Number(row!.r) !== 0) {
          throw new ClusterError(
            `${n.name} did not reach GTID ${pos} within ${timeoutMs} ms (at ${await this.gtid(n.name)})`,
          )
        }
      }),
    )
  }

  /** Stops every server, removes the directory and lets the watchdog go. Safe to call twice. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      await Promise.all(this.#nodes.map((n) => n.server.kill().catch(() => {})))
      rmSync(this.root, { recursive: true, force: true })
      this.#watchdog.release()
    })()
    return this.#stopping
  }

  async #startOnFreePort(node: Node): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      node.port = await freePort(HOST)
      try {
        await node.server.start({ serverId: node.serverId, port: node.port, settings: node.settings })
        return
      } catch (err) {
        if (!(err instanceof PortInUseError) || attempt >= PORT_ATTEMPTS) throw err
      }
    }
  }

  async #attach(node: Node): Promise<void> {
    const primary = this.#nodes[0]!
    await this.query(
      node.name,
      `CHANGE MASTER TO MASTER_HOST = '${HOST}', MASTER_PORT = ${primary.port}, MASTER_USER = 'repl', ` +
        `MASTER_PASSWORD = 'repl', MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1, ` +
        `MASTER_DELAY = ${Math.ceil(node.delayMs / 1000)}`,
      [],
      'mysql',
    )
    await this.query(node.name, 'START SLAVE', [], 'mysql')
    await pollUntil(
      async () => {
        const [s] = await this.query<Record<string, string>>(node.name, 'SHOW SLAVE STATUS', [], 'mysql')
        if (s?.Last_IO_Error) throw new ClusterError(`${node.name}: ${s.Last_IO_Error}`)
        return s?.Slave_IO_Running === 'Yes' && s.Slave_SQL_Running === 'Yes'
      },
      15_000,
      `${node.name} replicating from the primary`,
    )
  }

  #node(name: string): Node {
    const node = this.#nodes.find((n) => n.name === name)
    if (!node)
      throw new ClusterError(`no node '${name}' (nodes: ${this.#nodes.map((n) => n.name).join(', ')})`)
    return node
  }

  #replica(name: string): Node {
    const node = this.#node(name)
    if (!node.replica) throw new ClusterError(`${name} is not a replica`)
    return node
  }
}

/**
 * Starts a local MariaDB cluster: a primary and `replicas` GTID replicas (MASTER_USE_GTID=slave_pos,
 * read_only) on free loopback ports in a fresh temporary directory, with users `root` (no password)
 * and `app`/`app`, and database `freshet`. As root the servers run as `nobody`.
 *
 * @example
 * const cluster = await startMariadbCluster({ replicas: 2, lag: { replica_2: 3000 } })
 * cluster.node('replica_1').url() // mysql://app:app@127.0.0.1:4xxxx/freshet
 */
export async function startMariadbCluster(options: MariadbClusterOptions = {}): Promise<MariadbCluster> {
  const count = options.replicas ?? 2
  if (!Number.isInteger(count) || count < 0)
    throw new ClusterError(`replicas must be a whole number >= 0, got ${count}`)
  for (const [name, ms] of Object.entries(options.lag ?? {})) {
    const index = /^replica_(\d+)$/.exec(name)?.[1]
    if (!index || Number(index) < 1 || Number(index) > count) {
      throw new ClusterError(`lag: no replica '${name}' (replicas: replica_1..replica_${count})`)
    }
    if (!(ms >= 0)) throw new ClusterError(`lag: ${name} must be a delay in ms >= 0, got ${ms}`)
  }
  const bins = resolveMariadbBinaries(options.binDir)
  const root = mkdtempSync(join(tmpdir(), 'freshet-mariadb-'))
  if (bins.runAs) chownSync(root, bins.runAs.uid, bins.runAs.gid)
  const watchdog = startWatchdog(root)
  const nodes = [new Node('primary', 1, false, root, bins)]
  for (let i = 1; i <= count; i++) nodes.push(new Node(`replica_${i}`, i + 1, true, root, bins))
  for (const n of nodes) n.delayMs = options.lag?.[n.name] ?? 0
  const cluster = new MariadbCluster(root, bins, nodes, watchdog, options.onProgress ?? (() => {}))
  try {
    await cluster.boot()
    return cluster
  } catch (err) {
    await cluster.stop().catch(() => {})
    throw err
  }
}
