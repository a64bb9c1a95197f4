// A checked-out connection of createMysqlPool(): routes per statement while idle, pins for transactions and session state.

import type mysql from 'mysql2/promise'
import type { Classification } from '../core/classify/classification.js'
import { laterToken } from '../core/read-token.js'
import type { Decision } from '../core/route/decision.js'
import { decisionError } from '../core/route/decision-error.js'
import type { RoutingContext } from '../core/route/routing-context.js'
import { currentContext } from '../library/context.js'
import type { RoutingEngine } from '../routing/routing-engine.js'
import { onlyFreshetSettings, SessionState } from '../session/session-state.js'
import { withStatementSpan } from '../telemetry/statement-span.js'
import { type CallbackConnection, callbackConnection } from './callback-api.js'
import { isMysqlConnectionError } from './mysql-node-pools.js'
import {
  type MysqlResult,
  type MysqlStatement,
  okResult,
  type RunMethod,
  runStatement,
  sqlOf,
} from './mysql-statement.js'

/**
 * What a checked-out connection needs from the pool that made it. Declared here, so that the pool
 * depends on the connection and not the other way round (a MysqlPool is one).
 */
export interface ConnectionPool {
  readonly engine: RoutingEngine
  routingContext(): RoutingContext
  recordWrite(token: string | null): void
  acquire(node: string): Promise<mysql.PoolConnection>
  tokenAfterWrite(conn: mysql.PoolConnection): Promise<string | null>
  query(statement: MysqlStatement, values?: unknown): Promise<MysqlResult>
  escape(value: unknown): string
  escapeId(value: string | string[]): string
  format(sql: string, values?: unknown): string
}

/**
 * mysql2/promise's PoolConnection surface over freshet's session machine (src/session): each statement
 * is routed on its own while the connection is idle; BEGIN / START TRANSACTION pins it to one node
 * (the primary, or a replica for START TRANSACTION READ ONLY when the tier allows) until COMMIT /
 * ROLLBACK; session state (temporary tables, GET_LOCK, user variables, SET, SQL PREPARE, LOCK TABLES)
 * pins it to the primary until release().
 *
 * Everything that runs on the primary runs on one primary connection held from its first use to
 * release(), as with a plain mysql2 PoolConnection: LAST_INSERT_ID(), @variables and temporary tables
 * see the statements before them. Reads on replicas borrow a replica connection per statement.
 */
export class MysqlPoolConnection {
  readonly #pool: ConnectionPool
  readonly #state = new SessionState()
  /** The primary connection, from its first use until release. */
  #primary: { readonly node: string; readonly conn: mysql.PoolConnection } | null = null
  /** A replica connection held by a read-only transaction. */
  #held: { readonly node: string; readonly conn: mysql.PoolConnection } | null = null
  /** The open transaction wrote on the primary: COMMIT fetches a token. */
  #txWrote = false
  #released = false
  #callback: CallbackConnection<MysqlPoolConnection> | null = null

  /** @internal use pool.getConnection() */
  constructor(pool: ConnectionPool) {
    this.#pool = pool
  }

  /** The session's read-your-writes token (GTID), if it wrote. */
  get token(): string | undefined {
    return this.#state.token
  }

  /** The node this connection is pinned to, or null. */
  get pinnedNode(): string | null {
    return this.#state.view().pinnedNode
  }

  /** The callback-style face of this connection (mysql2's core PoolConnection). */
  get connection(): CallbackConnection<MysqlPoolConnection> {
    this.#callback ??= callbackConnection(this)
    return this.#callback
  }

  query(statement: MysqlStatement, values?: unknown): Promise<MysqlResult> {
    return this.#run('query', statement, values)
  }

  execute(statement: MysqlStatement, values?: unknown): Promise<MysqlResult> {
    return this.#run('execute', statement, values)
  }

  async beginTransaction(): Promise<void> {
    await this.query('START TRANSACTION')
  }

  async commit(): Promise<void> {
    await this.query('COMMIT')
  }

  async rollback(): Promise<void> {
    await this.query('ROLLBACK')
  }

  async ping(): Promise<void> {
    const conn = this.#primary?.conn ?? this.#held?.conn
    if (conn) await conn.ping()
    else await this.#pool.query('SELECT 1')
  }

  escape(value: unknown): string {
    return this.#pool.escape(value)
  }

  escapeId(value: string | string[]): string {
    return this.#pool.escapeId(value)
  }

  format(sql: string, values?: unknown): string {
    return this.#pool.format(sql, values)
  }

