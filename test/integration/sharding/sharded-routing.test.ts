// ShardedRouting on real servers (two shards with a streaming replica each, the aggregate node): the
// shard decision, then that shard's own engine deciding the node with its own lag readings; the map swap.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { validateConfig } from '../../../src/core/config/parse-config.js'
import { isFreshetError } from '../../../src/core/errors.js'
import type { RoutingContext } from '../../../src/core/route/routing-context.js'
import { IDLE_SESSION } from '../../../src/core/route/routing-context.js'
import { hashBucket } from '../../../src/core/shard/shard-key.js'
import { ShardMap } from '../../../src/core/shard/shard-map.js'
import { AGGREGATE } from '../../../src/core/shard/shard-router.js'
import { ShardedRouting, type ShardKeyInput, type ShardRouted } from '../../../src/routing/sharded-routing.js'
import { type ShardedCluster, startShardedCluster } from '../../cluster/index.js'
import { shardedConfigFor } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'

describe('ShardedRouting: shard first, then the shard engine', () => {
  let sc: ShardedCluster
  let routing: ShardedRouting
  /** A customer id whose rows live on `shard`. */
  const customerOn = (shard: string, skip = 0): number => {
    const [lo, hi] = sc.shard(shard).buckets
    for (let id = 1, seen = 0; ; id++) {
      const b = hashBucket(BigInt(id), 'integer', sc.bucketCount)
      if (b >= lo && b <= hi && seen++ === skip) return id
    }
  }

  before(async () => {
    sc = await startShardedCluster({ shards: 2, replicasPerShard: 1 })
    await sc.createShardedTable('orders', 'id bigint, customer_id bigint, total numeric', 'customer_id')
    routing = new ShardedRouting(
      validateConfig(shardedConfigFor(sc, { routing: { unannotated: 'near_rt' } })),
    )
    await routing.start()
    await eventually('every replica proven fresh', () =>
      routing
        .snapshot()
        .every((n) => n.role !== 'replica' || (n.healthy && (n.staleness_bound_ms ?? 1e9) < 300)),
    )
  })
  after(async () => {
    await routing?.stop()
    await sc?.stop()
  })

  const decideSql = (sql: string, key: ShardKeyInput = {}, context: RoutingContext = {}): ShardRouted =>
    routing.decide(routing.classify(sql), IDLE_SESSION, context, { sql, key })
  const routeSql = (sql: string, key: ShardKeyInput = {}) => routing.route(routing.classify(sql), sql, key)

  it('a keyed read goes to its shard and that shard engine picks its replica; a keyed write its primary', () => {
    for (const shard of ['shard_0', 'shard_1']) {
      const n = sc.shard(shard).nodeNames
      const id = customerOn(shard)
      const read = decideSql('SELECT * FROM orders WHERE customer_id = $1', { params: [id] })
      assert.deepEqual(read.shard, { shard, source: 'statement', key: String(id) })
      assert.equal(read.decision.target, n[1])
      assert.deepEqual(read.decision.shard, read.shard)
      const write = decideSql('UPDATE orders SET total = 1 WHERE customer_id = $1', { params: [id] })
      assert.equal(write.decision.target, n[0])
      assert.equal(write.engine, routing.engine(shard))
    }
  })

  it('texts that differ only in the key literal (one classification) route by their own key', () => {
    const a = customerOn('shard_0')
    const b = customerOn('shard_1')
    const sql = (k: number) => `SELECT * FROM orders WHERE customer_id = ${k}`
    assert.equal(
      routing.classify(sql(a)),
      routing.classify(sql(b)),
      'the classifier shares the classification',
    )
    assert.equal(decideSql(sql(a)).shard.shard, 'shard_0')
    assert.equal(decideSql(sql(b)).shard.shard, 'shard_1')
    assert.equal(decideSql(sql(a)).shard.key, String(a))
  })

  it('the context key and the session key decide when the statement has none; the hint outranks them', () => {
    const a = customerOn('shard_0')
    const b = customerOn('shard_1')
    const text = 'SELECT 1 FROM orders LIMIT 1'
    assert.equal(routeSql(text, { contextKey: a }).shard, 'shard_0')
    assert.equal(routeSql(text, { contextKey: a }).source, 'context')
    assert.deepEqual(routeSql(text, { sessionKey: String(b) }), {
      shard: 'shard_1',
      source: 'session',
      key: String(b),
    })
    const hinted = `/* SHARD_KEY: ${b} */ SELECT 1 FROM orders LIMIT 1`
    assert.equal(routeSql(hinted, { contextKey: a, sessionKey: String(a) }).shard, 'shard_1')
  })

  it('a statement naming no single shard goes to the aggregate node, counted by table', () => {
    const seen: string[][] = []
    const onCross = (tables: readonly string[]) => seen.push([...tables])
    routing.on('cross_shard', onCross)
    try {
      const r = decideSql('SELECT count(*) FROM orders', {}, { minLsn: '0/1' })
      assert.equal(r.decision.target, 'federated')
      assert.equal(r.shard.shard, AGGREGATE)
      assert.deepEqual(seen, [['orders']])
      // a dry run counts nothing
      routing.decide(
        routing.classify('SELECT count(*) FROM orders'),
        IDLE_SESSION,
        {},
        {
          sql: 'SELECT count(*) FROM orders',
          dryRun: true,
        },
      )
      assert.equal(seen.length, 1)
    } finally {
      routing.off('cross_shard', onCross)
    }
  })

  it('a write spanning shards and a shard change inside a pinned transaction fail before anything is sent', () => {
    const a = customerOn('shard_0')
    const b = customerOn('shard_1')
    assert.throws(
      () =>
        decideSql('INSERT INTO orders (id, customer_id, total) VALUES (1, $1, 1), (2, $2, 2)', {
          params: [a, b],
        }),
      (err) => isFreshetError(err) && err.sqlState === 'ZF003' && /spanning shards/.test(err.message),
    )
    assert.throws(
      () => decideSql('SELECT * FROM orders WHERE customer_id = $1', { params: [b], pinned: 'shard_0' }),
      (err) => isFreshetError(err) && err.sqlState === 'ZF003' && /pinned to shard_0/.test(err.message),
    )
    const batch = [
      `SELECT * FROM orders WHERE customer_id = ${a}`,
      `SELECT * FROM orders WHERE customer_id = ${b}`,
    ]
    assert.throws(
      () =>
        routing.routeBatch(
          batch.map((t) => [routing.classify(t), t] as const),
          { params: [] },
        ),
      (err) => isFreshetError(err) && err.sqlState === 'ZF003',
    )
  })

  it('lag in shard_1 sends its reads to its primary while shard_0 keeps reading its replica', async () => {
    const s1 = sc.shard('shard_1')
    await s1.cluster.pauseReplay('replica_1')
    try {
      await s1.cluster.query('primary', 'INSERT INTO orders VALUES (0, 0, 0)')
      const read = (shard: string) =>
        decideSql('SELECT * FROM orders WHERE customer_id = $1', { params: [customerOn(shard)] }).decision
      await eventually(
        'shard_1 reads leave its paused replica',
        () => read('shard_1').target === 's1_primary',
      )
      assert.equal(read('shard_0').target, 's0_replica_1')
    } finally {
      await s1.cluster.resumeReplay('replica_1')
    }
  })

  it('setMap swaps the map atomically with a higher version', () => {
    const id = customerOn('shard_0')
    const versions: number[] = []
    routing.on('routing_map', (v) => versions.push(v))
    const { map } = ShardMap.build(
      { method: 'hash', buckets: sc.bucketCount, keyType: 'integer' },
      [{ partition_key_range: `0-${sc.bucketCount - 1}`, target_backend: 'shard_1' }],
      routing.shardNames,
    )
    assert.throws(() => routing.setMap(map!, routing.mapVersion))
    routing.setMap(map!, routing.mapVersion + 1)
    assert.equal(routeSql('SELECT * FROM orders WHERE customer_id = $1', { params: [id] }).shard, 'shard_1')
    assert.deepEqual(versions, [2])
    assert.equal(routing.mapVersion, 2)
  })
})
