// The run-time routing map: API entries laid over the config map, ids and origins, ttl on a fake clock,
// the monotonic version across deletes, expiry and config reloads, and refusals by key path.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type RoutingMapBase, RoutingMapStore } from '../../../../src/core/shard/routing-map-store.js'
import { hashBucket } from '../../../../src/core/shard/shard-key.js'
import type { ShardMapSpec } from '../../../../src/core/shard/shard-map.js'

const HASH: ShardMapSpec = { method: 'hash', buckets: 1024, keyType: 'integer' }
const RANGE: ShardMapSpec = { method: 'range', buckets: 1024, keyType: 'integer' }
const LIST: ShardMapSpec = { method: 'list', buckets: 1024, keyType: 'text' }
const e = (partition_key_range: string, target_backend: string) => ({ partition_key_range, target_backend })
const SHARDS = ['shard_0', 'shard_1', 'shard_2']
const hashBase: RoutingMapBase = {
  spec: HASH,
  entries: [e('0-511', 'shard_0'), e('512-1023', 'shard_1')],
  shards: SHARDS,
}

function clock(start = 1_000_000) {
  let t = start
  return { now: () => t, advance: (ms: number) => (t += ms) }
}

function store(base = hashBase, c = clock()) {
  return new RoutingMapStore(base, { now: c.now })
}

function applied(s: RoutingMapStore, body: unknown) {
  const checked = s.check(body)
  assert.ok(checked.ok, JSON.stringify(!checked.ok && checked.issues))
  return s.apply(checked.proposal)
}

const effective = (s: RoutingMapStore) =>
  s.map.entries.map((x) => `${x.partition_key_range}->${x.target_backend}`)

