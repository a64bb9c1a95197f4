// The MySQL/MariaDB engine driver: node-sql-parser classification, mysql2 monitors and heartbeat, GTID tokens.

import mysql from 'mysql2/promise'
import {
  type HeartbeatConnection,
  type HeartbeatDialect,
  HeartbeatWriter,
} from '../backend/heartbeat-writer.js'
import type { NodeMonitorOptions, NodeReading } from '../backend/node-monitor.js'
import type { FreshetConfig } from '../core/config/schema.js'
import { type GtidSet, gtidCovers, parseGtid } from '../core/gtid.js'
import type { TokenOrder } from '../core/route/token-order.js'
import type { NodeState } from '../core/topology/node-state.js'
import type { PositionOrder } from '../core/topology/staleness-bound.js'
import type { EngineDriver, EngineMonitor } from '../routing/engine-driver.js'
import { MysqlClassifier, type MysqlDialect } from './mysql-classifier.js'
import { type GtidMark, MysqlNodeMonitor } from './mysql-node-monitor.js'
import { mysqlConnectionOptions } from './mysql-url.js'

/** MySQL/MariaDB heartbeat: a TIMESTAMP(6) row written with NOW(6) (the reference document's form). */
export const MYSQL_HEARTBEAT: HeartbeatDialect = Object.freeze({
  async connect(url: string, timeoutMs: number, onError: () => void): Promise<HeartbeatConnection> {
    const conn = await mysql.createConnection({ ...mysqlConnectionOptions(url), connectTimeout: timeoutMs })
    conn.on('error', onError)
    return {
      query: (sql: string) => conn.query(sql),
      end: async () => conn.destroy(),
    }
  },
  createSql: (table: string) =>
    `CREATE TABLE IF NOT EXISTS ${table} (id INT PRIMARY KEY, ts TIMESTAMP(6) NOT NULL) ENGINE=InnoDB`,
  writeSql: (table: string) =>
    `INSERT INTO ${table} (id, ts) VALUES (1, NOW(6)) ON DUPLICATE KEY UPDATE ts = NOW(6)`,
  // access denied, read-only server, no database selected
  isLasting: (e: Error & { code?: string }) =>
    e.code === 'ER_TABLEACCESS_DENIED_ERROR' ||
    e.code === 'ER_DBACCESS_DENIED_ERROR' ||
    e.code === 'ER_OPTION_PREVENTS_STATEMENT' ||
    e.code === 'ER_NO_DB_ERROR',
})

/**
 * One driver per routing engine: it keeps every node's latest GTID position (from its monitor) so the
 * decider's token check is a lookup, and the primary's last position for the caught-up shortcut.
 */
export class MysqlDriver implements EngineDriver {
  readonly engine = 'mysql' as const
  readonly dialect: MysqlDialect
  readonly #positions = new Map<string, GtidSet>()
  #primaryMark: GtidMark | null = null
  readonly tokens: TokenOrder<GtidSet>
  /** GTID sets for the staleness bound: a replica has reached a primary sample when its set covers it. */
  readonly positions: PositionOrder<GtidSet> = Object.freeze({ parse: parseGtid, covers: gtidCovers })

  constructor(dialect: MysqlDialect = 'mariadb') {
    this.dialect = dialect
    const positions = this.#positions
    this.tokens = Object.freeze({
      parse: parseGtid,
      reached: (node: NodeState, token: GtidSet) => {
        const p = positions.get(node.name)
        return p !== undefined && gtidCovers(p, token)
      },
    })
  }

  async loadParser(): Promise<void> {}

  createClassifier(config: FreshetConfig): MysqlClassifier {
    return new MysqlClassifier({
      dialect: this.dialect,
      writeFunctions: config.routing.write_functions,
      readOnlyFunctions: config.routing.read_only_functions,
      cacheSize: config.classifier.cache_size,
    })
  }

  createMonitor(options: NodeMonitorOptions): EngineMonitor {
    return new MysqlNodeMonitor({
      ...options,
      dialect: this.dialect,
      primaryGtid: () => this.#primaryMark,
      onReading: (name: string, reading: NodeReading) => {
        const pos = reading.ok && reading.lsn !== null ? parseGtid(reading.lsn) : null
        if (pos !== null) this.#positions.set(name, pos)
        else if (!reading.ok) this.#positions.delete(name)
        if (pos !== null && reading.inRecovery === false) this.#primaryMark = { gtid: pos, at: reading.at }
        options.onReading(name, reading)
      },
    })
  }

  createHeartbeat(options: ConstructorParameters<typeof HeartbeatWriter>[0]): HeartbeatWriter {
    return new HeartbeatWriter({ ...options, dialect: MYSQL_HEARTBEAT })
  }

  /** MySQL has no function volatility catalogue: built-ins are listed in the classifier. */
  async loadVolatility(): Promise<void> {}

  /**
   * Asks every replica to wait for the token (MariaDB MASTER_GTID_WAIT, MySQL
   * WAIT_FOR_EXECUTED_GTID_SET), each on a connection of its own; the first that reaches it wins.
   */
  async waitForToken(
    token: string,
    replicas: readonly EngineMonitor[],
    timeoutMs: number,
  ): Promise<string | null> {
    if (replicas.length === 0 || timeoutMs <= 0) return null
    const seconds = timeoutMs / 1000
    const sql =
      this.dialect === 'mysql'
        ? 'SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?) AS r' // 0 = reached, 1 = timeout
        : 'SELECT MASTER_GTID_WAIT(?, ?) AS r' // 0 = reached, -1 = timeout
    const conns: mysql.Connection[] = []
    const one = async (m: EngineMonitor): Promise<string> => {
      const conn = await mysql.createConnection({
        ...mysqlConnectionOptions(m.url),
        connectTimeout: m.timeoutMs,
      })
      conns.push(conn)
      conn.on('error', () => {})
      const [rows] = await conn.query(sql, [token, seconds])
      if (Number((rows as { r: number }[])[0]?.r) !== 0) throw new Error('timeout')
      return m.name
    }
    try {
      return await Promise.any(replicas.map(one))
    } catch {
      return null
    } finally {
      for (const c of conns) c.destroy()
    }
  }
}

/**
 * The token after a write on `conn` (the connection that ran it): MariaDB's `@@last_gtid` of the
 * session (the write's own GTID; the binlog position when empty), MySQL's `@@GLOBAL.gtid_executed`
 * (covers the write; untested here, see docs/mysql.md).
 */
export async function gtidAfterWrite(
  conn: { query(sql: string): Promise<unknown> },
  dialect: MysqlDialect,
): Promise<string | null> {
  const sql =
    dialect === 'mysql'
      ? 'SELECT @@GLOBAL.gtid_executed AS gtid'
      : "SELECT IF(@@last_gtid = '', @@GLOBAL.gtid_binlog_pos, @@last_gtid) AS gtid"
  const [rows] = (await conn.query(sql)) as [{ gtid: string | null }[]]
  const gtid = rows[0]?.gtid
  return gtid ? String(gtid) : null
}
