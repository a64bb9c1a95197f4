// Regression: a Parse with more than 32,767 parameter types was refused as "negative parameter count"
// and the client disconnected. PostgreSQL reads the count unsigned (up to 65,535).

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import postgres from 'postgres'
import { type CompatFixture, onBothSides, startCompatFixture } from './compat-fixture.js'

// rows of two int columns: 20,000 rows are 40,000 parameters, past int16 and below PostgreSQL's 65,535
const ROWS = 20_000

describe('wire compat: Parse with more than 32,767 parameters', () => {
  let f: CompatFixture

  before(async () => {
    f = await startCompatFixture('transaction', {
      setup: async (c) => {
        await c.query('primary', 'CREATE TABLE wide (a int, b int)')
        await c.query('primary', 'GRANT ALL ON wide TO app')
      },
    })
  })

  after(async () => {
    await f?.stop()
  })

  it('postgres.js: a 40,000-parameter multi-row insert works as it does directly', async () => {
    const rows = Array.from({ length: ROWS }, (_, i) => ({ a: i, b: -i }))
    const result = await onBothSides(async (side) => {
      const sql = postgres(f.urlOf(side), { max: 1, onnotice: () => {} })
      try {
        await sql`DELETE FROM wide`
        const inserted = await sql`INSERT INTO wide ${sql(rows, 'a', 'b')} RETURNING a`
        // the connection survived: a second statement on it
        const [row] = await sql<
          { n: number; s: string }[]
        >`SELECT count(*)::int AS n, sum(b)::bigint::text AS s FROM wide`
        return { inserted: inserted.length, n: row?.n, s: row?.s }
      } finally {
        await sql.end()
      }
    })
    assert.deepEqual(result.proxy, result.direct)
    assert.deepEqual(result.direct, { inserted: ROWS, n: ROWS, s: String(-((ROWS * (ROWS - 1)) / 2)) })
  })

  it('postgres.js: 60,000 parameters, and the connection goes on', async () => {
    const n = 60_000
    const values = Array.from({ length: n }, (_, i) => i)
    const text = `SELECT cardinality(ARRAY[${values.map((i) => `$${i + 1}::int`).join(',')}]) AS n`
    const result = await onBothSides(async (side) => {
      const sql = postgres(f.urlOf(side), { max: 1 })
      try {
        const [wide] = await sql.unsafe<{ n: number }[]>(text, values, { prepare: true })
        const [next] = await sql<{ one: number }[]>`SELECT 1 AS one`
        return { count: wide?.n, one: next?.one }
      } finally {
        await sql.end()
      }
    })
    assert.deepEqual(result.proxy, result.direct)
    assert.deepEqual(result.direct, { count: n, one: 1 })
  })
})
