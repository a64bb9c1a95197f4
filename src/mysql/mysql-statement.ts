// mysql2's statement forms and results, and running one on a mysql2 connection: shared by the pool
// and its checked-out connections.

import type mysql from 'mysql2/promise'

/** A statement in any of mysql2's forms: SQL text, or options with `sql` (and rowsAsArray, nestTables ...). */
export type MysqlStatement = string | (mysql.QueryOptions & { sql: string })

/** What mysql2/promise resolves a statement with: rows (or a ResultSetHeader) and field packets. */
export type MysqlResult = [unknown, mysql.FieldPacket[] | undefined]

/** mysql2's two ways to run a statement: client-side formatting, or a server-side prepared statement. */
export type RunMethod = 'query' | 'execute'

/** The text of a statement in any of mysql2's call forms. */
export function sqlOf(statement: MysqlStatement): string {
  return typeof statement === 'string' ? statement : statement.sql
}

/** mysql2's OK result for a statement freshet answers itself (`SET @freshet_freshness = ...`). */
export function okResult(): MysqlResult {
  return [
    {
      fieldCount: 0,
      affectedRows: 0,
      insertId: 0,
      info: '',
      serverStatus: 2,
      warningStatus: 0,
      changedRows: 0,
    },
    undefined,
  ]
}

/** Runs a statement on a mysql2 connection with query() or execute(). */
export function runStatement(
  conn: mysql.PoolConnection,
  method: RunMethod,
  statement: MysqlStatement,
  values: unknown,
): Promise<unknown> {
  const args = values === undefined ? [statement] : [statement, values]
  return method === 'execute'
    ? (conn.execute as (...a: unknown[]) => Promise<unknown>)(...args)
    : (conn.query as (...a: unknown[]) => Promise<unknown>)(...args)
}