  /**
   * Gives the connection back. An open transaction is rolled back first (a pooled server connection
   * must not carry it to the next user).
   */
  release(): void {
    if (this.#released) return
    this.#released = true
    const held = [this.#primary, this.#held].filter((h) => h !== null)
    this.#primary = null
    this.#held = null
    const inTx = this.#state.inTransaction
    for (const h of held) {
      if (inTx) {
        h.conn.query('ROLLBACK').then(
          () => h.conn.release(),
          () => h.conn.destroy(),
        )
      } else h.conn.release()
    }
  }

  /** Closes the server connections instead of returning them to the pool. */
  destroy(): void {
    this.#released = true
    this.#primary?.conn.destroy()
    this.#held?.conn.destroy()
    this.#primary = null
    this.#held = null
  }

  /** mysql2's PoolConnection.end() returns it to the pool. */
  async end(): Promise<void> {
    this.release()
  }

  #context(): RoutingContext {
    const base = this.#pool.routingContext()
    const own = this.#state.context()
    const minLsn = laterToken(base.minLsn, own.minLsn)
    return minLsn === base.minLsn ? base : { ...base, minLsn }
  }

  async #run(method: RunMethod, statement: MysqlStatement, values: unknown): Promise<MysqlResult> {
    if (this.#released) throw new Error('freshet: this connection was released')
    const engine = this.#pool.engine
    const sql = sqlOf(statement)
    const c = engine.classify(sql)
    if (onlyFreshetSettings(c)) {
      this.#state.consumeSettings(c)
      return okResult()
    }
    let routed = engine.decide(c, this.#state.view(), this.#context(), { wait: true })
    if ('then' in routed) routed = await routed
    const { decision } = routed
    return withStatementSpan(
      decision,
      c,
      () => this.#execute(decision, c, method, statement, values),
      currentContext()?.traceparent,
    )
  }

  async #execute(
    decision: Decision,
    c: Classification,
    method: RunMethod,
    statement: MysqlStatement,
    values: unknown,
  ): Promise<MysqlResult> {
    if (decision.target === null) throw decisionError(decision)!
    const node = decision.target
    const primary = this.#pool.engine.tracker.primary
    const onPrimary = node === primary
    const action = c.transaction?.action
    const begins = action === 'begin' && !this.#state.inTransaction
    let borrowed: mysql.PoolConnection | null = null
    let conn: mysql.PoolConnection
    if (onPrimary) conn = await this.#primaryConn(primary)
    else if (this.#held?.node === node) conn = this.#held.conn
    else {
      borrowed = await this.#pool.acquire(node)
      conn = borrowed
    }
    let res: MysqlResult
    try {
      res = (await runStatement(conn, method, statement, values)) as MysqlResult
    } catch (err) {
      if (borrowed) {
        if (isMysqlConnectionError(err)) borrowed.destroy()
        else if (begins) this.#held = null
        if (!isMysqlConnectionError(err)) borrowed.release()
      }
      if (isMysqlConnectionError(err)) {
        this.#pool.engine.tracker.breaker(node)?.failure()
        if (onPrimary) this.#primary = null
        // the server connection is gone, and with it the transaction and the session state
        this.#state.clearSessionPin()
        this.#state.setPinned(null)
        this.#state.ready('I')
      }
      throw err
    }
    // transactions and pins, after the statement succeeded
    if (begins) {
      if (borrowed) {
        this.#held = { node, conn: borrowed }
        borrowed = null
      }
      this.#txWrote = false
      this.#state.setPinned(node)
      // MySQL has no ReadyForQuery: the BEGIN that succeeded is the status
      this.#state.ready('T')
    } else if (action === 'commit' || action === 'rollback') {
      const wrote = this.#txWrote && action === 'commit'
      this.#endTransaction()
      if (wrote) await this.#recordWrite(conn)
    } else if (c.requiresPrimary && onPrimary && c.kind === 'write') {
      if (this.#state.inTransaction) this.#txWrote = true
      else await this.#recordWrite(conn)
    }
    if (c.pin !== undefined && onPrimary) {
      // MySQL keeps temporary tables, named locks and variables after a ROLLBACK: they hold at once
      this.#state.applyPins([c], { before: 'I', after: 'I', failed: false })
      if (!this.#state.inTransaction) this.#state.setPinned(primary)
    }
    borrowed?.release()
    return res
  }

  #endTransaction(): void {
    const held = this.#held
    this.#held = null
    held?.conn.release()
    this.#txWrote = false
    const keep = this.#state.sessionPin !== null ? this.#pool.engine.tracker.primary : null
    this.#state.setPinned(keep)
    this.#state.ready('I')
  }

  async #recordWrite(conn: mysql.PoolConnection): Promise<void> {
    const token = await this.#pool.tokenAfterWrite(conn)
    this.#state.recordWrite(token)
    this.#pool.recordWrite(token)
  }

  async #primaryConn(primary: string): Promise<mysql.PoolConnection> {
    if (this.#primary?.node === primary) return this.#primary.conn
    if (this.#primary) {
      // the primary changed under us: the old connection's session is on a node that is no longer primary
      this.#primary.conn.release()
      this.#primary = null
    }
    const conn = await this.#pool.acquire(primary)
    this.#primary = { node: primary, conn }
    return conn
  }
}
