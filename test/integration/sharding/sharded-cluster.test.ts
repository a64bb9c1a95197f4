// The sharded harness on real servers: two shards (primary + streaming replica each) and the aggregate
// node over postgres_fdw. Rows are placed by freshet's shard router (the same decision the pool and proxy
// will make); keyed reads routed by it find their rows on that shard's replica; cross-shard statements it
// sends to the aggregate node return what the same query returns on an unsharded copy, with the
// aggregation pushed down to the shards.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { loadModule, parseSync } from 'libpg-query'
import { validateConfig } from '../../../src/core/config/parse-config.js'
import { extractShardKeys } from '../../../src/core/shard/extract-shard-keys.js'
import { type ShardSetup, shardSetupOf } from '../../../src/core/shard/router-from-config.js'
import { hashBucket } from '../../../src/core/shard/shard-key.js'
import { AGGREGATE } from '../../../src/core/shard/shard-router.js'
import { type ShardedCluster, startShardedCluster } from '../../cluster/index.js'

const CUSTOMERS = 300
const ORDERS = 1500

describe('sharded cluster: shards + aggregate node over postgres_fdw', () => {
  let sc: ShardedCluster
  let setup: ShardSetup
  const route = (sql: string, params?: unknown[], write = false) =>
    setup.router.route({
      write,
      facts: extractShardKeys(parseSync(sql).stmts, setup.tables),
      ...(params ? { params } : {}),
    })
  const onAggregate = (sql: string) => sc.aggregate.query('primary', sql)
  const unsharded = (sql: string) => onAggregate(sql.replaceAll('FROM orders', 'FROM orders_copy'))

  before(async () => {
    await loadModule()
    sc = await startShardedCluster({ shards: 2, replicasPerShard: 1 })
    await sc.createShardedTable(
      'orders',
      'id bigint NOT NULL, customer_id bigint NOT NULL, total numeric NOT NULL',
      'customer_id',
      {
        shardConstraints: 'PRIMARY KEY (id)',
      },
    )
    await sc.createReferenceTable('countries', 'code text PRIMARY KEY', "VALUES ('DE'), ('FR')")
    await onAggregate(
      'CREATE TABLE orders_copy (id bigint PRIMARY KEY, customer_id bigint NOT NULL, total numeric NOT NULL)',
    )
    setup = shardSetupOf(
      validateConfig({
        ...sc.config(),
        sharding: { ...sc.config().sharding, reference_tables: ['countries'] },
      }),
    )!
    // place every row where the router says: one INSERT per shard, each a single-shard write
    const byShard = new Map<string, [number, number, string][]>()
    for (let id = 1; id <= ORDERS; id++) {
      const customer = ((id * 7919) % CUSTOMERS) + 1
      const total = (((id * 37) % 1000) / 10).toFixed(1)
      const d = route(
        'INSERT INTO orders (id, customer_id, total) VALUES ($1, $2, $3)',
        [id, customer, total],
        true,
      )
      assert.equal(d.source, 'statement')
      byShard.set(d.shard, [...(byShard.get(d.shard) ?? []), [id, customer, total]])
    }
    for (const [shard, rows] of byShard) {
      await sc
        .shard(shard)
        .cluster.query(
          'primary',
          'INSERT INTO orders SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::numeric[])',
          [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2])],
        )
    }
    await onAggregate(
      `INSERT INTO orders_copy SELECT id, ((id * 7919) % ${CUSTOMERS}) + 1, round(((id * 37) % 1000) / 10.0, 1) FROM generate_series(1, ${ORDERS}) id`,
    )
    await sc.waitForCatchUp()
  })
  after(async () => {
    await sc?.stop()
  })

  it('both shards hold rows, and every row is on the shard its bucket maps to', async () => {
    for (const s of sc.shards) {
      const { rows } = await s.cluster.query<{ c: string }>(
        'primary',
        'SELECT customer_id::text AS c FROM orders',
      )
      assert.ok(rows.length > ORDERS / 4, `${s.name} holds ${rows.length} rows`)
      const misplaced = rows.filter((r) => {
        const b = hashBucket(BigInt(r.c), 'integer', sc.bucketCount)
        return b < s.buckets[0] || b > s.buckets[1]
      })
      assert.deepEqual(misplaced, [])
    }
  })

  it("the aggregate node's freshet_bucket() agrees with freshet for every key", async () => {
    const { rows } = await onAggregate(
      `SELECT k::text, freshet_bucket(k, ${sc.bucketCount}) AS b FROM generate_series(-2000, 2000) k`,
    )
    const wrong = rows.filter((r) => hashBucket(BigInt(r.k), 'integer', sc.bucketCount) !== r.b)
    assert.deepEqual(wrong, [])
  })

  it("keyed reads routed by the router find the customer's rows on that shard's replica", async () => {
    for (const customer of [1, 2, 3, 150, 299]) {
      const sql = 'SELECT id, total FROM orders WHERE customer_id = $1 ORDER BY id'
      const d = route(sql, [customer])
      assert.notEqual(d.shard, AGGREGATE)
      const got = await sc.shard(d.shard).cluster.query('replica_1', sql, [customer])
      const want = await onAggregate(
        `SELECT id, total FROM orders_copy WHERE customer_id = ${customer} ORDER BY id`,
      )
      assert.ok(want.rows.length > 0)
      assert.deepEqual(got.rows, want.rows, `customer ${customer} on ${d.shard}`)
    }
  })

  const crossShard = [
    'SELECT count(*) AS n, sum(total) AS s, min(total) AS lo, max(total) AS hi FROM orders',
    'SELECT customer_id, count(*) AS n, sum(total) AS s FROM orders GROUP BY customer_id ORDER BY s DESC, customer_id LIMIT 7',
    'SELECT id, customer_id, total FROM orders ORDER BY total DESC, id LIMIT 10',
    'SELECT count(*) AS n FROM orders WHERE customer_id IN (1, 2, 3, 4, 5, 6, 7, 8)',
    'SELECT avg(total)::numeric(10,4) AS a FROM orders WHERE total > 50',
  ]
  for (const sql of crossShard) {
    it(`cross-shard, on the aggregate node, equals the unsharded copy: ${sql}`, async () => {
      const d = route(sql)
      assert.deepEqual([d.shard, d.source], [AGGREGATE, 'cross_shard'])
      assert.deepEqual(d.crossShardTables, ['orders'])
      const got = await onAggregate(sql)
      assert.ok(got.rows.length > 0)
      assert.deepEqual(got.rows, (await unsharded(sql)).rows)
    })
  }

  it('filters and ORDER BY push down to both shards; aggregates are finalized from per-shard partial aggregates', async () => {
    const plan = async (sql: string) =>
      (await onAggregate(`EXPLAIN (VERBOSE, COSTS OFF) ${sql}`)).rows.map((r) => r['QUERY PLAN']).join('\n')
    const where = await plan('SELECT id FROM orders WHERE customer_id = 5')
    assert.equal(
      where.match(/Remote SQL: SELECT id FROM public\.orders WHERE \(\(customer_id = 5\)\)/g)?.length,
      2,
      where,
    )
    const top = await plan('SELECT id FROM orders ORDER BY total DESC LIMIT 10')
    assert.match(top, /Limit[\s\S]*Merge Append/)
    assert.equal(
      top.match(/Remote SQL: SELECT id, total FROM public\.orders ORDER BY total DESC/g)?.length,
      2,
      top,
    )
    // PostgreSQL 17's postgres_fdw ships no partial aggregates: each shard's rows are aggregated per
    // partition on the aggregate node (partitionwise), then finalized there
    const agg = await plan('SELECT count(*), sum(total) FROM orders')
    assert.match(
      agg,
      /Finalize Aggregate[\s\S]*Partial Aggregate[\s\S]*Foreign Scan on public\.orders_shard_0[\s\S]*Foreign Scan on public\.orders_shard_1/,
    )
  })

  it('reference tables are on every shard; a statement reading only them goes to the default shard', async () => {
    for (const s of sc.shards) {
      const { rows } = await s.cluster.query('replica_1', 'SELECT code FROM countries ORDER BY code')
      assert.deepEqual(
        rows.map((r) => r.code),
        ['DE', 'FR'],
      )
    }
    assert.deepEqual(Object.values(route('SELECT code FROM countries')), ['shard_0', 'any'])
  })
})