describe('RoutingMapStore', () => {
  it('starts at version 1 with the config entries, origin config', () => {
    const s = store()
    assert.equal(s.version, 1)
    assert.deepEqual(
      s.entries().map((x) => [x.id, x.origin, x.ttl_left]),
      [
        ['config:0', 'config', null],
        ['config:1', 'config', null],
      ],
    )
    assert.equal(s.map.shardOfPoint(100n), 'shard_0')
  })

  it('lays an API entry over the config map, splitting the entry it cuts into', () => {
    const s = store()
    const seen: number[] = []
    s.onChange((_m, v) => seen.push(v))
    const r = applied(s, { partition_key_range: '100-199', target_backend: 'shard_2' })
    assert.deepEqual([r.id, r.version, s.version, seen], ['api:1', 2, 2, [2]])
    assert.deepEqual(effective(s), [
      '0-99->shard_0',
      '100-199->shard_2',
      '200-511->shard_0',
      '512-1023->shard_1',
    ])
    assert.equal(s.map.shardOfPoint(150n), 'shard_2')
    // a key routes through the new map as its bucket says
    const key = [...Array(5000).keys()].find((k) => {
      const b = hashBucket(BigInt(k), 'integer', 1024)
      return b >= 100 && b <= 199
    })!
    assert.equal(s.map.shardOf(BigInt(key), 'integer'), 'shard_2')
  })

  it('reports the current owners of a posted range piece by piece', () => {
    const s = store()
    const checked = s.check({ partition_key_range: '500-520', target_backend: 'shard_2' })
    assert.ok(checked.ok)
    assert.deepEqual(
      checked.proposal.owners.map((o) => [o.shard, o.text]),
      [
        ['shard_0', '500-511'],
        ['shard_1', '512-520'],
      ],
    )
    assert.equal(checked.proposal.baseVersion, 1)
    assert.equal(s.version, 1, 'check does not apply')
  })

  it('a later entry wins where entries overlap; deleting it restores the one below', () => {
    const s = store()
    applied(s, { partition_key_range: '0-299', target_backend: 'shard_2' })
    const second = applied(s, { partition_key_range: '200-299', target_backend: 'shard_1' })
    assert.deepEqual(effective(s), [
      '0-199->shard_2',
      '200-299->shard_1',
      '300-511->shard_0',
      '512-1023->shard_1',
    ])
    const removed = s.remove(second.id)
    assert.ok(removed && removed !== 'config')
    assert.equal(removed.version, 4)
    assert.deepEqual(effective(s), ['0-299->shard_2', '300-511->shard_0', '512-1023->shard_1'])
    assert.equal(s.remove('api:1') !== null, true)
    assert.deepEqual(effective(s), ['0-511->shard_0', '512-1023->shard_1'])
    assert.equal(s.version, 5, 'the version only goes up')
    assert.equal(s.remove('api:1'), null, 'an id is gone once deleted')
    assert.equal(s.remove('config:0'), 'config')
    assert.equal(s.remove('nonsense'), null)
  })

  it('ttl: counts down on the clock, expires back to the config map with a new version', () => {
    const c = clock()
    const s = store(hashBase, c)
    applied(s, { partition_key_range: '0-9', target_backend: 'shard_2', ttl: 60 })
    applied(s, { partition_key_range: '10-19', target_backend: 'shard_2', ttl: 120 })
    assert.equal(s.nextExpiry(), 1_000_000 + 60_000)
    c.advance(59_500)
    assert.deepEqual(
      s
        .entries()
        .filter((x) => x.origin === 'api')
        .map((x) => [x.id, x.ttl, x.ttl_left]),
      [
        ['api:1', 60, 1],
        ['api:2', 120, 61],
      ],
    )
    assert.deepEqual(s.expire(), [])
    c.advance(500)
    assert.deepEqual(s.expire(), ['api:1'])
    assert.equal(s.version, 4)
    assert.equal(s.map.shardOfPoint(5n), 'shard_0')
    assert.equal(s.map.shardOfPoint(15n), 'shard_2')
    c.advance(60_000)
    assert.deepEqual(s.expire(), ['api:2'])
    assert.equal(s.nextExpiry(), null)
    assert.deepEqual(effective(s), ['0-511->shard_0', '512-1023->shard_1'])
  })

  it('refuses a proposal checked against an older version', () => {
    const s = store()
    const a = s.check({ partition_key_range: '0-9', target_backend: 'shard_2' })
    const b = s.check({ partition_key_range: '5-19', target_backend: 'shard_1' })
    assert.ok(a.ok && b.ok)
    s.apply(a.proposal)
    assert.throws(() => s.apply(b.proposal), /moved from version 1 to 2/)
  })

  const invalid: [string, unknown, [string, RegExp][]][] = [
    ['not an object', [1], [['', /expected a JSON object/]]],
    [
      'missing range and target',
      {},
      [
        ['partition_key_range', /required/],
        ['target_backend', /required/],
      ],
    ],
    [
      'range outside the buckets',
      { partition_key_range: '1000-2000', target_backend: 'shard_1' },
      [['partition_key_range', /0 to 1023/]],
    ],
    [
      'backwards range',
      { partition_key_range: '9-1', target_backend: 'shard_1' },
      [['partition_key_range', /backwards/]],
    ],
    [
      'unknown shard',
      { partition_key_range: '0-9', target_backend: 'shard_9' },
      [['target_backend', /unknown shard 'shard_9'/]],
    ],
    [
      'ttl not whole seconds',
      { partition_key_range: '0-9', target_backend: 'shard_1', ttl: 1.5 },
      [['ttl', /whole number/]],
    ],
    [
      'ttl zero',
      { partition_key_range: '0-9', target_backend: 'shard_1', ttl: 0 },
      [['ttl', /whole number/]],
    ],
    [
      'force not boolean',
      { partition_key_range: '0-9', target_backend: 'shard_1', force: 'yes' },
      [['force', /true or false/]],
    ],
    [
      'unknown key',
      { partition_key_range: '0-9', target_backend: 'shard_1', tll: 5 },
      [['tll', /unknown key/]],
    ],
  ]
  for (const [name, body, want] of invalid) {
    it(`refuses ${name}, naming the key path`, () => {
      const s = store()
      const checked = s.check(body)
      assert.equal(checked.ok, false)
      if (checked.ok) return
      assert.deepEqual(
        checked.issues.map((i) => i.path),
        want.map((w) => w[0]),
      )
      for (const [k, i] of checked.issues.entries()) assert.match(i.message, want[k]![1])
      assert.equal(s.version, 1)
    })
  }

  it('range maps: min/max ends, owners and overlay', () => {
    const s = store({
      spec: RANGE,
      entries: [e('min-999', 'shard_0'), e('1000-max', 'shard_1')],
      shards: SHARDS,
    })
    const checked = s.check({ partition_key_range: '900-1099', target_backend: 'shard_2' })
    assert.ok(checked.ok)
    assert.deepEqual(
      checked.proposal.owners.map((o) => [o.shard, o.text]),
      [
        ['shard_0', '900-999'],
        ['shard_1', '1000-1099'],
      ],
    )
    s.apply(checked.proposal)
    assert.deepEqual(effective(s), ['min-899->shard_0', '900-1099->shard_2', '1100-max->shard_1'])
  })

  it('list maps: values move one by one, the default can move, owners grouped by shard', () => {
    const s = store({
      spec: LIST,
      entries: [e('DE,FR', 'shard_0'), e('US', 'shard_1'), e('*', 'shard_2')],
      shards: SHARDS,
    })
    const checked = s.check({ partition_key_range: 'FR,US,JP', target_backend: 'shard_1' })
    assert.ok(checked.ok)
    assert.deepEqual(
      checked.proposal.owners.map((o) => [o.shard, o.text]),
      [
        ['shard_0', 'FR'],
        ['shard_1', 'US'],
        ['shard_2', 'JP'],
      ],
    )
    s.apply(checked.proposal)
    assert.equal(s.map.shardOf('FR', 'text'), 'shard_1')
    assert.equal(s.map.shardOf('DE', 'text'), 'shard_0')
    assert.equal(s.map.shardOf('JP', 'text'), 'shard_1')
    assert.equal(s.map.shardOf('BR', 'text'), 'shard_2')
    applied(s, { partition_key_range: '*', target_backend: 'shard_0' })
    assert.equal(s.map.shardOf('BR', 'text'), 'shard_0')
  })

  it('config reload: API entries and the version survive; a changed base map bumps it', () => {
    const s = store()
    applied(s, { partition_key_range: '0-9', target_backend: 'shard_2' })
    const same = s.reloadConfig(hashBase)
    assert.deepEqual(same, { dropped: [], changed: false })
    assert.equal(s.version, 2, 'an unchanged map keeps its version')
    const moved = s.reloadConfig({ ...hashBase, entries: [e('0-255', 'shard_0'), e('256-1023', 'shard_1')] })
    assert.deepEqual(moved, { dropped: [], changed: true })
    assert.equal(s.version, 3)
    assert.deepEqual(effective(s), ['0-9->shard_2', '10-255->shard_0', '256-1023->shard_1'])
    assert.equal(s.entries().find((x) => x.id === 'api:1')?.origin, 'api')
  })

  it('config reload: entries whose shard left, or whose key space changed, are dropped and said', () => {
    const s = store()
    applied(s, { partition_key_range: '0-9', target_backend: 'shard_2' })
    const r = s.reloadConfig({ ...hashBase, shards: ['shard_0', 'shard_1'] })
    assert.deepEqual(r.dropped, [{ id: 'api:1', reason: 'shard shard_2 is no longer configured' }])
    assert.equal(s.map.shardOfPoint(5n), 'shard_0')
    applied(s, { partition_key_range: '0-9', target_backend: 'shard_1' })
    const r2 = s.reloadConfig({
      ...hashBase,
      spec: { ...HASH, buckets: 2048 },
      entries: [e('0-2047', 'shard_0')],
    })
    assert.equal(r2.dropped.length, 1)
    assert.match(r2.dropped[0]!.reason, /buckets/)
  })

  it('config reload with an invalid base map throws and keeps the running map', () => {
    const s = store()
    applied(s, { partition_key_range: '0-9', target_backend: 'shard_2' })
    assert.throws(
      () => s.reloadConfig({ ...hashBase, entries: [e('0-100', 'shard_0')] }),
      /belong to no entry/,
    )
    assert.equal(s.version, 2)
    assert.equal(s.map.shardOfPoint(5n), 'shard_2')
  })
})
