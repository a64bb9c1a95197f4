// Submittables (pg-cursor, pg-query-stream, Kysely's .stream()) through the library against a real
// primary and two replicas: routed by their SQL, run to the end on one connection, connections returned.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Kysely, PostgresDialect } from 'kysely'
import type pg from 'pg'
import Cursor from 'pg-cursor'
import QueryStream from 'pg-query-stream'
import { createPool, type FreshetPool, freshness } from '../../../src/index.js'
import { type LocalCluster, startCluster } from '../../cluster/index.js'
import { configFor, nodeByPort, poolReady } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'

const EVENTUAL = '/* FRESHNESS: EVENTUAL */'
const ROWS = `SELECT g AS n, inet_server_port() AS port FROM generate_series(1, 250) g`

interface Row {
  n: number
  port: number
}

describe('Submittables through the library', () => {
  let cluster: LocalCluster
  let pool: FreshetPool
  let nodeOf: (port: number) => string

  /** Every connection checked out has come back: nothing active, nobody waiting. */
  const allReturned = () =>
    pool.snapshot().every((n) => n.pool === null || n.pool.active === 0) && pool.waitingCount === 0

  before(async () => {
    cluster = await startCluster({ replicas: 2 })
    nodeOf = nodeByPort(cluster)
    await cluster.query('primary', 'CREATE TABLE events (id int PRIMARY KEY, kind text)')
    await cluster.query(
      'primary',
      "INSERT INTO events SELECT g, 'k' || (g % 3) FROM generate_series(1, 300) g",
    )
    await cluster.waitForCatchUp()
    pool = createPool(configFor(cluster))
    await poolReady(pool)
  })

  after(async () => {
    await pool?.end()
    await cluster?.stop()
  })

  it('the pool is a pg.Pool in its types too (this file compiles without a cast)', () => {
    const asPool: pg.Pool = pool
    assert.equal(asPool, pool)
  })

  it('a pg-cursor on a checked-out client reads in batches from a replica; the client works afterwards', async () => {
    const client = await pool.connect()
    try {
      const cursor = client.query(new Cursor<Row>(`${EVENTUAL} ${ROWS}`))
      const first = await cursor.read(100)
      assert.equal(first.length, 100)
      assert.match(nodeOf(Number(first[0]!.port)), /^replica_/)
      const all = [...first]
      for (let rows = await cursor.read(100); rows.length > 0; rows = await cursor.read(100))
        all.push(...rows)
      assert.deepEqual(
        all.map((r) => r.n),
        Array.from({ length: 250 }, (_, i) => i + 1),
      )
      assert.equal(new Set(all.map((r) => r.port)).size, 1, 'one connection served the whole cursor')
      await cursor.close()
      // the next statement waited for the cursor and is routed on its own: a write goes to the primary
      const res = await client.query(
        'UPDATE events SET kind = kind WHERE id = 1 RETURNING inet_server_port() AS port',
      )
      assert.equal(nodeOf(Number(res.rows[0].port)), 'primary')
    } finally {
      client.release()
    }
    await eventually('the cursor connection went back', allReturned)
  })

  it('statements queued behind an open cursor wait for it, as on pg.Client', async () => {
    const client = await pool.connect()
    try {
      const cursor = client.query(new Cursor<Row>(`${EVENTUAL} ${ROWS}`))
      const order: string[] = []
      const after = client.query('SELECT 1 AS one').then(() => order.push('query'))
      const rows = await cursor.read(10)
      order.push('cursor read')
      await cursor.close()
      await after
      assert.equal(rows.length, 10)
      assert.deepEqual(order, ['cursor read', 'query'])
    } finally {
      client.release()
    }
  })

  it('pool.query(new QueryStream()) streams every row from a replica and releases its client', async () => {
    const stream = freshness('eventual', () => pool.query(new QueryStream(ROWS, [], { batchSize: 40 })))
    const rows: Row[] = []
    for await (const row of stream) rows.push(row as Row)
    assert.equal(rows.length, 250)
    assert.match(nodeOf(Number(rows[0]!.port)), /^replica_/)
    await eventually('the stream client went back to the pool', allReturned)
  })

  it('an unannotated stream goes to the primary (safe default)', async () => {
    const rows: Row[] = []
    for await (const row of pool.query(new QueryStream(ROWS))) rows.push(row as Row)
    assert.equal(nodeOf(Number(rows[0]!.port)), 'primary')
  })

  it('inside a transaction a cursor runs on the transaction connection and sees its uncommitted writes', async () => {
    const client = await pool.connect()
    try {
      await client.query('BEGIN')
      await client.query("UPDATE events SET kind = 'in-tx' WHERE id <= 5")
      const cursor = client.query(
        new Cursor<{ id: number; kind: string }>('SELECT id, kind FROM events WHERE id <= 5 ORDER BY id'),
      )
      const rows = await cursor.read(10)
      await cursor.close()
      assert.deepEqual(
        rows.map((r) => r.kind),
        ['in-tx', 'in-tx', 'in-tx', 'in-tx', 'in-tx'],
      )
      await client.query('ROLLBACK')
      assert.equal(client.pinnedNode, null, 'the transaction ended: no pin left')
    } finally {
      client.release()
    }
  })

  it('a failing cursor rejects its read; a stream emits the error; nothing leaks', async () => {
    const client = await pool.connect()
    try {
      const cursor = client.query(new Cursor('SELECT * FROM no_such_table'))
      await assert.rejects(cursor.read(1), (err: { code?: string }) => err.code === '42P01')
      const ok = await client.query('SELECT 1 AS one')
      assert.equal(ok.rows[0].one, 1)
    } finally {
      client.release()
    }
    const stream = pool.query(new QueryStream('SELECT * FROM no_such_table'))
    await assert.rejects(
      (async () => {
        for await (const _ of stream) {
          // no rows
        }
      })(),
      (err: { code?: string }) => err.code === '42P01',
    )
    await eventually('connections went back after the errors', allReturned)
  })

  it('a Submittable freshet cannot serve (no replica within a fallback-error tier) gets NoEligibleNodeError (ZF001)', async () => {
    const strictPool = createPool(
      configFor(cluster, { routing: { tiers: { fresh_or_fail: { max_lag_ms: 200, fallback: 'error' } } } }),
    )
    await strictPool.ready()
    await cluster.pauseReplay('replica_1')
    await cluster.pauseReplay('replica_2')
    try {
      await cluster.query('primary', 'UPDATE events SET kind = kind WHERE id = 2')
      await eventually('both replicas lag beyond fresh_or_fail', () =>
        // the staleness bound decides eligibility (a paused replica with no write since is still fresh)
        strictPool.snapshot().every((n) => n.role === 'primary' || (n.staleness_bound_ms ?? 1e9) > 200),
      )
      const cursor = strictPool.query(new Cursor('/* FRESHNESS: FRESH_OR_FAIL */ SELECT 1'))
      await assert.rejects(
        cursor.read(1),
        (err: { code?: string }) => err.code === 'FRESHET_NO_ELIGIBLE_NODE',
      )
    } finally {
      await cluster.resumeReplay('replica_1')
      await cluster.resumeReplay('replica_2')
      await strictPool.end()
    }
  })

  it("Kysely's .stream() (PostgresDialect with pg-cursor) routes by the scope's tier", async () => {
    const db = new Kysely<{ events: { id: number; kind: string } }>({
      dialect: new PostgresDialect({ pool, cursor: Cursor }),
    })
    const ports = new Set<number>()
    let count = 0
    await freshness('eventual', async () => {
      const query = db
        .selectFrom('events')
        .select(['id', (eb) => eb.fn<number>('inet_server_port').as('port')])
        .orderBy('id')
      for await (const row of query.stream(50)) {
        ports.add(Number(row.port))
        count++
      }
    })
    assert.equal(count, 300)
    assert.equal(ports.size, 1)
    assert.match(nodeOf([...ports][0]!), /^replica_/)
    await eventually('the stream connection went back', allReturned)
  })
})
