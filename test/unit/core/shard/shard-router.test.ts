// Shard keys from SQL and the shard decision: SQL in, shard and source out (table-driven), the ranked
// key sources, and the refusals (another shard in a transaction, writes spanning shards, cross_shard: error).

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { loadModule, parseSync } from 'libpg-query'
import { isFreshetError } from '../../../../src/core/errors.js'
import { extractShardKeys, ShardedTables } from '../../../../src/core/shard/extract-shard-keys.js'
import { hashBucket } from '../../../../src/core/shard/shard-key.js'
import { ShardMap } from '../../../../src/core/shard/shard-map.js'
import { AGGREGATE, type ShardRequest, ShardRouter } from '../../../../src/core/shard/shard-router.js'

const TABLES = new ShardedTables([
  { table: 'orders', key: 'customer_id', type: 'integer' },
  { table: 'customers', key: 'id', type: 'integer' },
  { table: 'sales.invoices', key: 'customer_id', type: 'integer' },
])
const { map } = ShardMap.build(
  { method: 'hash', buckets: 1024, keyType: 'integer' },
  [
    { partition_key_range: '0-511', target_backend: 'shard_0' },
    { partition_key_range: '512-1023', target_backend: 'shard_1' },
  ],
  ['shard_0', 'shard_1'],
)
const config = (crossShard: 'aggregate' | 'error') => ({
  shards: [
    { name: 'shard_0', nodes: ['s0_primary', 's0_replica_1'] },
    { name: 'shard_1', nodes: ['s1_primary', 's1_replica_1'] },
  ],
  tableTypes: new Map([
    ['orders', 'integer'],
    ['customers', 'integer'],
    ['sales.invoices', 'integer'],
  ] as const),
  tableKeys: new Map([
    ['orders', 'customer_id'],
    ['customers', 'id'],
    ['sales.invoices', 'customer_id'],
  ]),
  referenceTables: ['countries'],
  crossShard,
})
const router = new ShardRouter(config('aggregate'), map!)
const strictRouter = new ShardRouter(config('error'), map!)
const shardOf = (k: number) => (hashBucket(BigInt(k), 'integer', 1024) < 512 ? 'shard_0' : 'shard_1')
// two keys on each shard, found by the same hash PostgreSQL uses
const keysOn = (shard: string) =>
  Array.from({ length: 200 }, (_, i) => i + 1).filter((k) => shardOf(k) === shard)
const [A1, A2] = keysOn('shard_0') as [number, number]
const [B1] = keysOn('shard_1') as [number]

await loadModule()

const facts = (sql: string) => extractShardKeys(parseSync(sql).stmts, TABLES)
const req = (sql: string, write: boolean, more: Partial<ShardRequest> = {}): ShardRequest => ({
  write,
  facts: facts(sql),
  ...more,
})

