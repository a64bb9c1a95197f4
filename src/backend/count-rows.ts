// One `SELECT count(*)` on a node, on its own short-lived connection: the routing-map API's check of a
// range against the data (a rare admin call, so no pool is kept for it).

import pg from 'pg'

/**
 * Counts the rows of `table` (already quoted) matching `where` on the node at `url`; gives up after
 * `timeoutMs` (connect and statement).
 * @example
 * await countRows(url, '"orders"', '"customer_id" BETWEEN $1 AND $2', ['1', '99'], 5000) // 42
 */
export async function countRows(
  url: string,
  table: string,
  where: string,
  params: readonly string[],
  timeoutMs: number,
): Promise<number> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: timeoutMs,
    statement_timeout: timeoutMs,
    application_name: 'freshet routing-map check',
  })
  await client.connect()
  try {
    const res = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table} WHERE ${where}`, [
      ...params,
    ])
    return Number(res.rows[0]!.n)
  } finally {
    await client.end().catch(() => {})
  }
}
