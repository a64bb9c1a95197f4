// Probes one MySQL/MariaDB node: health, role (a configured replica or not), GTID position and lag
// (caught-up GTID, heartbeat age, Seconds_Behind_Source; stopped or failed replication threads: unknown).

import mysql from 'mysql2/promise'
import { type NodeMonitorOptions, type NodeReading, withTimeout } from '../backend/node-monitor.js'
import { ProbeLoop } from '../backend/probe-loop.js'
import { type GtidSet, gtidCovers, parseGtid } from '../core/gtid.js'
import type { EngineMonitor } from '../routing/engine-driver.js'
import type { MysqlDialect } from './mysql-classifier.js'
import { mysqlConnectionOptions } from './mysql-url.js'

/** The primary's GTID position at its last probe, for the caught-up shortcut. */
export interface GtidMark {
  readonly gtid: GtidSet
  readonly at: number
}

export interface MysqlMonitorOptions extends NodeMonitorOptions {
  readonly dialect: MysqlDialect
  /** The newest primary GTID mark (or null). */
  readonly primaryGtid: () => GtidMark | null
}

type Row = Record<string, unknown>

const HEARTBEAT_RETRY_MS = 2000

/** The replication status row under both spellings (MariaDB / MySQL before 8.0.22, and MySQL 8.0.22+). */
function field(row: Row, ...names: string[]): unknown {
  for (const n of names) if (row[n] !== undefined) return row[n]
  return undefined
}

/**
 * One dedicated connection per node, separate from the query pools, probing on a jittered interval.
 * A reading's `lsn` carries the node's GTID position as text (MariaDB `gtid_slave_pos` / primary
 * `gtid_binlog_pos`; MySQL `gtid_executed`).
 *
 * Lag, in order: the replica's GTID position covers the primary's last sampled position (caught up:
 * lag at most the sample's age); else the age of the newest heartbeat row it applied; else
 * Seconds_Behind_Source/Master. A replica whose IO or SQL thread is not running, or that reports an
 * error or a NULL Seconds_Behind, has unknown lag (never zero).
 */
export class MysqlNodeMonitor implements EngineMonitor {
  readonly #o: MysqlMonitorOptions
  #conn: mysql.Connection | null = null
  #connecting: Promise<mysql.Connection> | null = null
  readonly #loop: ProbeLoop
  #heartbeatMissing = false
  /** When the heartbeat table was found missing: asked again after HEARTBEAT_RETRY_MS (it may replicate later). */
  #missingSince = 0
  constructor(options: MysqlMonitorOptions) {
    this.#o = options
    this.#loop = new ProbeLoop(options, () => this.#probe())
  }

  get name(): string {
    return this.#o.name
  }
  get url(): string {
    return this.#o.url
  }
  get intervalMs(): number {
    return this.#o.intervalMs
  }
  get timeoutMs(): number {
    return this.#o.timeoutMs
  }

  start(): void {
    this.#loop.start()
  }

  /** One probe now (shared with a probe in flight). */
  probe(): Promise<NodeReading> {
    return this.#loop.probe()
  }

  heartbeatAvailable(table: string | null): void {
    this.#o.heartbeatTable = table
    this.#heartbeatMissing = false
  }

  async stop(): Promise<void> {
    this.#loop.stop()
    this.#drop()
  }

