// freshet's hash buckets agree with PostgreSQL's own hash partitioning on a real server: for int2, int4,
// int8, text, varchar and uuid keys, satisfies_hash_partition() accepts the remainder freshet computes for
// several moduli, and rows inserted into a PARTITION BY HASH table land in the partition freshet predicts.

import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { normalizeShardKey, partitionHash, type ShardKeyType } from '../../../src/core/shard/shard-key.js'
import { type LocalCluster, startCluster } from '../../cluster/index.js'

const MODULI = [1024, 1000, 7, 65521, 2147483647]

function sampleKeys(type: string, n: number, seed: number): string[] {
  let x = seed
  const next = () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    return x
  }
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    if (type === 'int2') out.push(String((next() % 65536) - 32768))
    else if (type === 'int4') out.push(String((next() | 0) >> (next() % 31)))
    else if (type === 'int8') out.push(BigInt.asIntN(64, (BigInt(next()) << 32n) | BigInt(next())).toString())
    else if (type === 'uuid') out.push(randomUUID())
    else {
      // every length 0..40 (every tail of the 12-byte blocks), ASCII and multi-byte UTF-8
      const len = i % 41
      let s = ''
      for (let j = 0; j < len; j++)
        s += j % 7 === 3 ? 'é€𝄞'[next() % 3] : String.fromCharCode(32 + (next() % 95))
      out.push(s)
    }
  }
  if (type === 'int8') out.push('9223372036854775807', '-9223372036854775808', '0', '-1')
  if (type === 'int4') out.push('2147483647', '-2147483648', '0', '-1')
  if (type === 'int2') out.push('32767', '-32768')
  return out
}

const TYPES: [string, ShardKeyType][] = [
  ['int2', 'integer'],
  ['int4', 'integer'],
  ['int8', 'integer'],
  ['text', 'text'],
  ['varchar', 'text'],
  ['uuid', 'uuid'],
]

describe('hash buckets agree with PostgreSQL hash partitioning', () => {
  let cluster: LocalCluster

  before(async () => {
    cluster = await startCluster({ replicas: 0 })
  })
  after(async () => {
    await cluster?.stop()
  })

  for (const [pgType, keyType] of TYPES) {
    it(`${pgType}: satisfies_hash_partition accepts freshet's remainder for ${MODULI.join(', ')}`, async () => {
      await cluster.query('primary', `CREATE TABLE hp_${pgType} (k ${pgType}) PARTITION BY HASH (k)`)
      const keys = sampleKeys(pgType, 300, pgType.length * 7919)
      const rows: [string, number, number][] = []
      for (const k of keys) {
        const h = partitionHash(normalizeShardKey(k, keyType), keyType)
        for (const m of MODULI) rows.push([k, m, Number(h % BigInt(m))])
      }
      // one round trip: every (key, modulus, remainder) checked by the server; report any it refuses
      const { rows: refused } = await cluster.query<{ k: string; m: number; r: number }>(
        'primary',
        `SELECT k, m, r FROM unnest($1::text[], $2::int[], $3::int[]) AS t(k, m, r)
          WHERE NOT satisfies_hash_partition('hp_${pgType}'::regclass, m, r, k::${pgType})`,
        [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2])],
      )
      assert.deepEqual(refused, [], `${refused.length} of ${rows.length} refused`)
      // and the check can fail: a wrong remainder is refused
      const { rows: wrong } = await cluster.query<{ ok: boolean }>(
        'primary',
        `SELECT satisfies_hash_partition('hp_${pgType}'::regclass, 1024, $1, $2::${pgType}) AS ok`,
        [(rows[0]![2] + 1) % 1024, rows[0]![0]],
      )
      assert.equal(wrong[0]!.ok, false)
    })
  }

  it('rows inserted into PARTITION BY HASH (MODULUS 8) land in the partition of bucket % 8 (buckets: 1024)', async () => {
    await cluster.query(
      'primary',
      'CREATE TABLE orders_hp (customer_id bigint, note text) PARTITION BY HASH (customer_id)',
    )
    for (let r = 0; r < 8; r++) {
      await cluster.query(
        'primary',
        `CREATE TABLE orders_hp_${r} PARTITION OF orders_hp FOR VALUES WITH (MODULUS 8, REMAINDER ${r})`,
      )
    }
    await cluster.query('primary', 'INSERT INTO orders_hp SELECT g, NULL FROM generate_series(-500, 1500) g')
    await cluster.query('primary', 'INSERT INTO orders_hp VALUES (NULL, NULL)')
    const { rows } = await cluster.query<{ k: string | null; part: string }>(
      'primary',
      'SELECT customer_id::text AS k, tableoid::regclass::text AS part FROM orders_hp',
    )
    assert.equal(rows.length, 2002)
    const wrong = rows.filter((row) => {
      const bucket = Number(partitionHash(row.k === null ? null : BigInt(row.k), 'integer') % 1024n)
      return row.part !== `orders_hp_${bucket % 8}`
    })
    assert.deepEqual(wrong, [])
  })
})
