// A node that keeps its name but moves to another server (a reload or a discovery answer with a new URL):
// lag is measured on the new server, and new statements reach it, through the library and the proxy.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { validateConfig } from '../../../src/core/config/parse-config.js'
import { createPool, type FreshetPool } from '../../../src/index.js'
import { configFor, poolReady } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'
import { type ProxyFixture, startProxyFixture } from '../../support/proxy-fixture.js'

const WHERE = '/*+ ROUTE_TO: replica_1 */ SELECT inet_server_port() AS port'

describe('a node whose URL changes', () => {
  let f: ProxyFixture
  let pool: FreshetPool

  before(async () => {
    f = await startProxyFixture({}, 2, async (cluster) => {
      await cluster.query('primary', 'CREATE TABLE marks (id serial PRIMARY KEY)')
    })
    pool = createPool(configFor(f.cluster))
    await poolReady(pool)
  })

  after(async () => {
    await pool?.end()
    await f?.stop()
  })

  it('is probed, pooled and served at its new address', async () => {
    const { cluster } = f
    const replica2 = cluster.replicas[1]!
    const proxyClient = new pg.Client({ connectionString: f.url() })
    await proxyClient.connect()
    try {
      // warm both faces' pools for replica_1 at its first address
      assert.equal(f.nodeOf(Number((await pool.query(WHERE)).rows[0].port)), 'replica_1')
      assert.equal(f.nodeOf(Number((await proxyClient.query(WHERE)).rows[0].port)), 'replica_1')

      // replica_1 now names replica_2's server, whose replay is paused: its lag must show on replica_1
      await cluster.pauseReplay('replica_2')
      const moved = (engineConfig: { version: number }) => ({
        ...configFor(cluster),
        version: engineConfig.version + 1,
        cluster: {
          primary: { name: cluster.primary.name, url: cluster.primary.url() },
          replicas: [
            { name: 'replica_1', url: replica2.url() },
            { name: 'replica_2', url: replica2.url() },
          ],
        },
      })
      pool.reload(moved(pool.config))
      f.engine.reload(validateConfig(moved(f.engine.config)))
      await cluster.query('primary', 'INSERT INTO marks DEFAULT VALUES')
      for (const [face, snapshot] of [
        ['library', () => pool.snapshot()],
        ['proxy', () => f.engine.snapshot()],
      ] as const) {
        await eventually(`${face}: replica_1 reports the paused server's growing lag`, () => {
          const r1 = snapshot().find((n) => n.name === 'replica_1')
          return (r1?.lag_ms ?? 0) > 500 && r1?.replay_paused === true
        })
      }
      // statements sent to replica_1 reach the new server, on both faces
      assert.equal(f.nodeOf(Number((await pool.query(WHERE)).rows[0].port)), 'replica_2')
      assert.equal(f.nodeOf(Number((await proxyClient.query(WHERE)).rows[0].port)), 'replica_2')
      // and nothing of either face (pools, monitors) stays connected to the server no node names now
      await eventually('no connection left on the old replica_1 server', async () => {
        const res = await cluster.query(
          'replica_1',
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
        )
        return res.rows[0]?.n === 0
      })
    } finally {
      await proxyClient.end()
      await cluster.resumeReplay('replica_2')
    }
  })
})
