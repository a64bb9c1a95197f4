// Session state through the library's checked-out client against a real cluster: each kind of state keeps
// the client on its connection until that kind is released, whatever else is released meanwhile; state
// made in a transaction pins at COMMIT, not after ROLLBACK.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type pg from 'pg'
import { createPool, type FreshetPool } from '../../../src/index.js'
import { type LocalCluster, startCluster } from '../../cluster/index.js'
import { configFor, poolReady } from '../../support/cluster-config.js'

describe('library client: what pins, and until when', () => {
  let cluster: LocalCluster
  let pool: FreshetPool

  before(async () => {
    cluster = await startCluster({ replicas: 1 })
    pool = createPool(configFor(cluster))
    await poolReady(pool)
  })

  after(async () => {
    await pool?.end()
    await cluster?.stop()
  })

  /** Runs `fn` on a checked-out client and releases it. */
  async function withClient(fn: (c: pg.PoolClient) => Promise<void>): Promise<void> {
    const client = await pool.connect()
    try {
      await fn(client)
    } finally {
      client.release()
    }
  }

  const pid = async (c: pg.PoolClient): Promise<number> =>
    (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid

  it('a temp table survives RESET ALL (which only releases SET)', async () => {
    await withClient(async (c) => {
      await c.query('CREATE TEMP TABLE scratch (id int)')
      const first = await pid(c)
      await c.query("SET search_path = 'pg_temp, public'")
      await c.query('RESET ALL')
      assert.equal((c as unknown as { pinnedNode: string | null }).pinnedNode, 'primary')
      assert.equal(await pid(c), first)
      await c.query('INSERT INTO pg_temp.scratch VALUES (1)')
    })
  })

  it('LISTEN survives DISCARD TEMP, and notifications still arrive', async () => {
    await withClient(async (c) => {
      await c.query('LISTEN pins_channel')
      await c.query('CREATE TEMP TABLE scratch2 (id int)')
      await c.query('DISCARD TEMP')
      const got = new Promise<string>((resolve) => c.once('notification', (m) => resolve(m.payload ?? '')))
      await cluster.query('primary', "NOTIFY pins_channel, 'still here'")
      assert.equal(await got, 'still here')
    })
  })

  it('a session advisory lock survives UNLISTEN *', async () => {
    await withClient(async (c) => {
      await c.query('SELECT pg_advisory_lock(4242)')
      const first = await pid(c)
      await c.query('LISTEN other_channel')
      await c.query('UNLISTEN *')
      assert.equal(await pid(c), first)
      const held = await cluster.query(
        'primary',
        "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND granted",
      )
      assert.equal(held.rows[0]?.n, 1)
      await c.query('SELECT pg_advisory_unlock(4242)')
    })
  })

  it('a SET inside a committed transaction pins; inside a rolled-back one it does not', async () => {
    await withClient(async (c) => {
      await c.query('BEGIN')
      await c.query("SET application_name = 'kept'")
      await c.query('COMMIT')
      assert.equal((c as unknown as { pinnedNode: string | null }).pinnedNode, 'primary', 'the SET holds it')
      const first = await pid(c)
      for (let i = 0; i < 3; i++) {
        const res = await c.query(
          "SELECT current_setting('application_name') AS app, pg_backend_pid() AS pid",
        )
        assert.deepEqual(res.rows[0], { app: 'kept', pid: first })
      }
    })
    await withClient(async (c) => {
      await c.query('BEGIN')
      await c.query("SET application_name = 'gone'")
      await c.query('ROLLBACK')
      assert.equal((c as unknown as { pinnedNode: string | null }).pinnedNode, null, 'nothing holds it')
    })
  })

  it('lets go once the last kind of state is released', async () => {
    await withClient(async (c) => {
      const pinned = () => (c as unknown as { pinnedNode: string | null }).pinnedNode
      await c.query('CREATE TEMP TABLE brief (id int)')
      await c.query('LISTEN brief_channel')
      await c.query('DISCARD TEMP')
      assert.equal(pinned(), 'primary', 'LISTEN still holds it')
      await c.query('UNLISTEN *')
      assert.equal(pinned(), null, 'nothing holds it any more')
    })
  })

  it('SET LOCAL freshet.freshness lasts to the end of the transaction only', async () => {
    await withClient(async (c) => {
      await c.query('BEGIN READ ONLY')
      await c.query("SET LOCAL freshet.freshness = 'eventual'")
      assert.equal((c as unknown as { session: { sessionTier?: string } }).session.sessionTier, 'eventual')
      await c.query('COMMIT')
      assert.equal((c as unknown as { session: { sessionTier?: string } }).session.sessionTier, undefined)
    })
  })
})