  async #probe(): Promise<NodeReading> {
    const started = Date.now()
    const o = this.#o
    if (this.#heartbeatMissing && started - this.#missingSince > HEARTBEAT_RETRY_MS)
      this.#heartbeatMissing = false
    const table = this.#heartbeatMissing ? null : o.heartbeatTable
    // when the probe was sent: the reading's time for the staleness bound (never later than the truth)
    let sentAt = started
    try {
      const conn = await this.#connect()
      // a fresh primary position first (the engine's hook), as the PostgreSQL monitor does
      if (o.beforeProbe)
        await withTimeout(o.beforeProbe(), o.beforeProbeMaxMs ?? o.timeoutMs, '').catch(() => {})
      sentAt = Date.now()
      const statusSql = o.dialect === 'mysql' ? 'SHOW REPLICA STATUS' : 'SHOW SLAVE STATUS'
      const gtidSql =
        o.dialect === 'mysql'
          ? 'SELECT @@GLOBAL.gtid_executed AS applied, @@GLOBAL.gtid_executed AS written'
          : 'SELECT @@GLOBAL.gtid_slave_pos AS applied, @@GLOBAL.gtid_binlog_pos AS written'
      const hbSql = table
        ? `SELECT TIMESTAMPDIFF(MICROSECOND, MAX(ts), NOW(6)) / 1000 AS age FROM ${table}`
        : 'SELECT NULL AS age'
      const [results] = await withTimeout(
        conn.query(`${gtidSql}; ${statusSql}; ${hbSql}`),
        o.timeoutMs,
        `probe of ${o.name} timed out after ${o.timeoutMs} ms`,
      )
      const [gtidRows, statusRows, hbRows] = results as unknown as [Row[], Row[], Row[]]
      const at = Date.now()
      return this.#deliver(this.#reading(gtidRows[0]!, statusRows[0], hbRows[0], sentAt, at, at - sentAt))
    } catch (err) {
      const e = err as Error & { code?: string }
      if (e.code === 'ER_NO_SUCH_TABLE' && table && !this.#heartbeatMissing) {
        this.#heartbeatMissing = true
        this.#missingSince = started
        return this.#probe()
      }
      this.#drop()
      return this.#deliver({
        ok: false,
        at: Date.now(),
        sentAt,
        inRecovery: null,
        lsn: null,
        lagMs: null,
        lagSource: null,
        replayPaused: null,
        timeline: null,
        error: e.message,
        rttMs: null,
      })
    }
  }

  #reading(
    g: Row,
    status: Row | undefined,
    hb: Row | undefined,
    sentAt: number,
    at: number,
    rttMs: number,
  ): NodeReading {
    const base = { ok: true, at, sentAt, error: null, rttMs, timeline: null }
    if (status === undefined) {
      // no replication configured: a primary
      return {
        ...base,
        inRecovery: false,
        lsn: String(g.written ?? ''),
        lagMs: 0,
        lagSource: 'primary',
        replayPaused: null,
      }
    }
    const applied = String(g.applied ?? '')
    const io = field(status, 'Slave_IO_Running', 'Replica_IO_Running')
    const sql = field(status, 'Slave_SQL_Running', 'Replica_SQL_Running')
    const behind = field(status, 'Seconds_Behind_Master', 'Seconds_Behind_Source')
    const lastError = field(status, 'Last_SQL_Error', 'Last_IO_Error')
    const stopped = sql !== 'Yes'
    const replica = { ...base, inRecovery: true, lsn: applied, replayPaused: stopped }
    if (stopped || io !== 'Yes') {
      const why = stopped ? 'SQL thread not running' : `IO thread ${String(io)}`
      const detail = typeof lastError === 'string' && lastError !== '' ? `: ${lastError}` : ''
      return { ...replica, lagMs: null, lagSource: null, error: `replication ${why}${detail}` }
    }
    const mark = this.#o.primaryGtid()
    const position = parseGtid(applied)
    if (mark && position && gtidCovers(position, mark.gtid) && behind !== null) {
      return { ...replica, lagMs: Math.max(0, at - mark.at), lagSource: 'caught_up' }
    }
    const age = hb?.age
    if (age !== null && age !== undefined) {
      return { ...replica, lagMs: Math.max(0, Number(age)), lagSource: 'heartbeat' }
    }
    if (behind !== null && behind !== undefined) {
      return { ...replica, lagMs: Number(behind) * 1000, lagSource: 'seconds_behind_source' }
    }
    return { ...replica, lagMs: null, lagSource: null }
  }

  #deliver(reading: NodeReading): NodeReading {
    if (!this.#loop.stopped) this.#o.onReading(this.#o.name, reading)
    return reading
  }

  async #connect(): Promise<mysql.Connection> {
    if (this.#conn) return this.#conn
    if (this.#connecting) return this.#connecting
    this.#connecting = mysql
      .createConnection({
        ...mysqlConnectionOptions(this.#o.url),
        connectTimeout: this.#o.timeoutMs,
        multipleStatements: true,
      })
      .then(
        (conn) => {
          this.#connecting = null
          conn.on('error', () => this.#drop())
          if (this.#loop.stopped) {
            conn.destroy()
            throw new Error('monitor stopped')
          }
          this.#conn = conn
          return conn
        },
        (err) => {
          this.#connecting = null
          throw err
        },
      )
    return this.#connecting
  }

  #drop(): void {
    const conn = this.#conn
    this.#conn = null
    conn?.destroy()
  }
}
