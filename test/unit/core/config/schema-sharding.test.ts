// The `shards` / `sharding` config keys: defaults, every error with its key path, cluster filled from the
// first shard, and the JSON Schema carrying the new keys.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { configJsonSchema } from '../../../../src/core/config/json-schema.js'
import { validateConfig } from '../../../../src/core/config/parse-config.js'
import { ConfigError } from '../../../../src/core/errors.js'
import { refuseUnroutedSharding } from '../../../../src/core/shard/unrouted-sharding.js'
import { createPool } from '../../../../src/library/create-pool.js'

const shards = [
  {
    name: 'shard_0',
    primary: { name: 's0_primary', url: 'postgres://s0' },
    replicas: [{ name: 's0_replica_1', url: 'postgres://s0r' }],
  },
  { name: 'shard_1', primary: { name: 's1_primary', url: 'postgres://s1' } },
]
const sharding = {
  tables: { orders: { key: 'customer_id' }, Customers: { key: 'ID' } },
  reference_tables: ['countries'],
  map: [
    { partition_key_range: '0-511', target_backend: 'shard_0' },
    { partition_key_range: '512-1023', target_backend: 'shard_1' },
  ],
  aggregate: { name: 'federated', url: 'postgres://agg' },
}

function issues(doc: Record<string, unknown>): string[] {
  try {
    validateConfig(doc)
  } catch (err) {
    assert.ok(err instanceof ConfigError)
    return err.issues.map((i) => `${i.path}: ${i.message}`)
  }
  return []
}

describe('sharding config', () => {
  it('fills defaults, lower-cases names, and stands the first shard in for cluster', () => {
    const c = validateConfig({ shards, sharding })
    assert.equal(c.sharding?.method, 'hash')
    assert.equal(c.sharding?.buckets, 1024)
    assert.equal(c.sharding?.cross_shard, 'aggregate')
    assert.deepEqual(c.sharding?.tables.customers, { key: 'id', type: 'integer' })
    assert.equal(c.cluster.primary.name, 's0_primary')
    assert.deepEqual(
      c.cluster.replicas.map((r) => r.name),
      ['s0_replica_1'],
    )
    assert.equal(c.shards?.[1]?.replicas.length, 0)
    // a validated config written back (GET then PUT /api/v1/config) is still valid
    assert.deepEqual(issues(JSON.parse(JSON.stringify({ ...c, version: 2 }))), [])
  })
  const cases: [string, Record<string, unknown>, string[]][] = [
    ['neither cluster nor shards', {}, ['cluster: required (or shards, for a sharded setup)']],
    [
      'cluster beside shards',
      { cluster: { primary: { name: 'p', url: 'postgres://p' } }, shards, sharding },
      ['shards: use either cluster or shards, not both (with shards, cluster is the first shard)'],
    ],
    ['shards without sharding', { shards }, ['sharding: required with shards: method, tables and map']],
    [
      'replica discovery with shards',
      {
        cluster: {
          primary: { name: 's0_primary', url: 'postgres://s0' },
          discovery: { endpoint: 'http://discovery.internal/nodes' },
        },
        shards,
        sharding,
      },
      [
        "cluster.discovery: replica discovery is not available with shards in this build: list each shard's replicas in shards[n].replicas",
      ],
    ],
    [
      'duplicate node and shard names',
      {
        shards: [
          shards[0],
          { ...shards[1], name: 'shard_0', primary: { name: 's0_replica_1', url: 'postgres://x' } },
        ],
        sharding: { ...sharding, map: [{ partition_key_range: '0-1023', target_backend: 'shard_0' }] },
      },
      [
        "shards[1].name: duplicate shard name 'shard_0'",
        "shards[1].primary.name: duplicate node name 's0_replica_1' (also shards[0].replicas[0])",
      ],
    ],
    [
      'aggregate required for cross_shard: aggregate',
      { shards, sharding: { ...sharding, aggregate: null } },
      ['sharding.aggregate: required when cross_shard is aggregate (or set cross_shard: error)'],
    ],
    [
      'a gap and an unknown target, by entry',
      {
        shards,
        sharding: {
          ...sharding,
          map: [
            { partition_key_range: '0-500', target_backend: 'shard_0' },
            { partition_key_range: '512-1023', target_backend: 'shard_2' },
          ],
        },
      },
      [
        "sharding.map[1].target_backend: unknown shard 'shard_2' (shards: shard_0, shard_1)",
        'sharding.map: buckets 501-511 belong to no entry (gap between sharding.map[0] ("0-500" -> shard_0) and sharding.map[1] ("512-1023" -> shard_2))',
      ],
    ],
    [
      'range maps need integer keys',
      {
        shards,
        sharding: {
          ...sharding,
          method: 'range',
          tables: { orders: { key: 'region', type: 'text' } },
          map: [{ partition_key_range: 'min-max', target_backend: 'shard_0' }],
        },
      },
      ['sharding.tables.orders.type: range maps need integer keys (got text); use hash or list'],
    ],
    [
      'bad key column, unknown key and a reference table that is sharded',
      {
        shards,
        sharding: {
          ...sharding,
          tables: { orders: { key: 'customer id', column: 'x' } },
          reference_tables: ['orders'],
        },
      },
      [
        'sharding.tables.orders.key: a plain column name',
        'sharding.tables.orders.column: unknown key (check the spelling against docs/configuration.md or schema/freshet.schema.json)',
        "sharding.reference_tables: 'orders' is also a sharded table",
      ],
    ],
  ]
  for (const [what, doc, want] of cases) it(what, () => assert.deepEqual(issues(doc), want))

  it('the library face refuses replica discovery with shards at createPool, naming cluster.discovery', () => {
    const doc = {
      cluster: {
        primary: { name: 's0_primary', url: 'postgres://s0' },
        discovery: { endpoint: 'http://discovery.internal/nodes' },
      },
      shards,
      sharding,
    }
    assert.throws(
      () => createPool(doc),
      (err) => err instanceof ConfigError && err.issues.some((i) => i.path === 'cluster.discovery'),
    )
    // the same cluster without discovery (the first shard written back) is a sharded pool
    const { discovery: _, ...cluster } = doc.cluster
    const pool = createPool({ ...doc, cluster })
    assert.deepEqual(
      pool.routing.shardNames.filter((n) => !n.startsWith('@')),
      ['shard_0', 'shard_1'],
    )
    return pool.end()
  })

  it('the reference-table overlap is reported once the tables parse', () => {
    assert.deepEqual(issues({ shards, sharding: { ...sharding, reference_tables: ['orders'] } }), [
      "sharding.reference_tables: 'orders' is also a sharded table",
    ])
  })
  it('the JSON Schema lists shards and sharding', () => {
    const props = (configJsonSchema() as { properties: Record<string, unknown> }).properties
    assert.ok(props.shards && props.sharding)
  })
  it('a sharded config is refused where statements would run until routing is wired (clear, at shards)', () => {
    assert.throws(
      () => refuseUnroutedSharding(validateConfig({ shards, sharding })),
      /shards: a sharded config runs through ShardedRouting/,
    )
    refuseUnroutedSharding(validateConfig({ cluster: { primary: { name: 'p', url: 'postgres://p' } } }))
  })
})
