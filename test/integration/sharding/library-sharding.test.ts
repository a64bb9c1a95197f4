// createPool with `shards` on real servers (two shards with a streaming replica each, the aggregate node
// over postgres_fdw): every key source routes to the shard that holds the rows, read back with
// inet_server_port(); cross-shard reads on the aggregate node equal an unsharded copy; read-your-writes
// tokens, lag and a stopped replica stay inside their shard; the refusals send nothing.

import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { isFreshetError } from '../../../src/core/errors.js'
import { hashBucket } from '../../../src/core/shard/shard-key.js'
import { parseShardTokens } from '../../../src/core/shard/shard-tokens.js'
import { freshness, readYourWrites, withScope, withShardKey } from '../../../src/library/context.js'
import { createPool } from '../../../src/library/create-pool.js'
import { withRequestContext } from '../../../src/library/http/with-request-context.js'
import { injectContext } from '../../../src/library/messaging/inject-context.js'
import { withMessageContext } from '../../../src/library/messaging/with-message-context.js'
import type { ShardedPool } from '../../../src/library/sharded-pool.js'
import { type ShardedCluster, startShardedCluster } from '../../cluster/index.js'
import { shardedConfigFor } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'

const CUSTOMERS = 200

describe('createPool with shards', () => {
  let sc: ShardedCluster
  let pool: ShardedPool
  const nodeOfPort = new Map<number, string>()
  /** The shard whose buckets hold `customer`. */
  const shardOf = (customer: number) =>
    sc.shards.find((s) => {
      const b = hashBucket(BigInt(customer), 'integer', sc.bucketCount)
      return b >= s.buckets[0] && b <= s.buckets[1]
    })!.name
  const customerOn = (shard: string, skip = 0) => {
    for (let id = 1, seen = 0; ; id++) if (shardOf(id) === shard && seen++ === skip) return id
  }
  const served = async (q: Promise<{ rows: { port: number }[] }>) =>
    nodeOfPort.get(Number((await q).rows[0]!.port))
  const ordersOf = (customer: number) => (customer % 7) + 1

  before(async () => {
    sc = await startShardedCluster({ shards: 2, replicasPerShard: 1 })
    for (const s of sc.shards) {
      nodeOfPort.set(s.cluster.primary.port, s.nodeNames[0]!)
      s.cluster.replicas.forEach((r, i) => {
        nodeOfPort.set(r.port, s.nodeNames[i + 1]!)
      })
    }
    nodeOfPort.set(sc.aggregateNode.port, 'federated')
    await sc.createShardedTable(
      'orders',
      'id bigint NOT NULL, customer_id bigint NOT NULL, total numeric NOT NULL',
      'customer_id',
      {
        shardConstraints: 'PRIMARY KEY (id)',
      },
    )
    await sc.createReferenceTable('countries', 'code text PRIMARY KEY', "VALUES ('DE'), ('FR')")
    await sc.aggregate.query(
      'primary',
      'CREATE TABLE orders_copy (id bigint PRIMARY KEY, customer_id bigint NOT NULL, total numeric NOT NULL)',
    )
    pool = createPool(
      shardedConfigFor(sc, {
        // eventual by default: which node serves is the subject, and a loaded 2-core machine can push a
        // replica's staleness bound past near_rt's 500 ms; the lag test names its own 1.5 s tier
        routing: {
          unannotated: 'eventual',
          tiers: {
            near_rt: { max_lag_ms: 500, fallback: 'primary' },
            eventual: { max_lag_ms: 60_000, fallback: 'least_lagged' },
            lag_1s: { max_lag_ms: 1500, fallback: 'primary' },
          },
        },
        sharding: { ...sc.config().sharding, reference_tables: ['countries'] },
      }),
    )
    await pool.ready()
    // every row through the pool: one keyed INSERT per order, placed by freshet
    let id = 0
    for (let customer = 1; customer <= CUSTOMERS; customer++) {
      for (let k = 0; k < ordersOf(customer); k++) {
        id++
        const total = ((id * 37) % 1000) / 10
        await pool.query('INSERT INTO orders (id, customer_id, total) VALUES ($1, $2, $3)', [
          id,
          customer,
          total,
        ])
        await sc.aggregate.query('primary', 'INSERT INTO orders_copy VALUES ($1, $2, $3)', [
          id,
          customer,
          total,
        ])
      }
    }
    await sc.waitForCatchUp()
    await eventually('every replica proven fresh', () =>
      pool
        .snapshot()
        .every((n) => n.role !== 'replica' || (n.healthy && (n.staleness_bound_ms ?? 1e9) < 300)),
    )
  })
  after(async () => {
    await pool?.end()
    await sc?.stop()
  })

  it('the inserted rows sit on the shard their key hashes to, and nowhere else', async () => {
    for (const s of sc.shards) {
      const { rows } = await s.cluster.query<{ c: string }>(
        'primary',
        'SELECT DISTINCT customer_id::text AS c FROM orders',
      )
      assert.ok(rows.length > CUSTOMERS / 4)
      assert.deepEqual(
        rows.filter((r) => shardOf(Number(r.c)) !== s.name),
        [],
      )
    }
  })

  it('every key source routes through pool.query to the shard holding the rows', async () => {
    const sql = 'SELECT inet_server_port() AS port, count(*)::int AS n FROM orders'
    for (const shard of ['shard_0', 'shard_1']) {
      const c = customerOn(shard)
      const replica = sc.shard(shard).nodeNames[1]
      const expectRows = async (q: Promise<{ rows: { port: number; n: number }[] }>, source: string) => {
        const res = await q
        assert.equal(nodeOfPort.get(Number(res.rows[0]!.port)), replica, `${source} for ${shard}`)
        assert.equal(res.rows[0]!.n, ordersOf(c), `${source}: the customer's rows are there`)
      }
      await expectRows(pool.query(`${sql} WHERE customer_id = ${c}`), 'literal')
      await expectRows(pool.query(`${sql} WHERE customer_id = $1`, [c]), '$1')
      await expectRows(pool.query(`${sql} o WHERE o.customer_id IN ($1, $1)`, [c]), 'IN list, alias')
      await expectRows(pool.query(`/* SHARD_KEY: ${c} */ ${sql} WHERE customer_id = ${c}`), 'SHARD_KEY hint')
      await expectRows(
        withShardKey(c, () => pool.query(`${sql} WHERE customer_id = ${c}`)),
        'withShardKey',
      )
      // a statement with no key of its own follows the context key (here: counts only this shard's rows)
      const alone = await withShardKey(c, () => pool.query(sql))
      assert.equal(nodeOfPort.get(Number(alone.rows[0]!.port)), replica)
      const routeTo = await pool.query(`/*+ ROUTE_TO: ${shard} */ SELECT inet_server_port() AS port`)
      assert.match(nodeOfPort.get(Number(routeTo.rows[0]!.port)) ?? '', new RegExp(`^s${shard.slice(-1)}_`))
    }
    assert.deepEqual(
      pool.explain(`${sql} WHERE customer_id = $1`, undefined, [customerOn('shard_1')]).shard,
      {
        shard: 'shard_1',
        source: 'statement',
        key: String(customerOn('shard_1')),
      },
    )
  })

  it('the hint outranks the context key, which outranks SET freshet.shard_key and the statement', async () => {
    const a = customerOn('shard_0')
    const b = customerOn('shard_1')
    // one row wherever it runs (count(*)): on shard_1 it counts none of customer a's rows
    const sql = `SELECT inet_server_port() AS port, count(*)::int AS n FROM orders WHERE customer_id = ${a}`
    const hinted = `/* SHARD_KEY: ${a} */ SELECT inet_server_port() AS port`
    assert.equal(await served(withShardKey(b, () => pool.query(hinted))), 's0_replica_1')
    assert.equal(
      await served(withShardKey(b, () => pool.query(`SELECT inet_server_port() AS port`))),
      's1_replica_1',
    )
    const client = await pool.connect()
    try {
      await client.query(`SET freshet.shard_key = ${b}`)
      assert.equal(await served(client.query('SELECT inet_server_port() AS port')), 's1_replica_1')
      assert.equal(
        await served(withShardKey(a, () => client.query('SELECT inet_server_port() AS port'))),
        's0_replica_1',
      )
      // the session key outranks the statement's own key (ranked sources, CONTRACT section 9)
      const onSession = await client.query(sql)
      assert.equal(nodeOfPort.get(Number(onSession.rows[0].port)), 's1_replica_1')
      assert.equal(onSession.rows[0].n, 0)
      await client.query('RESET freshet.shard_key')
      const own = await client.query(sql)
      assert.equal(nodeOfPort.get(Number(own.rows[0].port)), 's0_replica_1')
      assert.equal(own.rows[0].n, ordersOf(a))
    } finally {
      client.release()
    }
  })

  const crossShard = [
    'SELECT count(*) AS n, sum(total) AS s, min(total) AS lo, max(total) AS hi FROM orders',
    'SELECT customer_id, count(*) AS n, sum(total) AS s FROM orders GROUP BY customer_id ORDER BY s DESC, customer_id LIMIT 7',
    'SELECT id, customer_id, total FROM orders ORDER BY total DESC, id LIMIT 10',
    'SELECT count(*) AS n FROM orders WHERE customer_id IN (1, 2, 3, 4, 5, 6, 7, 8)',
  ]
  for (const sql of crossShard) {
    it(`cross-shard through the pool runs on the aggregate node and equals the unsharded copy: ${sql}`, async () => {
      assert.equal(pool.explain(sql).target, 'federated')
      const got = await pool.query(sql)
      assert.ok(got.rows.length > 0)
      const want = await sc.aggregate.query('primary', sql.replaceAll('FROM orders', 'FROM orders_copy'))
      assert.deepEqual(got.rows, want.rows)
    })
  }

  it('read-your-writes tokens are per shard: a write on shard_1 makes only shard_1 reads wait', async () => {
    const a = customerOn('shard_0', 3)
    const b = customerOn('shard_1', 3)
    const s1 = sc.shard('shard_1').cluster
    await s1.pauseReplay('replica_1')
    try {
      await withScope(async () => {
        await pool.query('INSERT INTO orders (id, customer_id, total) VALUES ($1, $2, 1)', [100_001, b])
        const token = pool.lastWriteToken()
        assert.deepEqual([...(parseShardTokens(token) ?? new Map()).keys()], ['shard_1'])
        // shard_0 has no token to wait for: its replica serves at once, even for eventual
        const read = (c: number) =>
          freshness('eventual', () =>
            pool.query('SELECT inet_server_port() AS port FROM orders WHERE customer_id = $1', [c]),
          )
        assert.equal(await served(read(a)), 's0_replica_1')
        // shard_1's replica has not replayed the write: the read waits, then goes to the primary and sees it
        const mine = await freshness('eventual', () =>
          pool.query(
            'SELECT inet_server_port() AS port, count(*)::int AS n FROM orders WHERE customer_id = $1 AND id = 100001',
            [b],
          ),
        )
        assert.equal(nodeOfPort.get(Number(mine.rows[0]!.port)), 's1_primary')
        assert.equal(mine.rows[0]!.n, 1)
      })
    } finally {
      await s1.resumeReplay('replica_1')
    }
    // the token carried elsewhere (an X-Primary-LSN header) is honoured the same way
    const token = await withScope(async () => {
      await pool.query('INSERT INTO orders (id, customer_id, total) VALUES ($1, $2, 1)', [100_002, b])
      return pool.lastWriteToken()
    })
    const carried = await readYourWrites(token, () =>
      pool.query('SELECT count(*)::int AS n FROM orders WHERE customer_id = $1 AND id = 100002', [b]),
    )
    assert.equal(carried.rows[0]!.n, 1)
  })

  it('X-DB-Shard-Key routes an HTTP request; its X-Primary-LSN carries per-shard tokens; messages hand both on', async () => {
    const a = customerOn('shard_0', 7)
    const b = customerOn('shard_1', 7)
    const server = createServer(
      withRequestContext(
        async (req, res) => {
          if (req.method === 'POST') {
            await pool.query('INSERT INTO orders (id, customer_id, total) VALUES ($1, $2, 1)', [
              Number(req.url!.slice(1)),
              b,
            ])
            res.end('{}')
            return
          }
          // no key in the statement: the header's key picks the shard
          const r = await pool.query(
            'SELECT inet_server_port() AS port, count(*)::int AS n FROM orders WHERE id = 400001',
          )
          res.end(JSON.stringify({ node: nodeOfPort.get(Number(r.rows[0].port)), n: r.rows[0].n }))
        },
        { pool },
      ),
    )
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const get = async (headers: Record<string, string>) =>
      (await (await fetch(`${url}/`, { headers })).json()) as { node: string; n: number }
    const s1 = sc.shard('shard_1').cluster
    try {
      const plain = await get({ 'x-db-shard-key': String(a) })
      assert.equal(plain.node, 's0_replica_1')
      await s1.pauseReplay('replica_1')
      try {
        const post = await fetch(`${url}/400001`, {
          method: 'POST',
          headers: { 'x-db-shard-key': String(b) },
        })
        const token = post.headers.get('x-primary-lsn')
        assert.deepEqual([...(parseShardTokens(token) ?? new Map()).keys()], ['shard_1'])
        // the next request brings the token back: shard_1's read waits for it (primary: its replica is paused)
        const mine = await get({ 'x-db-shard-key': String(b), 'x-primary-lsn': token! })
        assert.equal(mine.node, 's1_primary')
        assert.equal(mine.n, 1)
        // shard_0 has nothing to wait for under the same token
        const other = await get({ 'x-db-shard-key': String(a), 'x-primary-lsn': token! })
        assert.equal(other.node, 's0_replica_1')
        // a producer's shard key and token travel in message headers to the consumer
        const headers = await withShardKey(b, () => readYourWrites(token, async () => injectContext({})))
        assert.equal(headers['x-db-shard-key'], String(b))
        assert.equal(headers['x-primary-lsn'], token)
        const consumed = await withMessageContext(headers, () =>
          pool.query('SELECT inet_server_port() AS port, count(*)::int AS n FROM orders WHERE id = 400001'),
        )
        assert.equal(nodeOfPort.get(Number(consumed.rows[0].port)), 's1_primary')
        assert.equal(consumed.rows[0].n, 1)
      } finally {
        await s1.resumeReplay('replica_1')
      }
    } finally {
      server.close()
    }
  })

  it('a lagging replica in shard_1 leaves shard_0 on its replica', async () => {
    const a = customerOn('shard_0')
    const b = customerOn('shard_1')
    const s1 = sc.shard('shard_1').cluster
    await s1.pauseReplay('replica_1')
    const writer = setInterval(
      () => void s1.query('primary', 'UPDATE orders SET total = total WHERE id = 1').catch(() => {}),
      50,
    )
    try {
      const read = (c: number) =>
        served(
          pool.query(
            '/* FRESHNESS: LAG_1S */ SELECT inet_server_port() AS port FROM orders WHERE customer_id = $1',
            [c],
          ),
        )
      await eventually(
        'shard_1 reads within 1.5 s leave the paused replica',
        async () => (await read(b)) === 's1_primary',
      )
      for (let i = 0; i < 5; i++) assert.equal(await read(a), 's0_replica_1')
    } finally {
      clearInterval(writer)
      await s1.resumeReplay('replica_1')
    }
    await eventually(
      'shard_1 reads its replica again',
      async () =>
        (await served(
          pool.query('SELECT inet_server_port() AS port FROM orders WHERE customer_id = $1', [b]),
        )) === 's1_replica_1',
    )
  })

  it('a stopped replica in shard_0 sends shard_0 reads to its primary; shard_1 keeps its replica', async () => {
    const a = customerOn('shard_0')
    const b = customerOn('shard_1')
    const s0 = sc.shard('shard_0').cluster
    await s0.stop('replica_1', 'immediate')
    try {
      const read = (c: number) =>
        served(pool.query('SELECT inet_server_port() AS port FROM orders WHERE customer_id = $1', [c]))
      // the first read after the stop may fail over inside the pool (a retried replica read): it still answers
      await eventually('shard_0 reads on its primary', async () => (await read(a)) === 's0_primary')
      for (let i = 0; i < 5; i++) assert.equal(await read(b), 's1_replica_1')
    } finally {
      await s0.start('replica_1')
    }
    await eventually(
      's0_replica_1 healthy again',
      () => pool.snapshot().find((n) => n.name === 's0_replica_1')?.healthy === true,
      20_000,
    )
  })

  it('a write spanning shards fails with ZF003 and writes nothing anywhere', async () => {
    const a = customerOn('shard_0', 5)
    const b = customerOn('shard_1', 5)
    await assert.rejects(
      pool.query('INSERT INTO orders (id, customer_id, total) VALUES (200001, $1, 1), (200002, $2, 1)', [
        a,
        b,
      ]),
      (err) => isFreshetError(err) && err.sqlState === 'ZF003' && /spanning shards/.test(err.message),
    )
    await assert.rejects(
      pool.query('UPDATE orders SET total = 0'),
      (err) => isFreshetError(err) && err.sqlState === 'ZF003' && /orders\.customer_id/.test(err.message),
    )
    await assert.rejects(
      pool.query("INSERT INTO countries VALUES ('IT')"),
      (err) => isFreshetError(err) && err.sqlState === 'ZF003',
    )
    for (const s of sc.shards) {
      const { rows } = await s.cluster.query<{ n: number }>(
        'primary',
        "SELECT (SELECT count(*) FROM orders WHERE id IN (200001, 200002))::int + (SELECT count(*) FROM countries WHERE code = 'IT')::int AS n",
      )
      assert.equal(rows[0]!.n, 0)
      const zero = await s.cluster.query<{ n: number }>(
        'primary',
        'SELECT count(*)::int AS n FROM orders WHERE total = 0',
      )
      assert.equal(zero.rows[0]!.n, 0)
    }
  })

  it('a transaction is held until its first keyed statement, pinned to that shard, and a statement for another shard aborts it', async () => {
    const a = customerOn('shard_0', 6)
    const b = customerOn('shard_1', 6)
    // what PostgreSQL itself answers, straight to a shard's primary: a statement after an error in a transaction
    const direct = new pg.Client({ connectionString: sc.shard('shard_0').cluster.primary.url('app') })
    await direct.connect()
    let postgres: pg.DatabaseError
    try {
      await direct.query('BEGIN')
      await assert.rejects(direct.query('SELECT 1 / 0'))
      postgres = await direct.query('SELECT 1').then(
        () => assert.fail('PostgreSQL ran a statement in an aborted transaction'),
        (err: pg.DatabaseError) => err,
      )
      await direct.query('ROLLBACK')
    } finally {
      await direct.end()
    }
    // the statements after a refusal get the same error through the pool: pg's DatabaseError, code, message
    const likePostgres = (err: unknown) => {
      assert.ok(err instanceof pg.DatabaseError, `a pg DatabaseError, got ${String(err)}`)
      assert.deepEqual(
        { code: err.code, message: err.message, severity: err.severity },
        { code: postgres.code, message: postgres.message, severity: postgres.severity },
      )
      assert.equal(err.code, '25P02')
      return true
    }
    const client = await pool.connect()
    try {
      await client.query('BEGIN')
      await client.query("SET LOCAL application_name = 'held'")
      const first = await client.query(
        "SELECT inet_server_port() AS port, current_setting('application_name') AS app FROM orders WHERE customer_id = $1 LIMIT 1",
        [b],
      )
      assert.equal(nodeOfPort.get(Number(first.rows[0]!.port)), 's1_primary')
      assert.equal(first.rows[0]!.app, 'held', 'the held SET LOCAL ran inside the transaction on shard_1')
      assert.equal(client.pinnedShard, 'shard_1')
      await client.query('INSERT INTO orders (id, customer_id, total) VALUES (300001, $1, 1)', [b])
      // unkeyed statements stay in the transaction's shard
      assert.equal(await served(client.query('SELECT inet_server_port() AS port')), 's1_primary')
      await assert.rejects(
        client.query('INSERT INTO orders (id, customer_id, total) VALUES (300002, $1, 1)', [a]),
        (err) => isFreshetError(err) && err.sqlState === 'ZF003' && /pinned to shard_1/.test(err.message),
      )
      await assert.rejects(client.query('SELECT 1'), likePostgres)
      await assert.rejects(
        client.query('SELECT 1 FROM orders WHERE customer_id = $1', [b]),
        likePostgres,
        'also a statement for the pinned shard',
      )
      const end = await client.query('COMMIT')
      assert.equal(end.command, 'ROLLBACK')
      assert.equal(client.pinnedShard, null)
      // a committed transaction on the other shard, held BEGIN included
      await client.query('BEGIN')
      await client.query('INSERT INTO orders (id, customer_id, total) VALUES (300003, $1, 1)', [a])
      await client.query('COMMIT')
      // refused as the first statement (BEGIN still held): aborted the same way, nothing sent anywhere
      await client.query('BEGIN')
      await assert.rejects(
        client.query('UPDATE orders SET total = 0'),
        (err) => isFreshetError(err) && err.sqlState === 'ZF003',
      )
      await assert.rejects(client.query('SELECT 1'), likePostgres)
      assert.equal((await client.query('COMMIT')).command, 'ROLLBACK')
      // BEGIN ... COMMIT with nothing in between never reaches a server
      await client.query('BEGIN')
      assert.equal((await client.query('COMMIT')).command, 'COMMIT')
    } finally {
      client.release()
    }
    const count = async (shard: string, id: number) =>
      (
        await sc
          .shard(shard)
          .cluster.query<{ n: number }>('primary', 'SELECT count(*)::int AS n FROM orders WHERE id = $1', [
            id,
          ])
      ).rows[0]!.n
    assert.equal(await count('shard_1', 300001), 0, 'the aborted transaction left nothing on shard_1')
    assert.equal(await count('shard_0', 300002), 0, 'the refused statement was never sent')
    assert.equal(await count('shard_0', 300003), 1)
  })

  // last: it leaves shard_1 on its promoted replica (and the aggregate node's foreign server on the old primary)
  it("a failover inside shard_1 moves only shard_1's writes: its promoted replica takes them, shard_0 is untouched", async () => {
    const a = customerOn('shard_0', 8)
    const b = customerOn('shard_1', 8)
    const s1 = sc.shard('shard_1').cluster
    await sc.waitForCatchUp()
    await s1.stop('primary', 'immediate')
    await s1.promote('replica_1')
    await eventually(
      "freshet sees s1_replica_1 as shard_1's primary",
      () => pool.routing.engine('shard_1').tracker.primary === 's1_replica_1',
      15_000,
    )
    assert.equal(pool.routing.engine('shard_0').tracker.primary, 's0_primary')
    const write = (id: number, customer: number) =>
      pool.query(
        'INSERT INTO orders (id, customer_id, total) VALUES ($1, $2, 1) RETURNING inet_server_port() AS port',
        [id, customer],
      )
    await eventually(
      'a shard_1 write lands on its new primary',
      async () => {
        try {
          return nodeOfPort.get(Number((await write(500_001, b)).rows[0].port)) === 's1_replica_1'
        } catch {
          return false
        }
      },
      15_000,
    )
    assert.equal(nodeOfPort.get(Number((await write(500_002, a)).rows[0].port)), 's0_primary')
    // shard_0 keeps reading its replica (a fresh scope: no token of the writes above; eventually, as a
    // pooled connection of the replica restarted in the test before may fail once and retry on the primary)
    await eventually("shard_0's reads on its replica", async () => {
      const read = await withScope(() =>
        pool.query('SELECT inet_server_port() AS port FROM orders WHERE customer_id = $1', [a]),
      )
      return nodeOfPort.get(Number(read.rows[0].port)) === 's0_replica_1'
    })
    const roles = Object.fromEntries(pool.snapshot().map((n) => [n.name, [n.shard, n.role]]))
    assert.deepEqual(roles.s1_replica_1, ['shard_1', 'primary'])
    assert.deepEqual(roles.s0_primary, ['shard_0', 'primary'])
  })
})
