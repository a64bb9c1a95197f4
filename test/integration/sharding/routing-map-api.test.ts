// The routing-map admin API on real shards: GET shows the config map, POST checks the range against the
// rows on the current owner and on the target (409 with the counts until the rows are copied, or with
// force), refuses a target its health checks do not acknowledge, applies with a new version that the
// router uses at once; DELETE by id, ttl expiry back to the config map, 422 by key path, bearer token.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { RoutingMapHost } from '../../../src/admin/admin-routing-map.js'
import { type AdminServer, startAdmin } from '../../../src/admin/admin-server.js'
import { countRows } from '../../../src/backend/count-rows.js'
import { validateConfig } from '../../../src/core/config/parse-config.js'
import { type ShardSetup, shardSetupOf } from '../../../src/core/shard/router-from-config.js'
import { RoutingMapStore } from '../../../src/core/shard/routing-map-store.js'
import { hashBucket } from '../../../src/core/shard/shard-key.js'
import { RoutingEngine } from '../../../src/routing/routing-engine.js'
import { type ShardedCluster, startShardedCluster } from '../../cluster/index.js'
import { configFor } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'

// biome-ignore lint/suspicious/noExplicitAny: JSON answers are read field by field in the asserts
type Json = Record<string, any>

const TOKEN = 'map-secret'
const CUSTOMERS = 400