describe('extractShardKeys', () => {
  const cases: [string, { keys?: string[]; unkeyed?: string[]; moves?: string[]; unknownMove?: boolean }][] =
    [
      ['SELECT * FROM orders WHERE customer_id = 42', { keys: ['orders=42'] }],
      ['SELECT * FROM public.orders o WHERE o.customer_id = $1 AND status = 2', { keys: ['orders=$1'] }],
      ['SELECT * FROM orders AS o WHERE orders.customer_id = 1', { unkeyed: ['orders'] }],
      ["SELECT * FROM orders WHERE customer_id = '7'::bigint", { keys: ['orders=7'] }],
      ['SELECT * FROM orders WHERE 42 = customer_id', { keys: ['orders=42'] }],
      [
        'SELECT * FROM orders WHERE customer_id IN (1, $2, 3)',
        { keys: ['orders=1', 'orders=$2', 'orders=3'] },
      ],
      ['SELECT * FROM orders WHERE customer_id NOT IN (1)', { unkeyed: ['orders'] }],
      ['SELECT * FROM orders WHERE customer_id = 1 OR customer_id = 2', { unkeyed: ['orders'] }],
      ['SELECT * FROM orders WHERE customer_id > 1', { unkeyed: ['orders'] }],
      ['SELECT * FROM orders WHERE customer_id = other_id', { unkeyed: ['orders'] }],
      ['SELECT count(*) FROM orders', { unkeyed: ['orders'] }],
      ['SELECT * FROM sales.invoices WHERE customer_id = 5', { keys: ['sales.invoices=5'] }],
      ['SELECT * FROM other.invoices WHERE customer_id = 5', {}],
      [
        'SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.customer_id = 9',
        { keys: ['orders=9'] },
      ],
      [
        'SELECT * FROM orders o, customers c WHERE o.customer_id = 9',
        { keys: ['orders=9'], unkeyed: ['customers'] },
      ],
      [
        'SELECT * FROM orders JOIN sales.invoices USING (customer_id) WHERE customer_id = 3',
        { keys: ['orders=3', 'sales.invoices=3'] },
      ],
      [
        'SELECT * FROM orders WHERE customer_id = 1 UNION ALL SELECT * FROM orders WHERE customer_id = 2',
        { keys: ['orders=1', 'orders=2'] },
      ],
      [
        'SELECT * FROM orders WHERE customer_id = 1 UNION SELECT * FROM orders',
        { keys: ['orders=1'], unkeyed: ['orders'] },
      ],
      [
        'SELECT * FROM customers WHERE id = 4 AND EXISTS (SELECT 1 FROM orders WHERE orders.customer_id = customers.id)',
        { keys: ['customers=4'], unkeyed: ['orders'] },
      ],
      ['WITH x AS (SELECT * FROM orders WHERE customer_id = 8) SELECT * FROM x', { keys: ['orders=8'] }],
      ['SELECT * FROM countries', {}],
      ['INSERT INTO orders (customer_id, total) VALUES (1, 2), ($1, 3)', { keys: ['orders=1', 'orders=$1'] }],
      ['INSERT INTO orders (total, customer_id) SELECT 2, 5', { keys: ['orders=5'] }],
      ['INSERT INTO orders VALUES (1, 2)', { unkeyed: ['orders'] }],
      ['INSERT INTO orders (customer_id) VALUES (DEFAULT)', { unkeyed: ['orders'] }],
      [
        'INSERT INTO orders (customer_id) SELECT customer_id FROM orders WHERE customer_id = 4',
        { keys: ['orders=4'], unkeyed: ['orders'] },
      ],
      [
        'INSERT INTO orders (customer_id) VALUES (1) ON CONFLICT (id) DO UPDATE SET customer_id = 2',
        { keys: ['orders=1'], moves: ['orders=2'] },
      ],
      ['UPDATE orders SET total = 0 WHERE customer_id = $3', { keys: ['orders=$3'] }],
      [
        'UPDATE orders SET customer_id = 7 WHERE customer_id = 6',
        { keys: ['orders=6'], moves: ['orders=7'] },
      ],
      [
        'UPDATE orders SET customer_id = customer_id + 1 WHERE customer_id = 6',
        { keys: ['orders=6'], unknownMove: true },
      ],
      [
        'UPDATE orders o SET total = 1 FROM customers c WHERE c.id = o.customer_id AND o.customer_id = 2',
        { keys: ['orders=2'] },
      ],
      ['DELETE FROM orders WHERE customer_id = 11', { keys: ['orders=11'] }],
      ['DELETE FROM orders USING customers c WHERE c.id = 3', { keys: ['customers=3'], unkeyed: ['orders'] }],
      ['DELETE FROM orders', { unkeyed: ['orders'] }],
      ['TRUNCATE orders', { unkeyed: ['orders'] }],
      ['CREATE INDEX ON orders (total)', { unkeyed: ['orders'] }],
      ['SELECT 1', {}],
    ]
  for (const [sql, want] of cases) {
    it(sql, () => {
      const f = facts(sql)
      const show = (r: (typeof f.keys)[number]) =>
        `${r.table}=${r.kind === 'param' ? `$${r.index}` : r.value}`
      assert.deepEqual(f.keys.map(show), want.keys ?? [])
      assert.deepEqual([...f.unkeyed].sort(), (want.unkeyed ?? []).sort())
      assert.deepEqual(f.moves.map(show), want.moves ?? [])
      assert.equal(f.unknownMove, want.unknownMove ?? false)
    })
  }
})

