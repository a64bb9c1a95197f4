// PostgreSQL's hash-partitioning functions, checked against values a PostgreSQL 17 server returned
// (test/integration/sharding/hash-agreement.test.ts recomputes thousands of them on a live server).

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  HASH_PARTITION_SEED,
  hashBytesExtended,
  hashCombine64,
  hashInt8Extended,
  hashTextExtended,
} from '../../../../src/core/shard/pg-hash.js'
import { hashBucket, normalizeShardKey, partitionHash } from '../../../../src/core/shard/shard-key.js'

const s64 = (v: bigint) => BigInt.asIntN(64, v)

describe('pg-hash', () => {
  it("HASH_PARTITION_SEED is partition.h's", () => {
    assert.equal(HASH_PARTITION_SEED, 8816678312871386365n)
  })
  // SELECT hashint8extended(42, 8816678312871386365) ... on PostgreSQL 17
  const server: [string, () => bigint, bigint][] = [
    ['hashint8extended(42, seed)', () => hashInt8Extended(42n, HASH_PARTITION_SEED), 7363975540656877951n],
    ['hashint8extended(-7, seed)', () => hashInt8Extended(-7n, HASH_PARTITION_SEED), -7298374200968567817n],
    ['hashint4extended(-1, 0)', () => hashInt8Extended(-1n, 0n), -1888257769727981238n],
    [
      "hashtextextended('hello world, longer text', seed)",
      () => hashTextExtended('hello world, longer text', HASH_PARTITION_SEED),
      -4336836089048810056n,
    ],
  ]
  for (const [what, f, want] of server) it(what, () => assert.equal(s64(f()), want))

  it('every tail length 0..11 and a long key take distinct paths and stay 64-bit', () => {
    const seen = new Set<bigint>()
    for (let n = 0; n <= 40; n++) {
      const h = hashBytesExtended(
        new Uint8Array(n).map((_, i) => (i * 37 + 11) & 0xff),
        HASH_PARTITION_SEED,
      )
      assert.ok(h >= 0n && h < 1n << 64n)
      seen.add(h)
    }
    assert.equal(seen.size, 41)
  })
  it('hash_combine64(0, b) is b plus the golden-ratio constant, wrapping', () => {
    assert.equal(hashCombine64(0n, 0n), 0x49a0f4dd15e5a8e3n)
    assert.equal(hashCombine64(0n, (1n << 64n) - 1n), 0x49a0f4dd15e5a8e2n)
  })
  it('the 32-bit bucket fast path for integers equals the 64-bit computation', () => {
    const keys = [
      0n,
      1n,
      -1n,
      2147483647n,
      -2147483648n,
      2147483648n,
      -2147483649n,
      (1n << 63n) - 1n,
      -(1n << 63n),
    ]
    for (let i = 0n; i < 3000n; i++) keys.push(i * 7919n - 10000n, i * 0x9e3779b97f4an)
    for (const buckets of [1, 2, 1024, 1000, 7, 65536, 2147483647]) {
      for (const k of keys) {
        const slow = Number(partitionHash(BigInt.asIntN(64, k), 'integer') % BigInt(buckets))
        assert.equal(
          hashBucket(BigInt.asIntN(64, k), 'integer', buckets),
          slow,
          `key ${k} buckets ${buckets}`,
        )
      }
    }
  })
  it('int2, int4 and int8 values hash alike; a NULL key is bucket 0', () => {
    assert.equal(partitionHash(5n, 'integer'), partitionHash(normalizeShardKey('5', 'integer'), 'integer'))
    assert.equal(hashBucket(null, 'integer', 1024), 0)
  })
})

describe('normalizeShardKey', () => {
  const cases: [unknown, 'integer' | 'text' | 'uuid', bigint | string | null][] = [
    [' 42 ', 'integer', 42n],
    ['-9223372036854775808', 'integer', -(1n << 63n)],
    ['9223372036854775808', 'integer', null],
    ['4.0', 'integer', null],
    ['abc', 'integer', null],
    [7, 'integer', 7n],
    [7.5, 'integer', null],
    [12n, 'integer', 12n],
    ['eu', 'text', 'eu'],
    [3, 'text', '3'],
    ['A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'uuid', 'a0eebc999c0b4ef8bb6d6bb9bd380a11'],
    ['{a0eebc999c0b4ef8bb6d6bb9bd380a11}', 'uuid', 'a0eebc999c0b4ef8bb6d6bb9bd380a11'],
    ['not-a-uuid', 'uuid', null],
  ]
  for (const [raw, type, want] of cases) {
    it(`${JSON.stringify(String(raw))} as ${type}`, () => assert.equal(normalizeShardKey(raw, type), want))
  }
})
