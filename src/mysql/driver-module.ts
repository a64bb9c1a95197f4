// A mysql2 module look-alike (createPool, createConnection) over a freshet pool: for libraries that load
// the driver themselves (TypeORM's `driver` option, a Knex client's `_driver()`).

import { EventEmitter } from 'node:events'
import mysql from 'mysql2'
import type { MysqlPool, MysqlStatement } from './mysql-pool.js'
import type { MysqlPoolConnection } from './mysql-pool-connection.js'

type Callback = (err: Error | null, ...rest: unknown[]) => void

/** What libraries call on the mysql2 module. */
export interface Mysql2Module {
  createPool(options?: unknown): MysqlPool['pool']
  createConnection(options?: unknown): EventEmitter
  escape: typeof mysql.escape
  escapeId: typeof mysql.escapeId
  format: typeof mysql.format
}

/**
 * The mysql2 module as TypeORM and Knex use it, backed by `pool`: `createPool()` returns the pool's
 * callback face; `createConnection()` returns a connection that checks a routing connection out of the
 * pool on `connect()` and gives it back on `end()`. The connection options those libraries pass are
 * ignored: nodes come from freshet's config.
 *
 * @example
 * new DataSource({ type: 'mysql', driver: mysql2Module(pool), database: 'main' })
 */
export function mysql2Module(pool: MysqlPool): Mysql2Module {
  return {
    createPool: () => pool.pool,
    createConnection: () => lazyConnection(pool),
    escape: mysql.escape,
    escapeId: mysql.escapeId,
    format: mysql.format,
  }
}

/** A mysql2 callback Connection whose server connections come from the freshet pool once connect() ran. */
function lazyConnection(pool: MysqlPool): EventEmitter {
  const face = new EventEmitter() as EventEmitter & Record<string, unknown>
  let conn: MysqlPoolConnection | null = null
  const need = (): MysqlPoolConnection => {
    if (conn === null) throw new Error('freshet: connection used before connect() or after end()')
    return conn
  }
  const run =
    (method: 'query' | 'execute') =>
    (statement: MysqlStatement, values?: unknown, cb?: Callback): void => {
      const [v, done] = typeof values === 'function' ? [undefined, values as Callback] : [values, cb]
      let c: MysqlPoolConnection
      try {
        c = need()
      } catch (err) {
        done?.(err as Error)
        return
      }
      c[method](statement, v).then(
        ([rows, fields]) => done?.(null, rows, fields),
        (err: Error) => done?.(err),
      )
    }
  Object.assign(face, {
    state: 'disconnected',
    threadId: null,
    connect(cb?: Callback) {
      pool.getConnection().then(
        (c) => {
          conn = c
          face.state = 'connected'
          cb?.(null)
        },
        (err: Error) => cb?.(err),
      )
    },
    query: run('query'),
    execute: run('execute'),
    ping(cb?: Callback) {
      need()
        .ping()
        .then(
          () => cb?.(null),
          (err: Error) => cb?.(err),
        )
    },
    end(cb?: Callback) {
      conn?.release()
      conn = null
      face.state = 'disconnected'
      cb?.(null)
    },
    destroy() {
      conn?.destroy()
      conn = null
      face.state = 'disconnected'
    },
    escape: mysql.escape,
    escapeId: mysql.escapeId,
    format: mysql.format,
    promise: () => need(),
  })
  return face
}