describe('ShardRouter.route: the statement', () => {
  const cases: [string, boolean, unknown[] | undefined, string, string][] = [
    [`SELECT * FROM orders WHERE customer_id = ${A1}`, false, undefined, 'shard_0', 'statement'],
    [`SELECT * FROM orders WHERE customer_id = ${B1}`, false, undefined, 'shard_1', 'statement'],
    ['SELECT * FROM orders WHERE customer_id = $1', false, [String(B1)], 'shard_1', 'statement'],
    ['SELECT * FROM orders WHERE customer_id = $1', false, [A1], 'shard_0', 'statement'],
    [`SELECT * FROM orders WHERE customer_id IN (${A1}, ${A2})`, false, undefined, 'shard_0', 'statement'],
    [`SELECT * FROM orders WHERE customer_id IN (${A1}, ${B1})`, false, undefined, AGGREGATE, 'cross_shard'],
    ['SELECT * FROM orders WHERE customer_id = $1', false, undefined, AGGREGATE, 'cross_shard'],
    ["SELECT * FROM orders WHERE customer_id = 'x'", false, undefined, AGGREGATE, 'cross_shard'],
    ['SELECT sum(total) FROM orders', false, undefined, AGGREGATE, 'cross_shard'],
    ['SELECT * FROM countries', false, undefined, 'shard_0', 'any'],
    ['SELECT now()', false, undefined, 'shard_0', 'any'],
    [`INSERT INTO orders (customer_id) VALUES (${B1}), ($1)`, true, [B1], 'shard_1', 'statement'],
    [
      `UPDATE orders SET customer_id = ${A2} WHERE customer_id = ${A1}`,
      true,
      undefined,
      'shard_0',
      'statement',
    ],
    [`DELETE FROM orders WHERE customer_id = $1`, true, [String(A1)], 'shard_0', 'statement'],
  ]
  for (const [sql, write, params, shard, source] of cases) {
    it(`${sql} ${params ? JSON.stringify(params) : ''}`, () => {
      const d = router.route(req(sql, write, params ? { params } : {}))
      assert.equal(d.shard, shard)
      assert.equal(d.source, source)
      assert.ok(Object.isFrozen(d))
    })
  }
  it('a cross-shard read names the unkeyed tables (the metric label)', () => {
    assert.deepEqual(router.route(req('SELECT count(*) FROM orders', false)).crossShardTables, ['orders'])
  })
})

describe('ShardRouter.route: ranked key sources', () => {
  const sql = `SELECT * FROM orders WHERE customer_id = ${A1}`
  const cases: [string, Partial<ShardRequest>, string, string][] = [
    [
      'ROUTE_TO a shard beats everything',
      { hints: { routeTo: 'shard_1', shardKey: String(A1) }, contextKey: A1 },
      'shard_1',
      'route_to',
    ],
    ['ROUTE_TO a node of a shard', { hints: { routeTo: 's1_replica_1' } }, 'shard_1', 'route_to'],
    ['ROUTE_TO primary selects no shard', { hints: { routeTo: 'primary' } }, 'shard_0', 'statement'],
    ['SHARD_KEY hint beats context', { hints: { shardKey: String(B1) }, contextKey: A1 }, 'shard_1', 'hint'],
    ['context beats SET', { contextKey: B1, sessionKey: String(A1) }, 'shard_1', 'context'],
    ['SET beats the statement', { sessionKey: String(B1) }, 'shard_1', 'session'],
    ['the statement last', {}, 'shard_0', 'statement'],
  ]
  for (const [what, more, shard, source] of cases) {
    it(what, () => {
      const d = router.route(req(sql, false, more))
      assert.deepEqual([d.shard, d.source], [shard, source])
    })
  }
  it('a hint key that is not a value of the key type is a ShardKeyError (ZF004)', () => {
    assert.throws(
      () => router.route(req(sql, false, { hints: { shardKey: 'abc' } })),
      (err: unknown) =>
        isFreshetError(err) &&
        err.sqlState === 'ZF004' &&
        /SHARD_KEY hint "abc" is not a integer/.test(err.message),
    )
  })
})

