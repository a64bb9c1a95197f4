// The proxy face on a sharded config, against real shards (a primary and a streaming replica each) and
// the aggregate node: every key source picks the shard (which node served is read back with
// inet_server_port()), $n is resolved at Bind, cross-shard reads run on the aggregate node, and the
// refusals (a write spanning shards, another shard inside a transaction) leave nothing applied anywhere.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { type RunningShardedProxy, startShardedProxy } from '../../../src/cli/proxy-sharded.js'
import { validateConfig } from '../../../src/core/config/parse-config.js'
import { hashBucket } from '../../../src/core/shard/shard-key.js'
import { type ShardedCluster, startShardedCluster } from '../../cluster/index.js'
import { shardedConfigFor } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'

const CUSTOMERS = 60

describe('proxy on shards', () => {
  let sc: ShardedCluster
  let running: RunningShardedProxy
  let url: string
  const byPort = new Map<number, string>()
  /** The n-th customer id whose rows live on `shard`. */
  const customerOn = (shard: string, skip = 0): number => {
    const [lo, hi] = sc.shard(shard).buckets
    for (let id = 1, seen = 0; ; id++) {
      const b = hashBucket(BigInt(id), 'integer', sc.bucketCount)
      if (b >= lo && b <= hi && seen++ === skip) return id
    }
  }
  const client = async () => {
    const c = new pg.Client({ connectionString: url })
    await c.connect()
    return c
  }
  /** Which node (and so which shard) served a statement that returns inet_server_port() as `port`. */
  const served = (rows: { port: number }[]) => byPort.get(Number(rows[0]!.port)) ?? 'unknown'
  const rowsOn = async (shard: string, where: string) => {
    const r = await sc
      .shard(shard)
      .cluster.query('primary', `SELECT count(*)::int AS n FROM orders WHERE ${where}`)
    return (r.rows[0] as { n: number }).n
  }

  before(async () => {
    sc = await startShardedCluster({ shards: 2, replicasPerShard: 1 })
    await sc.createShardedTable(
      'orders',
      'id bigint NOT NULL, customer_id bigint NOT NULL, total numeric NOT NULL',
      'customer_id',
      {
        shardConstraints: 'PRIMARY KEY (id)',
      },
    )
    for (const s of sc.shards) {
      for (const [i, n] of s.cluster.nodes.entries()) byPort.set(n.port, s.nodeNames[i]!)
      const values: string[] = []
      for (let c = 1; c <= CUSTOMERS; c++) {
        const b = hashBucket(BigInt(c), 'integer', sc.bucketCount)
        if (b >= s.buckets[0] && b <= s.buckets[1]) values.push(`(${c * 100}, ${c}, ${c})`)
      }
      await s.cluster.query('primary', `INSERT INTO orders VALUES ${values.join(', ')}`)
    }
    byPort.set(sc.aggregateNode.port, 'federated')
    await sc.waitForCatchUp()
    const config = validateConfig(
      shardedConfigFor(sc, {
        routing: { unannotated: 'near_rt' },
        proxy: {
          listen: '127.0.0.1:0',
          auth: { type: 'scram-sha-256', users: { app: { password: 'app' } } },
          shutdown_timeout_ms: 2000,
        },
      }),
    )
    running = await startShardedProxy(config, { adminListen: false })
    url = `postgres://app:app@${running.address}/freshet`
    await eventually('every replica proven fresh', () =>
      running.routing
        .snapshot()
        .every((n) => n.role !== 'replica' || (n.healthy && (n.staleness_bound_ms ?? 1e9) < 300)),
    )
  })
  after(async () => {
    await running?.stop()
    await sc?.stop()
  })

  it('a literal key in WHERE, $n bound at Bind, an IN list within one shard: that shard serves it', async () => {
    const c = await client()
    try {
      for (const shard of ['shard_0', 'shard_1']) {
        const id = customerOn(shard)
        const nodes = sc.shard(shard).nodeNames
        const literal = await c.query(
          `SELECT inet_server_port() AS port, total FROM orders o WHERE o.customer_id = ${id}`,
        )
        assert.ok(nodes.includes(served(literal.rows)), `${served(literal.rows)} is not on ${shard}`)
        assert.equal(Number(literal.rows[0].total), id, 'the row is found on its shard')
        const bound = await c.query(
          'SELECT inet_server_port() AS port, total FROM orders WHERE customer_id = $1',
          [id],
        )
        assert.ok(nodes.includes(served(bound.rows)))
        assert.equal(Number(bound.rows[0].total), id)
        const inList = await c.query(
          `SELECT inet_server_port() AS port, count(*)::int AS n FROM orders WHERE customer_id IN (${id}, ${customerOn(shard, 1)})`,
        )
        assert.ok(nodes.includes(served(inList.rows)))
        assert.equal(inList.rows[0].n, 2)
      }
    } finally {
      await c.end()
    }
  })

  it('INSERT, UPDATE and DELETE by key run on their shard primary', async () => {
    const c = await client()
    try {
      const b = customerOn('shard_1', 2)
      const ins = await c.query(
        'INSERT INTO orders (id, customer_id, total) VALUES ($1, $2, 5) RETURNING inet_server_port() AS port',
        [9001, b],
      )
      assert.equal(served(ins.rows), 's1_primary')
      assert.equal(await rowsOn('shard_1', 'id = 9001'), 1)
      assert.equal(await rowsOn('shard_0', 'id = 9001'), 0)
      const upd = await c.query(
        `UPDATE orders SET total = 6 WHERE customer_id = ${b} AND id = 9001 RETURNING inet_server_port() AS port`,
      )
      assert.equal(served(upd.rows), 's1_primary')
      await c.query('DELETE FROM orders WHERE customer_id = $1 AND id = $2', [b, 9001])
      assert.equal(await rowsOn('shard_1', 'id = 9001'), 0)
    } finally {
      await c.end()
    }
  })

  it('SHARD_KEY and ROUTE_TO hints, and SET freshet.shard_key / RESET for statements without a key', async () => {
    const c = await client()
    try {
      const b = customerOn('shard_1')
      const hinted = await c.query(`/* SHARD_KEY: ${b} */ SELECT inet_server_port() AS port`)
      assert.ok(sc.shard('shard_1').nodeNames.includes(served(hinted.rows)))
      const routed = await c.query('/* ROUTE_TO: s1_primary */ SELECT inet_server_port() AS port')
      assert.equal(served(routed.rows), 's1_primary')
      await c.query(`SET freshet.shard_key = '${b}'`)
      const session = await c.query('SELECT inet_server_port() AS port')
      assert.ok(sc.shard('shard_1').nodeNames.includes(served(session.rows)), served(session.rows))
      await c.query('RESET freshet.shard_key')
      const dflt = await c.query('SELECT inet_server_port() AS port')
      assert.ok(sc.shard('shard_0').nodeNames.includes(served(dflt.rows)), 'the default shard again')
    } finally {
      await c.end()
    }
  })

  it('a read naming no single shard runs on the aggregate node and equals the sum over the shards', async () => {
    const c = await client()
    try {
      const r = await c.query('SELECT count(*)::int AS n, sum(total)::int AS s FROM orders')
      const direct = await Promise.all(
        sc.shards.map((s) =>
          s.cluster.query('primary', 'SELECT count(*)::int AS n, sum(total)::int AS s FROM orders'),
        ),
      )
      const want = direct.reduce(
        (a, d) => ({ n: a.n + (d.rows[0] as { n: number }).n, s: a.s + (d.rows[0] as { s: number }).s }),
        { n: 0, s: 0 },
      )
      assert.deepEqual(r.rows[0], want)
      assert.equal(want.n, CUSTOMERS)
      const where = await c.query('SELECT inet_server_port() AS port FROM orders WHERE total > 0 LIMIT 1')
      assert.equal(served(where.rows), 'federated')
    } finally {
      await c.end()
    }
  })

  it('a write spanning shards fails with ZF003 before anything is sent; the client goes on', async () => {
    const c = await client()
    try {
      const a = customerOn('shard_0')
      const b = customerOn('shard_1')
      await assert.rejects(
        c.query('INSERT INTO orders (id, customer_id, total) VALUES ($1, $2, 1), ($3, $4, 1)', [
          9101,
          a,
          9102,
          b,
        ]),
        (err: { code?: string; message: string }) =>
          err.code === 'ZF003' && /spanning shards/.test(err.message),
      )
      await assert.rejects(c.query('DELETE FROM orders'), (err: { code?: string }) => err.code === 'ZF003')
      for (const s of ['shard_0', 'shard_1']) assert.equal(await rowsOn(s, 'id IN (9101, 9102)'), 0)
      assert.equal(
        (await rowsOn('shard_0', 'true')) + (await rowsOn('shard_1', 'true')),
        CUSTOMERS,
        'DELETE sent nowhere',
      )
      const ok = await c.query('SELECT 1 AS one')
      assert.equal(ok.rows[0].one, 1)
    } finally {
      await c.end()
    }
  })

  it('read-your-writes tokens are per shard: a write on shard_1 makes only shard_1 reads wait', async () => {
    // shard_1's WAL far ahead of shard_0's: one token for both shards would hold shard_0's replica back
    const s1 = sc.shard('shard_1').cluster
    for (let i = 0; i < 3; i++) {
      await s1.query(
        'primary',
        'CREATE TABLE IF NOT EXISTS wal_filler (x int); INSERT INTO wal_filler VALUES (1)',
      )
      await s1.query('primary', 'SELECT pg_switch_wal()')
    }
    await sc.waitForCatchUp()
    const a = customerOn('shard_0', 4)
    const b = customerOn('shard_1', 4)
    const c = await client()
    try {
      await eventually('replicas proven fresh again', () =>
        running.routing.snapshot().every((n) => n.role !== 'replica' || (n.staleness_bound_ms ?? 1e9) < 300),
      )
      await s1.pauseReplay('replica_1')
      await c.query('UPDATE orders SET total = total + 1 WHERE customer_id = $1', [b])
      // shard_1's replica has not replayed the write: the read waits, then the primary serves it, fresh
      const r1 = await c.query(
        'SELECT inet_server_port() AS port, total FROM orders WHERE customer_id = $1',
        [b],
      )
      assert.equal(served(r1.rows), 's1_primary')
      assert.equal(Number(r1.rows[0].total), b + 1)
      // shard_0 has no token of this session: its replica serves at once
      const started = performance.now()
      const r0 = await c.query('SELECT inet_server_port() AS port FROM orders WHERE customer_id = $1', [a])
      assert.equal(served(r0.rows), 's0_replica_1')
      assert.ok(
        performance.now() - started < running.routing.config.consistency.max_wait_for_sync_ms,
        'no wait',
      )
    } finally {
      await s1.resumeReplay('replica_1')
      await c.end()
    }
  })

  it('a transaction is pinned to its first shard; a statement for another fails ZF003 and nothing commits', async () => {
    const c = await client()
    try {
      const a = customerOn('shard_0', 3)
      const b = customerOn('shard_1', 3)
      await c.query('BEGIN')
      const first = await c.query(
        'INSERT INTO orders (id, customer_id, total) VALUES ($1, $2, 1) RETURNING inet_server_port() AS port',
        [9201, a],
      )
      assert.equal(served(first.rows), 's0_primary')
      await assert.rejects(
        c.query('INSERT INTO orders (id, customer_id, total) VALUES ($1, $2, 1)', [9202, b]),
        (err: { code?: string; message: string }) =>
          err.code === 'ZF003' && /pinned to shard_0/.test(err.message),
      )
      // the transaction is aborted on shard_0: the server itself answers what follows with 25P02
      const serverSaid = await c.query('SELECT 1').then(
        () => assert.fail('a statement ran in the aborted transaction'),
        (err: { code?: string; message: string; severity?: string }) => err,
      )
      assert.equal(serverSaid.code, '25P02')
      assert.equal(
        serverSaid.message,
        'current transaction is aborted, commands ignored until end of transaction block',
      )
      // and COMMIT with ROLLBACK
      const commit = await c.query('COMMIT')
      assert.equal(commit.command, 'ROLLBACK')
      for (const s of ['shard_0', 'shard_1']) assert.equal(await rowsOn(s, 'id IN (9201, 9202)'), 0)

      // a refusal raised on the server keeps its SQLSTATE and message whatever the message holds
      await c.query('BEGIN')
      await c.query('SELECT 1 FROM orders WHERE customer_id = $1', [a])
      const hostile = 'x$freshet$' // would end a $freshet$ quote early
      await assert.rejects(
        c.query(`/* SHARD_KEY: ${hostile} */ SELECT 1`),
        (err: { code?: string; message: string }) => err.code === 'ZF004' && err.message.includes(hostile),
      )
      assert.equal((await c.query('COMMIT')).command, 'ROLLBACK')

      // BEGIN is held until the first keyed statement: a shard_1 transaction runs on shard_1's primary
      await c.query('BEGIN')
      const r = await c.query('SELECT inet_server_port() AS port FROM orders WHERE customer_id = $1', [b])
      assert.equal(served(r.rows), 's1_primary')
      await c.query('UPDATE orders SET total = total + 1 WHERE customer_id = $1', [b])
      await c.query('COMMIT')
      assert.equal(await rowsOn('shard_1', `customer_id = ${b} AND total = ${b + 1}`), 1)
      // a held BEGIN with nothing in it: answered by freshet, both ways
      await c.query('BEGIN')
      assert.equal((await c.query('ROLLBACK')).command, 'ROLLBACK')
      await c.query('BEGIN')
      assert.equal((await c.query('COMMIT')).command, 'COMMIT')
      // the first statement refused with BEGIN still held: aborted until the end, then COMMIT rolls back
      await c.query('BEGIN')
      await assert.rejects(c.query('DELETE FROM orders'), (err: { code?: string }) => err.code === 'ZF003')
      // nothing was sent, so freshet answers: the same error the server gave above
      await assert.rejects(
        c.query('SELECT 1'),
        (err: { code?: string; message: string; severity?: string }) => {
          assert.deepEqual(
            { code: err.code, message: err.message, severity: err.severity },
            { code: serverSaid.code, message: serverSaid.message, severity: serverSaid.severity },
          )
          return true
        },
      )
      assert.equal((await c.query('COMMIT')).command, 'ROLLBACK')
      assert.equal((await c.query('SELECT 2 AS two')).rows[0].two, 2)
    } finally {
      await c.end()
    }
  })
})
