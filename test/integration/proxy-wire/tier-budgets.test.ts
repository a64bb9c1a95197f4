// pools.tier_budgets through the proxy against a real replica: a burst of EVENTUAL reads holds at most
// its share of the replica's server connections, so NEAR_RT reads still get one at once.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { type ProxyFixture, startProxyFixture } from '../../support/proxy-fixture.js'

const SLOW_EVENTUAL = '/* FRESHNESS: EVENTUAL */ SELECT pg_sleep(0.4), inet_server_port() AS port'
const ACTIVE_SLEEPS =
  "SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE '%pg_sleep(0.4)%' AND state = 'active' AND pid <> pg_backend_pid()"

describe('proxy: pools.tier_budgets', () => {
  let f: ProxyFixture

  before(async () => {
    f = await startProxyFixture(
      {
        pools: {
          primary: { min_idle: 0, max_active: 4, connection_timeout_ms: 5000 },
          replicas: { min_idle: 0, max_active: 4, connection_timeout_ms: 5000 },
          tier_budgets: { eventual: 0.5 },
          slow_start_ms: 0,
        },
        routing: { read_only_functions: ['pg_sleep'] },
      },
      1,
    )
  })

  after(async () => {
    await f?.stop()
  })

  it('EVENTUAL holds at most half of max_active 4 on the replica; NEAR_RT is not starved', async () => {
    const clients = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const c = new pg.Client({ connectionString: f.url() })
        await c.connect()
        return c
      }),
    )
    try {
      let peak = 0
      let sampling = true
      const sampler = (async () => {
        while (sampling) {
          const res = await f.cluster.query('replica_1', ACTIVE_SLEEPS)
          peak = Math.max(peak, res.rows[0]?.n ?? 0)
        }
      })()
      const burst = clients.slice(0, 5).map((c) => c.query(SLOW_EVENTUAL))
      // while the burst runs, a NEAR_RT read finds a free replica connection without waiting for it
      const nearRt = await clients[5]!.query('/* FRESHNESS: NEAR_RT */ SELECT inet_server_port() AS port')
      const burstDone = Promise.all(burst)
      const stillRunning = await Promise.race([burstDone.then(() => false), Promise.resolve(true)])
      assert.ok(stillRunning, 'the NEAR_RT read had to wait for the EVENTUAL burst')
      assert.equal(f.nodeOf(Number(nearRt.rows[0].port)), 'replica_1')
      const results = await burstDone
      sampling = false
      await sampler
      assert.ok(results.every((r) => f.nodeOf(Number(r.rows[0].port)) === 'replica_1'))
      assert.equal(peak, 2, 'EVENTUAL statements running at once on the replica')
    } finally {
      await Promise.all(clients.map((c) => c.end()))
    }
  })
})
