// The callback-style faces (mysql2's core Pool and PoolConnection) over the promise pool: for Kysely, Knex and TypeORM.

import { EventEmitter } from 'node:events'
import { FreshetError } from '../core/errors.js'
import type { MysqlPool, MysqlStatement } from './mysql-pool.js'
import type { MysqlPoolConnection } from './mysql-pool-connection.js'

type Callback = (err: Error | null, rows?: unknown, fields?: unknown) => void

/** mysql2's callback Pool surface: getConnection(cb), query(sql, values?, cb), end(cb), events, promise(). */
export interface CallbackPool {
  getConnection(cb: (err: Error | null, conn: CallbackConnection) => void): void
  query(statement: MysqlStatement, values?: unknown, cb?: Callback): void
  execute(statement: MysqlStatement, values?: unknown, cb?: Callback): void
  end(cb?: (err?: Error | null) => void): void
  on(event: string, listener: (...args: unknown[]) => void): CallbackPool
  once(event: string, listener: (...args: unknown[]) => void): CallbackPool
  removeListener(event: string, listener: (...args: unknown[]) => void): CallbackPool
  escape(value: unknown): string
  escapeId(value: string | string[]): string
  format(sql: string, values?: unknown): string
  /** The promise pool this face belongs to. */
  promise(): MysqlPool
}

/** mysql2's callback PoolConnection surface (an EventEmitter, as TypeORM attaches an 'error' listener). */
export interface CallbackConnection extends EventEmitter {
  query(statement: MysqlStatement, values?: unknown, cb?: Callback): NoStream
  execute(statement: MysqlStatement, values?: unknown, cb?: Callback): NoStream
  beginTransaction(cb?: (err: Error | null) => void): void
  commit(cb?: (err: Error | null) => void): void
  rollback(cb?: (err: Error | null) => void): void
  ping(cb?: (err: Error | null) => void): void
  release(): void
  destroy(): void
  end(cb?: (err?: Error | null) => void): void
  escape(value: unknown): string
  escapeId(value: string | string[]): string
  format(sql: string, values?: unknown): string
  promise(): MysqlPoolConnection
}

/** What query() returns: mysql2's Query, of which only `stream()` is asked for (Kysely's streamQuery). */
export interface NoStream {
  /** Result streaming is not routed yet: throws. */
  stream(options?: unknown): never
}

const NO_STREAM: NoStream = Object.freeze({
  stream(): never {
    throw new FreshetError(
      'FRESHET_UNSUPPORTED',
      'freshet: streaming results (query().stream()) is not supported by freshet/mysql yet; run the query without streaming',
    )
  },
})

/** mysql2's (statement, values?, cb?) argument shuffle. */
function args(values: unknown, cb: Callback | undefined): [unknown, Callback | undefined] {
  return typeof values === 'function' ? [undefined, values as Callback] : [values, cb]
}

function settle<T>(promise: Promise<T>, cb: ((err: Error | null, value?: T) => void) | undefined): void {
  promise.then(
    (value) => cb?.(null, value),
    (err: Error) => cb?.(err),
  )
}

function results(
  cb: Callback | undefined,
): ((err: Error | null, value?: [unknown, unknown]) => void) | undefined {
  return cb ? (err, value) => (err ? cb(err) : cb(null, value?.[0], value?.[1])) : undefined
}

/**
 * The callback face of a freshet MySQL pool.
 * @example
 * new Kysely({ dialect: new MysqlDialect({ pool: freshetPool.pool }) })
 */
export function callbackPool(pool: MysqlPool): CallbackPool {
  const face: CallbackPool = {
    getConnection: (cb) =>
      pool.getConnection().then(
        (conn) => cb(null, conn.connection),
        // mysql2 passes no connection with an error
        (err: Error) => cb(err, undefined as unknown as CallbackConnection),
      ),
    query: (statement, values, cb) => {
      const [v, done] = args(values, cb)
      settle(pool.query(statement, v), results(done))
    },
    execute: (statement, values, cb) => {
      const [v, done] = args(values, cb)
      settle(pool.execute(statement, v), results(done))
    },
    end: (cb) => settle(pool.end(), cb),
    on: (event, listener) => {
      pool.on(event, listener)
      return face
    },
    once: (event, listener) => {
      pool.once(event, listener)
      return face
    },
    removeListener: (event, listener) => {
      pool.removeListener(event, listener)
      return face
    },
    escape: (value) => pool.escape(value),
    escapeId: (value) => pool.escapeId(value),
    format: (sql, values) => pool.format(sql, values),
    promise: () => pool,
  }
  return face
}

/** The callback face of one checked-out connection. */
export function callbackConnection(conn: MysqlPoolConnection): CallbackConnection {
  const face = new EventEmitter() as CallbackConnection
  Object.assign(face, {
    query: (statement: MysqlStatement, values?: unknown, cb?: Callback) => {
      const [v, done] = args(values, cb)
      settle(conn.query(statement, v), results(done))
      return NO_STREAM
    },
    execute: (statement: MysqlStatement, values?: unknown, cb?: Callback) => {
      const [v, done] = args(values, cb)
      settle(conn.execute(statement, v), results(done))
      return NO_STREAM
    },
    beginTransaction: (cb?: (err: Error | null) => void) => settle(conn.beginTransaction(), cb),
    commit: (cb?: (err: Error | null) => void) => settle(conn.commit(), cb),
    rollback: (cb?: (err: Error | null) => void) => settle(conn.rollback(), cb),
    ping: (cb?: (err: Error | null) => void) => settle(conn.ping(), cb),
    release: () => conn.release(),
    destroy: () => conn.destroy(),
    end: (cb?: (err?: Error | null) => void) => settle(conn.end(), cb),
    escape: (value: unknown) => conn.escape(value),
    escapeId: (value: string | string[]) => conn.escapeId(value),
    format: (sql: string, values?: unknown) => conn.format(sql, values),
    promise: () => conn,
  })
  return face
}
