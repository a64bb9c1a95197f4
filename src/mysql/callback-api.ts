// The callback-style faces (mysql2's core Pool and PoolConnection) over the promise pool: for Kysely, Knex and TypeORM.

import { EventEmitter } from 'node:events'
import { FreshetError } from '../core/errors.js'
import type { MysqlStatement } from './mysql-statement.js'

type Callback = (err: Error | null, rows?: unknown, fields?: unknown) => void

/**
 * The promise connection a callback face wraps (a MysqlPoolConnection is one). Declared here, so that
 * the faces depend on this file and not the other way round.
 */
export interface PromiseConnection {
  query(statement: MysqlStatement, values?: unknown): Promise<[unknown, unknown]>
  execute(statement: MysqlStatement, values?: unknown): Promise<[unknown, unknown]>
  beginTransaction(): Promise<void>
  commit(): Promise<void>
  rollback(): Promise<void>
  ping(): Promise<void>
  release(): void
  destroy(): void
  end(): Promise<void>
  escape(value: unknown): string
  escapeId(value: string | string[]): string
  format(sql: string, values?: unknown): string
}

/** The promise pool a callback face wraps (a MysqlPool is one). */
export interface PromisePool {
  getConnection(): Promise<{ readonly connection: CallbackConnection }>
  query(statement: MysqlStatement, values?: unknown): Promise<[unknown, unknown]>
  execute(statement: MysqlStatement, values?: unknown): Promise<[unknown, unknown]>
  end(): Promise<void>
  on(event: string, listener: (...args: unknown[]) => void): unknown
  once(event: string, listener: (...args: unknown[]) => void): unknown
  removeListener(event: string, listener: (...args: unknown[]) => void): unknown
  escape(value: unknown): string
  escapeId(value: string | string[]): string
  format(sql: string, values?: unknown): string
}

/**
 * mysql2's callback Pool surface: getConnection(cb), query(sql, values?, cb), end(cb), events, promise().
 * `P`: the promise pool `promise()` returns (MysqlPool for freshet's).
 */
export interface CallbackPool<P extends PromisePool = PromisePool> {
  getConnection(cb: (err: Error | null, conn: CallbackConnection) => void): void
  query(statement: MysqlStatement, values?: unknown, cb?: Callback): void
  execute(statement: MysqlStatement, values?: unknown, cb?: Callback): void
  end(cb?: (err?: Error | null) => void): void
  on(event: string, listener: (...args: unknown[]) => void): CallbackPool<P>
  once(event: string, listener: (...args: unknown[]) => void): CallbackPool<P>
  removeListener(event: string, listener: (...args: unknown[]) => void): CallbackPool<P>
  escape(value: unknown): string
  escapeId(value: string | string[]): string
  format(sql: string, values?: unknown): string
  /** The promise pool this face belongs to. */
  promise(): P
}

/**
 * mysql2's callback PoolConnection surface (an EventEmitter, as TypeORM attaches an 'error' listener).
 * `C`: the promise connection `promise()` returns (MysqlPoolConnection for freshet's).
 */
export interface CallbackConnection<C extends PromiseConnection = PromiseConnection> extends EventEmitter {
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
  promise(): C
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
export function callbackPool<P extends PromisePool>(pool: P): CallbackPool<P> {
  const face: CallbackPool<P> = {
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
export function callbackConnection<C extends PromiseConnection>(conn: C): CallbackConnection<C> {
  const face = new EventEmitter() as CallbackConnection<C>
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
