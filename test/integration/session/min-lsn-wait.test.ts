// A read-your-writes token given only as a MIN_LSN hint (no write of this session) is waited for the
// same way in both faces: up to consistency.max_wait_for_sync_ms for a replica to replay it, then the
// primary (CONTRACT section 3, rule 6). Run through a library pool and a client of the proxy, against
// the real cluster; the replica's replay is paused to hold it behind the token.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { createPool } from '../../../src/library/create-pool.js'
import type { FreshetPool } from '../../../src/library/freshet-pool.js'
import { configFor, poolReady } from '../../support/cluster-config.js'
import { type ProxyFixture, startProxyFixture } from '../../support/proxy-fixture.js'

const MAX_WAIT_MS = 1000
const CONSISTENCY = { consistency: { max_wait_for_sync_ms: MAX_WAIT_MS } }

describe('a MIN_LSN hint is waited for in both faces', { timeout: 120_000 }, () => {
  let f: ProxyFixture
  let pool: FreshetPool
  let proxyClient: pg.Client

  before(async () => {
    f = await startProxyFixture(CONSISTENCY, 1, async (cluster) => {
      await cluster.query('primary', 'CREATE TABLE min_lsn_wait (v int)')
    })
    pool = createPool(configFor(f.cluster, CONSISTENCY))
    await poolReady(pool)
    proxyClient = new pg.Client({ connectionString: f.url() })
    await proxyClient.connect()
  })
  after(async () => {
    await f?.cluster.resumeReplay('replica_1').catch(() => {})
    await proxyClient?.end().catch(() => {})
    await pool?.end()
    await f?.stop()
  })

  /** A write on the primary while replica_1 does not replay: its LSN, which replica_1 has not reached. */
  async function tokenAheadOfReplica(): Promise<string> {
    await f.cluster.pauseReplay('replica_1')
    await f.cluster.query('primary', 'INSERT INTO min_lsn_wait VALUES (1)')
    const { rows } = await f.cluster.query('primary', 'SELECT pg_current_wal_lsn()::text AS lsn')
    return (rows[0] as { lsn: string }).lsn
  }

  const hinted = (lsn: string) =>
    `/* MIN_LSN: ${lsn} */ /* FRESHNESS: EVENTUAL */ SELECT inet_server_port() AS port`

  const faces: readonly [string, (sql: string) => Promise<pg.QueryResult>][] = [
    ['library face', (sql) => pool.query(sql)],
    ['proxy face', (sql) => proxyClient.query(sql)],
  ]

  for (const [face, query] of faces) {
    it(`${face}: waits for the replica to replay the hinted LSN, then reads there`, async () => {
      const lsn = await tokenAheadOfReplica()
      // sent while replica_1 is behind: without waiting it would be decided for the primary at once
      const read = query(hinted(lsn))
      await f.cluster.resumeReplay('replica_1')
      const { rows } = await read
      assert.equal(f.nodeOf(Number(rows[0].port)), 'replica_1')
    })

    it(`${face}: waits up to max_wait_for_sync_ms, then reads on the primary`, async () => {
      const lsn = await tokenAheadOfReplica()
      const started = performance.now()
      const { rows } = await query(hinted(lsn))
      const waited = performance.now() - started
      await f.cluster.resumeReplay('replica_1')
      assert.equal(f.nodeOf(Number(rows[0].port)), 'primary')
      // it waited for the bound (less a little for the clock's granularity), not decided at once
      assert.ok(waited >= MAX_WAIT_MS - 50, `waited ${waited.toFixed(0)} ms, bound ${MAX_WAIT_MS} ms`)
    })
  }
})
