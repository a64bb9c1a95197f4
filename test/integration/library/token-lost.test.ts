// The library reads a write's read-your-writes token on the write's own connection right after it. If
// that connection fails then, the write has committed: the caller must not be told it failed (a retry
// would write twice), and the scope's reads must not go to a replica that may miss the write. A relay
// in front of the primary cuts the connection at the token read.

import assert from 'node:assert/strict'
import { connect, createServer, type Server } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { createPool, type FreshetPool, withScope } from '../../../src/index.js'
import { type LocalCluster, startCluster } from '../../cluster/index.js'
import { configFor, nodeByPort, poolReady } from '../../support/cluster-config.js'

const TOKEN_READ = 'SELECT pg_current_wal_lsn()::text AS lsn'
const READ =
  '/* FRESHNESS: EVENTUAL */ SELECT inet_server_port() AS port, (SELECT count(*)::int FROM lost_notes) AS n'

/** A relay to the primary that, once armed, cuts the next connection that sends the token read. */
function cuttingRelay(target: number): { server: Server; arm(): Promise<void> } {
  let armed: (() => void) | null = null
  const server = createServer((client) => {
    const upstream = connect({ port: target, host: '127.0.0.1' })
    client.on('data', (chunk: Buffer) => {
      if (armed !== null && chunk.toString('utf8').includes(TOKEN_READ)) {
        const done = armed
        armed = null
        client.destroy()
        upstream.destroy()
        done()
        return
      }
      upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => client.write(chunk))
    const end = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', end).on('close', end)
    upstream.on('error', end).on('close', end)
  })
  return {
    server,
    arm: () =>
      new Promise((resolve) => {
        armed = resolve
      }),
  }
}

describe('library: a write whose token cannot be read', { timeout: 60_000 }, () => {
  let cluster: LocalCluster
  let pool: FreshetPool
  let relay: ReturnType<typeof cuttingRelay>
  let nodeOf: (port: number) => string

  before(async () => {
    cluster = await startCluster({ replicas: 1 })
    nodeOf = nodeByPort(cluster)
    await cluster.query('primary', 'CREATE TABLE lost_notes (id int)')
    await cluster.waitForCatchUp()
    relay = cuttingRelay(cluster.primary.port)
    await new Promise<void>((r) => relay.server.listen(0, '127.0.0.1', r))
    const url = new URL(cluster.primary.url())
    url.port = String((relay.server.address() as { port: number }).port)
    pool = createPool(
      configFor(cluster, {
        cluster: {
          primary: { name: cluster.primary.name, url: url.toString() },
          replicas: cluster.replicas.map((r) => ({ name: r.name, url: r.url() })),
        },
        consistency: { causal: true, max_wait_for_sync_ms: 200 },
      }),
    )
    pool.on('error', () => {}) // the cut connection
    await poolReady(pool)
  })

  after(async () => {
    await pool?.end()
    relay?.server.close()
    await cluster?.stop()
  })

  it('returns the write, and reads from the primary until a later token is known', async () => {
    await withScope(async () => {
      await pool.query('INSERT INTO lost_notes VALUES (0)')
      const known = pool.lastWriteToken()
      assert.ok(known)
      await cluster.waitForCatchUp()
      await cluster.pauseReplay('replica_1') // the replica would miss the next write
      try {
        const cut = relay.arm()
        const res = await pool.query('INSERT INTO lost_notes VALUES (1)')
        await cut
        assert.equal(res.rowCount, 1, 'the committed write was reported as failed')
        assert.equal(pool.lastWriteToken(), known, 'no token made up for the write')
        const read = await pool.query(READ)
        assert.equal(read.rows[0].n, 2, 'a stale read: the replica served it')
        assert.equal(nodeOf(Number(read.rows[0].port)), 'primary')
      } finally {
        await cluster.resumeReplay('replica_1')
      }
      // a later write's token covers the lost one: replicas serve the scope again
      await pool.query('INSERT INTO lost_notes VALUES (2)')
      await cluster.waitForCatchUp()
      const read = await pool.query(READ)
      assert.equal(read.rows[0].n, 3)
      assert.equal(nodeOf(Number(read.rows[0].port)), 'replica_1')
    })
  })
})
