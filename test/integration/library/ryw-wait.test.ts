// consistency.max_wait_for_sync_ms against a real replica: a read carrying a read-your-writes token
// waits for a replica that replays the write within the window (and is served there), and gives up on
// one that does not within the window (and is served by the primary), never by a stale replica.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createPool, type FreshetPool, readYourWrites, withScope } from '../../../src/index.js'
import { type LocalCluster, startCluster } from '../../cluster/index.js'
import { configFor, nodeByPort, poolReady } from '../../support/cluster-config.js'

const READ =
  '/* FRESHNESS: EVENTUAL */ SELECT inet_server_port() AS port, (SELECT count(*)::int FROM notes) AS n'

describe('read-your-writes: waiting for a replica to replay the token', () => {
  let cluster: LocalCluster
  let pool: FreshetPool
  let nodeOf: (port: number) => string

  before(async () => {
    cluster = await startCluster({ replicas: 1 })
    nodeOf = nodeByPort(cluster)
    await cluster.query('primary', 'CREATE TABLE notes (id serial PRIMARY KEY)')
    await cluster.waitForCatchUp()
    pool = createPool(configFor(cluster, { consistency: { causal: true, max_wait_for_sync_ms: 1500 } }))
    await poolReady(pool)
  })

  after(async () => {
    await pool?.end()
    await cluster?.stop()
  })

  /** Writes a note and returns the token, the row count it made, and when the write returned. */
  async function write(): Promise<{ token: string; n: number; at: number }> {
    return withScope(async () => {
      const res = await pool.query(
        'INSERT INTO notes DEFAULT VALUES RETURNING (SELECT count(*)::int FROM notes) AS n',
      )
      return { token: pool.lastWriteToken()!, n: res.rows[0].n as number, at: performance.now() }
    })
  }

  it('waits for a replica that replays the write within the window, and reads it there', async () => {
    // the replica applies each commit 400 ms late: inside the 1500 ms window
    await cluster.setApplyDelay('replica_1', 400)
    try {
      const { token, n, at } = await write()
      const res = await readYourWrites(token, () => pool.query(READ))
      const waited = performance.now() - at
      assert.equal(nodeOf(Number(res.rows[0].port)), 'replica_1', 'served by the replica once it caught up')
      assert.ok(res.rows[0].n >= n, 'the read saw its own write')
      assert.ok(waited >= 300, `waited ${Math.round(waited)} ms for replay, not served early`)
    } finally {
      await cluster.setApplyDelay('replica_1', 0)
    }
  })

  it('gives up after max_wait_for_sync_ms on a replica that stays behind, and reads from the primary', async () => {
    await cluster.pauseReplay('replica_1')
    try {
      const { token, n, at } = await write()
      const res = await readYourWrites(token, () => pool.query(READ))
      const waited = performance.now() - at
      assert.equal(nodeOf(Number(res.rows[0].port)), 'primary')
      assert.ok(res.rows[0].n >= n, 'the read saw its own write')
      assert.ok(waited >= 1400, `gave up after ${Math.round(waited)} ms, before the window ended`)
      assert.ok(waited < 4000, `waited ${Math.round(waited)} ms: the wait is not bounded by the window`)
    } finally {
      await cluster.resumeReplay('replica_1')
    }
  })
})
