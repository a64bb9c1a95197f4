// The routing map: ranges per method, validation of gaps / overlaps / unknown targets by entry, lookups.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { hashBucket } from '../../../../src/core/shard/shard-key.js'
import { parseKeyRange, ShardMap, type ShardMapSpec } from '../../../../src/core/shard/shard-map.js'

const HASH: ShardMapSpec = { method: 'hash', buckets: 1024, keyType: 'integer' }
const RANGE: ShardMapSpec = { method: 'range', buckets: 1, keyType: 'integer' }
const LIST: ShardMapSpec = { method: 'list', buckets: 1, keyType: 'text' }
const e = (partition_key_range: string, target_backend: string) => ({ partition_key_range, target_backend })
const SHARDS = ['shard_0', 'shard_1']

describe('parseKeyRange', () => {
  const cases: [string, ShardMapSpec, unknown][] = [
    ['0-511', HASH, { kind: 'span', lo: 0n, hi: 511n }],
    [' 7 ', HASH, { kind: 'span', lo: 7n, hi: 7n }],
    ['0-1024', HASH, "buckets run from 0 to 1023; '0-1024' is outside"],
    ['min-5', HASH, 'hash ranges are bucket numbers; min/max are for method range'],
    ['10-5', HASH, "'10-5' runs backwards (the low end comes first)"],
    ['min--1', RANGE, { kind: 'span', lo: -(1n << 63n), hi: -1n }],
    ['-100--1', RANGE, { kind: 'span', lo: -100n, hi: -1n }],
    ['1000-max', RANGE, { kind: 'span', lo: 1000n, hi: (1n << 63n) - 1n }],
    ['1000-', RANGE, `'1000-' is not a key range like "1000-1999", "min-999" or "2000-max" (inclusive)`],
    ['DE, FR', LIST, { kind: 'values', values: ['DE', 'FR'] }],
    ['*', LIST, { kind: 'default' }],
    ['', LIST, 'must be a non-empty string'],
  ]
  for (const [text, spec, want] of cases) {
    it(`${JSON.stringify(text)} (${spec.method})`, () => assert.deepEqual(parseKeyRange(text, spec), want))
  }
})

describe('ShardMap.build', () => {
  const cases: [string, ShardMapSpec, ReturnType<typeof e>[], string[]][] = [
    ['exact cover', HASH, [e('0-511', 'shard_0'), e('512-1023', 'shard_1')], []],
    ['entries in any order', HASH, [e('512-1023', 'shard_1'), e('0-511', 'shard_0')], []],
    [
      'gap between entries',
      HASH,
      [e('0-500', 'shard_0'), e('512-1023', 'shard_1')],
      [
        'sharding.map: buckets 501-511 belong to no entry (gap between sharding.map[0] ("0-500" -> shard_0) and sharding.map[1] ("512-1023" -> shard_1))',
      ],
    ],
    [
      'gap at the start and end',
      HASH,
      [e('1-1000', 'shard_0')],
      [
        'sharding.map: buckets 0 belong to no entry (gap before sharding.map[0] ("1-1000" -> shard_0))',
        'sharding.map: buckets 1001-1023 belong to no entry (gap after sharding.map[0] ("1-1000" -> shard_0))',
      ],
    ],
    [
      'overlap names both entries',
      HASH,
      [e('0-600', 'shard_0'), e('512-1023', 'shard_1')],
      ['sharding.map[1].partition_key_range: buckets 512-600 overlap sharding.map[0] ("0-600" -> shard_0)'],
    ],
    [
      'unknown target',
      HASH,
      [e('0-1023', 'shard_7')],
      ["sharding.map[0].target_backend: unknown shard 'shard_7' (shards: shard_0, shard_1)"],
    ],
    ['range covers min..max', RANGE, [e('min-999', 'shard_0'), e('1000-max', 'shard_1')], []],
    [
      'range without max',
      RANGE,
      [e('min-999', 'shard_0'), e('1000-5000', 'shard_1')],
      ['sharding.map: keys 5001-max belong to no entry (gap after sharding.map[1] ("1000-5000" -> shard_1))'],
    ],
    [
      'list value twice',
      LIST,
      [e('DE,FR', 'shard_0'), e('FR', 'shard_1')],
      ['sharding.map[1].partition_key_range: value FR overlaps sharding.map[0] ("DE,FR" -> shard_0)'],
    ],
    [
      'two list defaults',
      LIST,
      [e('*', 'shard_0'), e('*', 'shard_1')],
      [
        'sharding.map[1].partition_key_range: a second default entry; sharding.map[0] ("*" -> shard_0) is already the default',
      ],
    ],
    ['no entries', HASH, [], ['sharding.map: no entries: buckets 0-1023 belong to no shard']],
  ]
  for (const [what, spec, entries, want] of cases) {
    it(what, () => {
      const { map, issues } = ShardMap.build(spec, entries, SHARDS)
      assert.deepEqual(
        issues.map((i) => `${i.path}: ${i.message}`),
        want,
      )
      assert.equal(map === null, want.length > 0)
    })
  }
})

describe('ShardMap lookups', () => {
  it('hash: the bucket of the key decides', () => {
    const { map } = ShardMap.build(HASH, [e('0-511', 'shard_0'), e('512-1023', 'shard_1')], SHARDS)
    for (const k of [0n, 1n, 42n, -5n, 1234567890123n]) {
      const b = hashBucket(k, 'integer', 1024)
      assert.equal(map!.shardOf(k, 'integer'), b < 512 ? 'shard_0' : 'shard_1', `key ${k} bucket ${b}`)
    }
  })
  it('range: bounds are inclusive', () => {
    const { map } = ShardMap.build(RANGE, [e('min-999', 'shard_0'), e('1000-max', 'shard_1')], SHARDS)
    assert.equal(map!.shardOf(999n, 'integer'), 'shard_0')
    assert.equal(map!.shardOf(1000n, 'integer'), 'shard_1')
    assert.equal(map!.shardOf(null, 'integer'), null)
  })
  it('list: listed values, then the default', () => {
    const { map } = ShardMap.build(LIST, [e('DE,FR', 'shard_0'), e('*', 'shard_1')], SHARDS)
    assert.equal(map!.shardOf('FR', 'text'), 'shard_0')
    assert.equal(map!.shardOf('US', 'text'), 'shard_1')
    const { map: strict } = ShardMap.build(LIST, [e('DE,FR', 'shard_0'), e('US', 'shard_1')], SHARDS)
    assert.equal(strict!.shardOf('JP', 'text'), null)
  })
})
