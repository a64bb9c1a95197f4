// The proxy face on a sharded config: a BEGIN sent through the extended protocol (alone in its batch,
// as JDBC, pgx and node-postgres named statements send it, or at the head of a pipelined batch) is
// answered byte for byte as the server answers it and held until the first keyed statement, so the
// transaction opens on that statement's shard: checked on both shard primaries, COMMIT and ROLLBACK.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { type RunningShardedProxy, startShardedProxy } from '../../../src/cli/proxy-sharded.js'
import { validateConfig } from '../../../src/core/config/parse-config.js'
import { hashBucket } from '../../../src/core/shard/shard-key.js'
import {
  bind,
  describe as describeMessage,
  execute,
  parse,
  query,
  SYNC,
} from '../../../src/protocol/index.js'
import { type ShardedCluster, startShardedCluster } from '../../cluster/index.js'
import { shardedConfigFor } from '../../support/cluster-config.js'
import { RawClient, transcript } from '../wire-compat/raw-client.js'

describe('proxy on shards: an extended-protocol BEGIN', () => {
  let sc: ShardedCluster
  let running: RunningShardedProxy
  let nextId = 1000
  /** A customer id whose rows live on `shard` (each call a new one). */
  const customerOn = (shard: string): number => {
    const [lo, hi] = sc.shard(shard).buckets
    for (;;) {
      const id = nextId++
      const b = hashBucket(BigInt(id), 'integer', sc.bucketCount)
      if (b >= lo && b <= hi) return id
    }
  }
  const rowsOn = async (shard: string, customer: number) => {
    const r = await sc
      .shard(shard)
      .cluster.query('primary', `SELECT count(*)::int AS n FROM orders WHERE customer_id = ${customer}`)
    return (r.rows[0] as { n: number }).n
  }
  const proxyAddress = () => {
    const [host, port] = running.address.split(':')
    return { host: host!, port: Number(port) }
  }
  const rawProxy = () => RawClient.open(proxyAddress().host, proxyAddress().port)
  const rawDirect = (shard: string) => {
    const p = sc.shard(shard).cluster.primary
    return RawClient.open(p.host, p.port)
  }
  /** Simple-query round trip: the message types, and whether an ErrorResponse came. */
  const simple = async (c: RawClient, sql: string) => {
    const got = await c.roundTrip([query(sql)])
    return got.map((m) => (m.type === 'E' ? `E:${m.body.toString('latin1')}` : m.type)).join(' ')
  }

  before(async () => {
    sc = await startShardedCluster({ shards: 2, replicasPerShard: 0 })
    await sc.createShardedTable(
      'orders',
      'id bigint NOT NULL, customer_id bigint NOT NULL, total numeric NOT NULL',
      'customer_id',
      { shardConstraints: 'PRIMARY KEY (id)' },
    )
    const config = validateConfig(
      shardedConfigFor(sc, {
        proxy: {
          listen: '127.0.0.1:0',
          auth: { type: 'trust', users: { postgres: { password: 'postgres' } } },
          shutdown_timeout_ms: 2000,
        },
      }),
    )
    running = await startShardedProxy(config, { adminListen: false })
  })
  after(async () => {
    await running?.stop()
    await sc?.stop()
  })

  /** Each case: its first BEGIN batch, and the one sent the second time (a named statement is not parsed again). */
  const BATCHES: [string, Buffer[], Buffer[]][] = [
    [
      'Parse/Bind/Describe portal/Execute/Sync',
      [parse('', 'BEGIN'), bind('', ''), describeMessage('P', ''), execute(), SYNC],
      [parse('', 'BEGIN'), bind('', ''), describeMessage('P', ''), execute(), SYNC],
    ],
    [
      'Parse/Bind/Execute/Sync',
      [parse('', 'BEGIN'), bind('', ''), execute(), SYNC],
      [parse('', 'BEGIN'), bind('', ''), execute(), SYNC],
    ],
    [
      'named: Parse/Describe statement/Bind/Execute/Sync',
      [parse('b1', 'BEGIN'), describeMessage('S', 'b1'), bind('', 'b1'), execute(), SYNC],
      [describeMessage('S', 'b1'), bind('', 'b1'), describeMessage('P', ''), execute(), SYNC],
    ],
  ]

  for (const [name, first, again] of BATCHES) {
    it(`${name}: answered as the server answers it, then the transaction opens on the keyed INSERT's shard`, async () => {
      const direct = await rawDirect('shard_1')
      const expected = transcript(await direct.roundTrip(first))
      assert.equal(await simple(direct, 'ROLLBACK'), 'C Z')
      const expectedAgain = transcript(await direct.roundTrip(again))
      assert.equal(await simple(direct, 'ROLLBACK'), 'C Z')
      direct.end()
      assert.equal(expected.at(-1), 'Z:T', 'the server is in a transaction after it')
      assert.equal(expectedAgain.at(-1), 'Z:T')

      const c = await rawProxy()
      try {
        assert.deepEqual(transcript(await c.roundTrip(first)), expected)
        const customer = customerOn('shard_1')
        assert.equal(
          await simple(c, `INSERT INTO orders (id, customer_id, total) VALUES (${customer}, ${customer}, 1)`),
          'C Z',
        )
        assert.equal(await rowsOn('shard_1', customer), 0, 'not committed yet')
        assert.equal(await simple(c, 'COMMIT'), 'C Z')
        assert.equal(await rowsOn('shard_1', customer), 1, 'committed on shard_1')
        assert.equal(await rowsOn('shard_0', customer), 0, 'nothing on shard_0')

        const gone = customerOn('shard_1')
        assert.deepEqual(transcript(await c.roundTrip(again)), expectedAgain)
        assert.equal(
          await simple(c, `INSERT INTO orders (id, customer_id, total) VALUES (${gone}, ${gone}, 1)`),
          'C Z',
        )
        assert.equal(await simple(c, 'ROLLBACK'), 'C Z')
        assert.equal(await rowsOn('shard_1', gone), 0, 'rolled back on shard_1')
        assert.equal(await rowsOn('shard_0', gone), 0, 'nothing on shard_0')
      } finally {
        c.end()
      }
    })
  }

  it("BEGIN at the head of a pipelined batch: the batch goes to its keyed statement's shard", async () => {
    const c = await rawProxy()
    try {
      const customer = customerOn('shard_1')
      const got = transcript(
        await c.roundTrip([
          parse('', 'BEGIN'),
          bind('', ''),
          execute(),
          parse('', 'INSERT INTO orders (id, customer_id, total) VALUES ($1, $2, 2)'),
          bind('', '', [String(customer), String(customer)]),
          execute(),
          SYNC,
        ]),
      )
      assert.deepEqual(
        got.map((m) => m.slice(0, 1)),
        ['1', '2', 'C', '1', '2', 'C', 'Z'],
        got.join(' | '),
      )
      assert.equal(got.at(-1), 'Z:T')
      assert.equal(await simple(c, 'COMMIT'), 'C Z')
      assert.equal(await rowsOn('shard_1', customer), 1)
      assert.equal(await rowsOn('shard_0', customer), 0)
    } finally {
      c.end()
    }
  })

  it('node-postgres named statements: BEGIN, a keyed INSERT, COMMIT; again with ROLLBACK', async () => {
    const c = new pg.Client({ connectionString: `postgres://postgres@${running.address}/freshet` })
    await c.connect()
    try {
      const begin = { name: 'tx_begin', text: 'BEGIN' }
      const insert = {
        name: 'tx_insert',
        text: 'INSERT INTO orders (id, customer_id, total) VALUES ($1, $2, 3)',
      }
      const kept = customerOn('shard_1')
      await c.query(begin)
      await c.query({ ...insert, values: [kept, kept] })
      await c.query('COMMIT')
      assert.equal(await rowsOn('shard_1', kept), 1, 'committed on shard_1')
      assert.equal(await rowsOn('shard_0', kept), 0, 'nothing on shard_0')

      // the named statements again (Bind only now)
      const gone = customerOn('shard_1')
      await c.query(begin)
      await c.query({ ...insert, values: [gone, gone] })
      await c.query('ROLLBACK')
      assert.equal(await rowsOn('shard_1', gone), 0, 'rolled back on shard_1')
      assert.equal(await rowsOn('shard_0', gone), 0, 'nothing on shard_0')
    } finally {
      await c.end()
    }
  })
})
