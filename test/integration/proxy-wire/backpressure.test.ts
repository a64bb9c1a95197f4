// Proxy backpressure against a real cluster: with every server connection of a node busy and
// pools.max_waiting clients already queued, the next statement fails fast with 53300 instead of queueing
// forever; the queued one runs as soon as a connection is free.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { eventually } from '../../support/eventually.js'
import { type ProxyFixture, startProxyFixture } from '../../support/proxy-fixture.js'

describe('proxy backpressure (pools.max_waiting)', () => {
  let f: ProxyFixture

  before(async () => {
    f = await startProxyFixture(
      {
        pools: {
          primary: { min_idle: 0, max_active: 1, connection_timeout_ms: 5000 },
          replicas: { min_idle: 0, max_active: 1, connection_timeout_ms: 5000 },
          max_waiting: 1,
          slow_start_ms: 0,
        },
      },
      1,
    )
  })

  after(async () => {
    await f?.stop()
  })

  it('queues up to max_waiting, refuses the next with 53300, and serves the queued one after', async () => {
    const clients = await Promise.all(
      [0, 1, 2].map(async () => {
        const c = new pg.Client({ connectionString: f.url() })
        await c.connect()
        return c
      }),
    )
    const [holder, waiter, refused] = clients as [pg.Client, pg.Client, pg.Client]
    try {
      // the primary's only server connection is held by an open transaction
      await holder.query('BEGIN')
      await holder.query('SELECT 1')
      const queued = waiter.query('SELECT 2 AS two')
      await eventually('the queued statement', () => f.proxy.poolStats().primary?.waiting === 1)
      await assert.rejects(refused.query('SELECT 3'), (err: { code?: string; message: string }) => {
        assert.equal(err.code, '53300')
        assert.match(err.message, /^freshet: .*max_waiting/)
        return true
      })
      // the refused client is still usable once there is room
      await holder.query('COMMIT')
      assert.equal((await queued).rows[0].two, 2)
      assert.equal((await refused.query('SELECT 3 AS three')).rows[0].three, 3)
    } finally {
      await Promise.all(clients.map((c) => c.end()))
    }
  })
})
