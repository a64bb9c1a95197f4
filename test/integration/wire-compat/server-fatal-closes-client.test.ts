// Regression: after the server ended a session with FATAL (pg_terminate_backend, idle_session_timeout),
// freshet forwarded the FATAL, then sent its own ERROR and ReadyForQuery and kept the client open, so
// the next statement ran on a new server session. PostgreSQL closes the connection; so does freshet now.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { eventually } from '../../support/eventually.js'
import {
  type CompatFixture,
  onBothSides,
  type Side,
  startCompatFixture,
  watchedClient,
} from './compat-fixture.js'

/** What the client saw: the error of its statement, whether the connection ended, and the next statement. */
interface Seen {
  statement: string
  ended: boolean
  next: string
}

for (const mode of ['transaction', 'session'] as const) {
  describe(`wire compat: a server FATAL closes the client (${mode} mode)`, () => {
    let f: CompatFixture

    before(async () => {
      f = await startCompatFixture(mode)
    })

    after(async () => {
      await f?.stop()
    })

    /** A connected pg client, and whether its connection has ended. */
    const watched = (side: Side) => watchedClient(f.urlOf(side))

    /** A pg client whose backend is terminated while `running` is in progress (or, when null, while idle). */
    async function terminated(side: Side, running: string | null, marker: string): Promise<Seen> {
      const { c, ended: hasEnded } = await watched(side)
      const outcome = (p: Promise<unknown>) =>
        p.then(
          () => 'ok',
          (err: { code?: string }) => err.code ?? 'client error',
        )
      const backend = `SELECT pid FROM pg_stat_activity WHERE query LIKE '%${marker}%' AND pid <> pg_backend_pid()`
      let statement = 'none'
      if (running !== null) {
        const pending = outcome(c.query(`${running} /* ${marker} */`))
        await eventually(
          'the statement runs',
          async () => (await f.cluster.query('primary', backend)).rows.length > 0,
        )
        await f.cluster.query('primary', `SELECT pg_terminate_backend(pid) FROM (${backend}) b`)
        statement = await pending
      } else {
        await c.query(`SELECT 1 /* ${marker} */`)
        await f.cluster.query('primary', `SELECT pg_terminate_backend(pid) FROM (${backend}) b`)
      }
      await eventually(`${side}: the client connection ends`, hasEnded)
      const next = await outcome(c.query('SELECT 1'))
      return { statement, ended: hasEnded(), next }
    }

    it('terminated mid-statement: the statement fails with 57P01 and the connection ends, as directly', async () => {
      const got = await onBothSides((side) => terminated(side, 'SELECT pg_sleep(30)', `mid_${side}`))
      assert.deepEqual(got.proxy, got.direct)
      assert.deepEqual(got.direct, { statement: '57P01', ended: true, next: 'client error' })
    })

    it('terminated inside a transaction: the connection ends, as directly', async () => {
      const got = await onBothSides(async (side) => {
        const { c, ended } = await watched(side)
        await c.query('BEGIN')
        const { rows } = await c.query('SELECT pg_backend_pid() AS pid')
        await f.cluster.query('primary', `SELECT pg_terminate_backend(${rows[0].pid})`)
        await eventually(`${side}: the client connection ends`, ended)
        return ended()
      })
      assert.deepEqual(got, { direct: true, proxy: true })
    })

    if (mode === 'session') {
      it('terminated while idle (session mode holds the server session): the connection ends, as directly', async () => {
        const got = await onBothSides((side) => terminated(side, null, `idle_${side}`))
        assert.deepEqual(got.proxy, got.direct)
        assert.deepEqual(got.direct, { statement: 'none', ended: true, next: 'client error' })
      })
    }
  })
}
