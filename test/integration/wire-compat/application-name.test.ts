// Regression: a client that set no application_name saw 'freshet' (the server connections' own name);
// directly it is empty. The pool's name must not leak into client sessions.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import postgres from 'postgres'
import { type CompatFixture, onBothSides, type Side, startCompatFixture } from './compat-fixture.js'

for (const mode of ['transaction', 'session'] as const) {
  describe(`wire compat: application_name (${mode} mode)`, () => {
    let f: CompatFixture

    before(async () => {
      f = await startCompatFixture(mode, {
        replicas: 1,
        // transaction mode: reads go to the replica, writes to the primary (session mode routes once)
        patch: mode === 'transaction' ? { routing: { unannotated: 'eventual' } } : {},
        setup: async (c) => {
          await c.query('primary', 'CREATE TABLE names (v text)')
          await c.query('primary', 'GRANT ALL ON names TO app')
        },
      })
    })

    after(async () => {
      await f?.stop()
    })

    async function pgNames(side: Side, applicationName?: string) {
      const c = new pg.Client({ connectionString: f.urlOf(side), application_name: applicationName })
      const reported: Record<string, string> = {}
      const connection = (c as unknown as { connection: import('node:events').EventEmitter }).connection
      connection.on('parameterStatus', (m: { parameterName: string; parameterValue: string }) => {
        reported[m.parameterName] = m.parameterValue
      })
      await c.connect()
      try {
        const read = await c.query('SHOW application_name')
        const written = await c.query(
          "INSERT INTO names (v) VALUES (current_setting('application_name')) RETURNING v",
        )
        return {
          parameterStatus: reported.application_name,
          read: read.rows[0].application_name,
          written: written.rows[0].v,
        }
      } finally {
        await c.end()
      }
    }

    it('node-postgres without application_name sees it empty, on a read and a write', async () => {
      // a client that set a name first: its server connections go back to the pool
      await pgNames('proxy', 'first')
      const got = await onBothSides((side) => pgNames(side))
      assert.deepEqual(got.proxy, got.direct)
      assert.deepEqual(got.direct, { parameterStatus: '', read: '', written: '' })
    })

    it('a chosen name is seen as chosen', async () => {
      const got = await onBothSides((side) => pgNames(side, 'billing'))
      assert.deepEqual(got.proxy, got.direct)
      assert.equal(got.direct.read, 'billing')
    })

    it('postgres.js (which names itself) sees its own name', async () => {
      const got = await onBothSides(async (side) => {
        const sql = postgres(f.urlOf(side), { max: 1 })
        try {
          const [row] = await sql<{ application_name: string }[]>`SHOW application_name`
          return row?.application_name
        } finally {
          await sql.end()
        }
      })
      assert.equal(got.proxy, got.direct)
    })
  })
}