describe('routing-map API on real shards', () => {
  let sc: ShardedCluster
  let setup: ShardSetup
  let store: RoutingMapStore
  let admin: AdminServer
  const engines = new Map<string, RoutingEngine>()
  const drains: { from: readonly string[]; version: number }[] = []
  const bucket = (customer: number) => hashBucket(BigInt(customer), 'integer', 1024)
  const customersIn = (lo: number, hi: number) =>
    Array.from({ length: CUSTOMERS }, (_, i) => i + 1).filter((c) => bucket(c) >= lo && bucket(c) <= hi)
  const api = async (method: string, path: string, body?: unknown, token: string | null = TOKEN) => {
    const res = await fetch(`${admin.url}${path}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    })
    return { status: res.status, body: (await res.json()) as Json }
  }
  const countOn = async (shard: string, lo: number, hi: number) => {
    const r = await sc
      .shard(shard)
      .cluster.query(
        'primary',
        `SELECT count(*)::int AS n FROM orders WHERE customer_id = ANY('{${customersIn(lo, hi).join(',')}}'::bigint[])`,
      )
    return (r.rows[0] as { n: number }).n
  }

  before(async () => {
    sc = await startShardedCluster({ shards: 3, replicasPerShard: 0 })
    await sc.createShardedTable('orders', 'id bigint NOT NULL, customer_id bigint NOT NULL', 'customer_id')
    setup = shardSetupOf(validateConfig(sc.config()))!
    // every customer's two orders on the shard the config map gives it
    const rows = new Map<string, string[]>()
    for (let c = 1; c <= CUSTOMERS; c++) {
      const shard = setup.map.shardOf(BigInt(c), 'integer')!
      rows.set(shard, [...(rows.get(shard) ?? []), `(${c * 10}, ${c}), (${c * 10 + 1}, ${c})`])
    }
    for (const [shard, values] of rows) {
      await sc.shard(shard).cluster.query('primary', `INSERT INTO orders VALUES ${values.join(', ')}`)
    }
    store = new RoutingMapStore({
      spec: setup.map.spec,
      entries: setup.map.entries,
      shards: sc.shards.map((s) => s.name),
    })
    store.onChange((map) => {
      setup.router.map = map
    })
    for (const s of sc.shards) {
      const e = new RoutingEngine(validateConfig(configFor(s.cluster, { version: 1 })))
      await e.start()
      engines.set(s.name, e)
    }
    const host: RoutingMapHost = {
      store,
      tables: [{ table: 'orders', key: 'customer_id', type: 'integer' }],
      count: (shard, table, where, params) =>
        countRows(sc.shard(shard).cluster.primary.url('app'), table, where, params, 5000),
      health: (shard) => {
        const p = engines
          .get(shard)!
          .snapshot()
          .find((n) => n.role === 'primary')
        return p?.healthy && p.breaker !== 'open'
          ? { ok: true }
          : {
              ok: false,
              reason: `primary ${p?.name} is ${p?.healthy ? `breaker ${p.breaker}` : 'unhealthy'}`,
            }
      },
      drain: async (from, version) => {
        drains.push({ from, version })
        return {
          from,
          statements: 0,
          transactions: 0,
          still_running: 0,
          waited_ms: 0,
          closed_idle_connections: 0,
        }
      },
      log: () => {},
    }
    admin = await startAdmin({
      engine: engines.get('shard_0')!,
      routingMap: host,
      admin: { listen: '127.0.0.1:0', token: TOKEN },
    })
  })

  after(async () => {
    await admin?.close()
    for (const e of engines.values()) await e.stop()
    await sc?.stop()
  })

  it('GET shows version 1 and the config entries', async () => {
    const r = await api('GET', '/api/v1/routing-map')
    assert.equal(r.status, 200)
    assert.equal(r.body.version, 1)
    assert.equal(r.body.method, 'hash')
    assert.deepEqual(
      r.body.entries.map((e: Json) => [e.id, e.partition_key_range, e.target_backend, e.origin, e.ttl_left]),
      [
        ['config:0', '0-340', 'shard_0', 'config', null],
        ['config:1', '341-681', 'shard_1', 'config', null],
        ['config:2', '682-1023', 'shard_2', 'config', null],
      ],
    )
  })

  it('is protected by the admin token like the rest of the API', async () => {
    assert.equal((await api('GET', '/api/v1/routing-map', undefined, null)).status, 401)
    const r = await api(
      'POST',
      '/api/v1/routing-map',
      { partition_key_range: '0-9', target_backend: 'shard_1' },
      'wrong',
    )
    assert.equal(r.status, 401)
    assert.equal(store.version, 1)
  })

  it('422 with the key path for an invalid entry; 400 for a body that is not JSON', async () => {
    const r = await api('POST', '/api/v1/routing-map', {
      partition_key_range: '0-5000',
      target_backend: 'shard_7',
      ttl: -1,
    })
    assert.equal(r.status, 422)
    assert.deepEqual(
      r.body.issues.map((i: { path: string }) => i.path),
      ['partition_key_range', 'target_backend', 'ttl'],
    )
    assert.equal((await api('POST', '/api/v1/routing-map', '{nope')).status, 400)
    assert.equal((await api('PUT', '/api/v1/routing-map', {})).status, 405)
    assert.equal(store.version, 1)
  })

  it('409 with the counts while the target holds fewer rows of the range; applies once they are copied', async () => {
    const moved = customersIn(0, 99)
    assert.ok(moved.length > 10, 'the range holds customers')
    const owner = await countOn('shard_0', 0, 99)
    assert.equal(owner, moved.length * 2)
    const refused = await api('POST', '/api/v1/routing-map', {
      partition_key_range: '0-99',
      target_backend: 'shard_1',
    })
    assert.equal(refused.status, 409)
    assert.match(
      refused.body.error,
      /shard_1 holds fewer rows of 0-99 than the current owners \(orders: 0 < \d+\)/,
    )
    assert.deepEqual(refused.body.counts, [
      {
        table: 'orders',
        owners: [{ shard: 'shard_0', range: '0-99', rows: owner }],
        owner_rows: owner,
        target: { shard: 'shard_1', rows: 0 },
        ok: false,
      },
    ])
    assert.equal(store.version, 1, 'nothing applied')
    assert.equal(setup.router.shardOfKey(moved[0]), 'shard_0')

    // the operator copies the rows (as logical replication would), then posts again
    const rows = await sc
      .shard('shard_0')
      .cluster.query(
        'primary',
        `SELECT id, customer_id FROM orders WHERE customer_id = ANY('{${moved.join(',')}}'::bigint[])`,
      )
    const values = (rows.rows as { id: string; customer_id: string }[]).map(
      (r) => `(${r.id}, ${r.customer_id})`,
    )
    await sc.shard('shard_1').cluster.query('primary', `INSERT INTO orders VALUES ${values.join(', ')}`)
    const ok = await api('POST', '/api/v1/routing-map', {
      partition_key_range: '0-99',
      target_backend: 'shard_1',
      ttl: 3600,
    })
    assert.equal(ok.status, 200, JSON.stringify(ok.body))
    assert.equal(ok.body.status, 'applied')
    assert.equal(ok.body.id, 'api:1')
    assert.equal(ok.body.version, 2)
    assert.equal(ok.body.forced, false)
    assert.deepEqual(ok.body.previous_owners, [{ shard: 'shard_0', range: '0-99' }])
    assert.equal(ok.body.counts[0].target.rows, owner)
    assert.deepEqual(ok.body.drained.from, ['shard_0'])
    assert.deepEqual(drains.at(-1), { from: ['shard_0'], version: 2 })
    // the router uses the new map at once
    for (const c of moved) assert.equal(setup.router.shardOfKey(c), 'shard_1')
    assert.equal(setup.router.shardOfKey(customersIn(100, 340)[0]), 'shard_0')
    const got = await api('GET', '/api/v1/routing-map')
    assert.equal(got.body.version, 2)
    const entry = got.body.entries.find((e: { id: string }) => e.id === 'api:1')
    assert.equal(entry.origin, 'api')
    assert.equal(entry.ttl, 3600)
    assert.ok(entry.ttl_left > 3590 && entry.ttl_left <= 3600, String(entry.ttl_left))
    assert.deepEqual(
      got.body.effective.map(
        (e: { partition_key_range: string; target_backend: string }) =>
          `${e.partition_key_range}:${e.target_backend}`,
      ),
      ['0-99:shard_1', '100-340:shard_0', '341-681:shard_1', '682-1023:shard_2'],
    )
  })

  it('force applies over short counts and says so', async () => {
    const r = await api('POST', '/api/v1/routing-map', {
      partition_key_range: '700-710',
      target_backend: 'shard_0',
      force: true,
    })
    assert.equal(r.status, 200, JSON.stringify(r.body))
    assert.equal(r.body.forced, customersIn(700, 710).length > 0)
    assert.equal(r.body.version, 3)
    const del = await api('DELETE', `/api/v1/routing-map/${r.body.id}`)
    assert.equal(del.status, 200)
    assert.equal(del.body.version, 4)
    assert.deepEqual(del.body.drained.from, ['shard_0'])
    assert.equal(store.map.shardOfPoint(705n), 'shard_2')
  })

  it('DELETE: a config entry is 422, an unknown id 404', async () => {
    const cfg = await api('DELETE', '/api/v1/routing-map/config:0')
    assert.equal(cfg.status, 422)
    assert.match(cfg.body.error, /sharding\.map in the config/)
    assert.equal((await api('DELETE', '/api/v1/routing-map/api:99')).status, 404)
    assert.equal(store.version, 4)
  })

  it('ttl: the entry expires and its range returns to the config map with a new version', async () => {
    const r = await api('POST', '/api/v1/routing-map', {
      partition_key_range: '1000-1023',
      target_backend: 'shard_1',
      ttl: 1,
      force: true,
    })
    assert.equal(r.status, 200, JSON.stringify(r.body))
    assert.equal(store.map.shardOfPoint(1010n), 'shard_1')
    await eventually('the ttl entry expired', () => store.map.shardOfPoint(1010n) === 'shard_2', 5000)
    const got = await api('GET', '/api/v1/routing-map')
    assert.equal(got.body.version, r.body.version + 1)
    assert.equal(
      got.body.entries.some((e: { id: string }) => e.id === r.body.id),
      false,
    )
    await eventually("the expiry drained the entry's target", () =>
      drains.some((d) => d.version === r.body.version + 1 && d.from.includes('shard_1')),
    )
  })

  it("409 when the target's health checks do not acknowledge it", async () => {
    await sc.shard('shard_2').cluster.stop('primary', 'immediate')
    await eventually(
      'shard_2 primary unhealthy',
      () => !engines.get('shard_2')!.snapshot()[0]!.healthy,
      15_000,
    )
    const before = store.version
    const r = await api('POST', '/api/v1/routing-map', {
      partition_key_range: '100-110',
      target_backend: 'shard_2',
      force: true,
    })
    assert.equal(r.status, 409)
    assert.match(
      r.body.error,
      /target shard_2 is not acknowledged by its health checks: primary \S+ is unhealthy/,
    )
    assert.equal(store.version, before)
  })
})
