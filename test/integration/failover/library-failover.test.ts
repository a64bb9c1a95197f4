// Nodes dying and failing over under the library: a killed replica is routed around and a promoted
// replica becomes the primary without restarting freshet.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createPool, type FreshetPool, freshness } from '../../../src/index.js'
import { type LocalCluster, startCluster } from '../../cluster/index.js'
import { configFor, nodeByPort } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'

const WHERE = '/* FRESHNESS: NEAR_RT */ SELECT inet_server_port() AS port'

describe('library under failures', () => {
  let cluster: LocalCluster
  let pool: FreshetPool
  let nodeOf: (port: number) => string

  before(async () => {
    cluster = await startCluster({ replicas: 2 })
    nodeOf = nodeByPort(cluster)
    await cluster.query('primary', 'CREATE TABLE events (id serial PRIMARY KEY, note text)')
    await cluster.waitForCatchUp()
    pool = createPool(configFor(cluster, { pools: { replica_statement_timeout_ms: 5000, slow_start_ms: 0 } }))
    await pool.ready()
    await eventually('replicas healthy', () => pool.snapshot().every((n) => n.healthy))
  })

  after(async () => {
    await pool?.end()
    await cluster?.stop()
  })

  it('routes around a killed replica without failing reads, and uses it again after restart', async () => {
    await cluster.kill('replica_1')
    // Reads keep succeeding while freshet notices: a failed replica read is retried on the primary.
    let failures = 0
    for (let i = 0; i < 30; i++) {
      try {
        const node = nodeOf(Number((await pool.query(WHERE)).rows[0].port))
        assert.notEqual(node, 'replica_1')
      } catch (err) {
        failures++
        console.error('read failed:', err)
      }
    }
    assert.equal(failures, 0)
    await eventually(
      'replica_1 unhealthy',
      () => pool.snapshot().find((n) => n.name === 'replica_1')?.healthy === false,
    )
    for (let i = 0; i < 6; i++)
      assert.equal(nodeOf(Number((await pool.query(WHERE)).rows[0].port)), 'replica_2')

    await cluster.start('replica_1')
    await eventually(
      'replica_1 serves NEAR_RT reads again',
      async () => nodeOf(Number((await pool.query(WHERE)).rows[0].port)) === 'replica_1',
      20_000,
    )
  })

  it('recognises a promoted replica as the primary and stops writing to the old one', async () => {
    await pool.query("INSERT INTO events (note) VALUES ('before failover')")
    await cluster.waitForCatchUp()
    await cluster.stop('primary', 'immediate')
    await cluster.promote('replica_2')
    await cluster.repoint('replica_1', 'replica_2')

    await eventually(
      'freshet sees replica_2 as primary',
      () => pool.engine.tracker.primary === 'replica_2',
      15_000,
    )
    const roles = Object.fromEntries(pool.snapshot().map((n) => [n.name, n.role]))
    assert.equal(roles.replica_2, 'primary')

    // Writes now land on the new primary (retry while pools drop connections to the dead node).
    await eventually(
      'a write succeeds on the new primary',
      async () => {
        try {
          const res = await pool.query(
            "INSERT INTO events (note) VALUES ('after failover') RETURNING inet_server_port() AS port",
          )
          return nodeOf(Number(res.rows[0].port)) === 'replica_2'
        } catch {
          return false
        }
      },
      15_000,
    )
    const rows = (await pool.query('SELECT note FROM events ORDER BY id')).rows.map((r) => r.note)
    assert.deepEqual(rows, ['before failover', 'after failover'])
    // the new primary's connections have the primary's settings, not a replica's statement_timeout
    const timeout = await pool.query(
      "SELECT current_setting('statement_timeout') AS t, inet_server_port() AS port",
    )
    assert.equal(nodeOf(Number(timeout.rows[0].port)), 'replica_2')
    assert.equal(timeout.rows[0].t, '0')
    // replica_1 follows the new primary and serves fresh reads again.
    await eventually(
      'replica_1 serves reads after repoint',
      async () =>
        (await freshness('near_rt', () => pool.query('SELECT inet_server_port() AS port'))).rows.some(
          (r) => nodeOf(Number(r.port)) === 'replica_1',
        ),
      20_000,
    )
  })
})