describe('ShardRouter.route: refusals (before anything is sent)', () => {
  const refused = (what: string, r: ShardRouter, request: ShardRequest, pattern: RegExp) =>
    it(what, () => {
      assert.throws(
        () => r.route(request),
        (err: unknown) =>
          isFreshetError(err) &&
          err.code === 'FRESHET_CROSS_SHARD' &&
          err.sqlState === 'ZF003' &&
          pattern.test(err.message),
      )
    })
  refused(
    'a write whose rows span shards',
    router,
    req(`INSERT INTO orders (customer_id) VALUES (${A1}), (${B1})`, true),
    /^freshet: a write spanning shards is refused \(its rows are on shard_0, shard_1/,
  )
  refused(
    'a write without a key',
    router,
    req('UPDATE orders SET total = 0', true),
    /no key names one shard; add equality on orders\.customer_id/,
  )
  refused(
    'an UPDATE moving the key to another shard',
    router,
    req(`UPDATE orders SET customer_id = ${B1} WHERE customer_id = ${A1}`, true),
    new RegExp(`setting orders.customer_id to ${B1} would move the row from shard_0 to shard_1`),
  )
  refused(
    'an UPDATE setting the key to an expression',
    router,
    req(`UPDATE orders SET customer_id = customer_id + 1 WHERE customer_id = ${A1}`, true),
    /may move rows/,
  )
  refused(
    'a reference-table write',
    router,
    req('UPDATE countries SET name = 1', true, { tables: ['countries'] }),
    /reference table countries/,
  )
  refused(
    'cross_shard: error names the missing key',
    strictRouter,
    req('SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id', false),
    /names no single shard is refused .*add equality on (orders\.customer_id, customers\.id|customers\.id, orders\.customer_id)/,
  )
  refused(
    'another shard inside a pinned transaction',
    router,
    req(`SELECT * FROM orders WHERE customer_id = ${B1}`, false, { pinned: 'shard_0' }),
    /the transaction is pinned to shard_0 and this statement is for shard_1 \(source: statement\); it was not sent/,
  )
  refused(
    'a cross-shard read inside a pinned transaction',
    router,
    req('SELECT count(*) FROM orders', false, { pinned: 'shard_1' }),
    /pinned to shard_1 and this statement names no single shard/,
  )
  refused(
    'a hint for another shard inside a pinned transaction',
    router,
    req('SELECT 1', false, { pinned: 'shard_0', hints: { shardKey: String(B1) } }),
    /pinned to shard_0 and this statement is for shard_1 \(source: hint\)/,
  )
  refused(
    'a write in a transaction on the aggregate node',
    router,
    req(`UPDATE orders SET total = 1 WHERE customer_id = ${A1}`, true, { pinned: AGGREGATE }),
    /pinned to the aggregate node/,
  )
  it('statements without a shard follow the pinned transaction; keyed reads stay on the aggregate pin', () => {
    assert.deepEqual(Object.values(router.route(req('SELECT 1', false, { pinned: 'shard_1' }))), [
      'shard_1',
      'transaction',
    ])
    const d = router.route(
      req(`SELECT * FROM orders WHERE customer_id = ${A1}`, false, { pinned: AGGREGATE }),
    )
    assert.deepEqual([d.shard, d.source], [AGGREGATE, 'transaction'])
  })
  it('ROUTE_TO one shard at a time writes a reference table', () => {
    const d = router.route(
      req('UPDATE countries SET name = 1', true, { tables: ['countries'], hints: { routeTo: 'shard_1' } }),
    )
    assert.equal(d.shard, 'shard_1')
  })
})

describe('ShardRouter: a transaction routes by the map it began under', () => {
  // a map that moves every bucket to shard_1: a transaction pinned to shard_0 under the old map keeps its keys
  const moved = ShardMap.build(
    { method: 'hash', buckets: 1024, keyType: 'integer' },
    [{ partition_key_range: '0-1023', target_backend: 'shard_1' }],
    ['shard_0', 'shard_1'],
  ).map!
  const r = new ShardRouter(config('aggregate'), map!)
  r.map = moved
  const sql = `UPDATE orders SET total = 1 WHERE customer_id = ${A1}`
  it('with the old map given: still shard_0, no refusal', () => {
    assert.equal(r.route(req(sql, true, { pinned: 'shard_0', map: map! })).shard, 'shard_0')
    assert.equal(r.route(req(sql, true, { sessionKey: String(A1), map: map! })).shard, 'shard_0')
  })
  it('without it (a new transaction): the new map, and a pin to shard_0 is refused', () => {
    assert.equal(r.route(req(sql, true)).shard, 'shard_1')
    assert.throws(
      () => r.route(req(sql, true, { pinned: 'shard_0' })),
      (e) => isFreshetError(e) && e.sqlState === 'ZF003',
    )
  })
})
