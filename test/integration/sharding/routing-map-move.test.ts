// A live routing-map move through the proxy under load, on real shards: the operator copies the rows of a
// bucket range from shard_0 to shard_1, then POSTs the entry while clients keep reading and writing. No
// statement fails or reads from a shard that does not own its key at that moment; a transaction open on
// the old route finishes there (the POST waits for it and says so); new statements take the new route.

import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { startAdmin } from '../../../src/admin/admin-server.js'
import { type RunningShardedProxy, startShardedProxy } from '../../../src/cli/proxy-sharded.js'
import { validateConfig } from '../../../src/core/config/parse-config.js'
import { hashBucket } from '../../../src/core/shard/shard-key.js'
import { createShardedPool } from '../../../src/library/create-pool.js'
import { routingMapHost } from '../../../src/routing/routing-map-host.js'
import { type ShardedCluster, startShardedCluster } from '../../cluster/index.js'
import { shardedConfigFor } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'

// biome-ignore lint/suspicious/noExplicitAny: JSON answers are read field by field in the asserts
type Json = Record<string, any>

const CUSTOMERS = 300
const TOKEN = 'move-token'
const MOVED = [0, 199] as const // buckets of shard_0 (0-511) that move to shard_1

describe('routing map: a live move under load through the proxy', () => {
  let sc: ShardedCluster
  let running: RunningShardedProxy
  let url: string
  const portOf = new Map<number, string>()
  const bucket = (c: number) => hashBucket(BigInt(c), 'integer', 1024)
  const all = Array.from({ length: CUSTOMERS }, (_, i) => i + 1)
  const moved = all.filter((c) => bucket(c) >= MOVED[0] && bucket(c) <= MOVED[1])
  const stay0 = all.filter((c) => bucket(c) > MOVED[1] && bucket(c) <= 511)
  const on1 = all.filter((c) => bucket(c) >= 512)

  let configFile: string
  const configDoc = (version: number, map?: { partition_key_range: string; target_backend: string }[]) => {
    const doc = shardedConfigFor(sc, {
      version,
      proxy: {
        listen: '127.0.0.1:0',
        auth: { type: 'scram-sha-256', users: { app: { password: 'app' } } },
        shutdown_timeout_ms: 2000,
      },
      admin: { listen: '127.0.0.1:0', token: TOKEN },
    }) as Json
    if (map) doc.sharding = { ...doc.sharding, map }
    return doc
  }
  const writeConfig = async (
    version: number,
    map?: { partition_key_range: string; target_backend: string }[],
  ) => {
    const doc = configDoc(version, map)
    await writeFile(configFile, JSON.stringify(doc))
    return validateConfig(doc)
  }
  const routingMap = async () => {
    const res = await fetch(`${running.adminUrl}/api/v1/routing-map`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    })
    return (await res.json()) as Json
  }

  before(async () => {
    sc = await startShardedCluster({ shards: 2, replicasPerShard: 0 })
    await sc.createShardedTable(
      'orders',
      'id bigint NOT NULL, customer_id bigint NOT NULL, total bigint NOT NULL',
      'customer_id',
      {
        shardConstraints: 'PRIMARY KEY (id)',
      },
    )
    for (const s of sc.shards) {
      portOf.set(s.cluster.primary.port, s.name)
      const mine = all.filter((c) => bucket(c) >= s.buckets[0] && bucket(c) <= s.buckets[1])
      await s.cluster.query(
        'primary',
        `INSERT INTO orders VALUES ${mine.map((c) => `(${c}, ${c}, ${c})`).join(', ')}`,
      )
    }
    configFile = join(await mkdtemp(join(tmpdir(), 'freshet-move-')), 'freshet.json')
    const config = await writeConfig(1)
    running = await startShardedProxy(config, { adminListen: '127.0.0.1:0', configPath: configFile })
    url = `postgres://app:app@${running.address}/freshet`
  })
  after(async () => {
    await running?.stop()
    await sc?.stop()
  })

  it('moves buckets 0-199 to shard_1 with no failed or misrouted statement', async () => {
    assert.ok(moved.length > 20 && stay0.length > 10 && on1.length > 20, 'customers on every part')
    // 1. the operator copies the range's rows to the target first (as logical replication would)
    const rows = await sc
      .shard('shard_0')
      .cluster.query(
        'primary',
        `SELECT id, customer_id, total FROM orders WHERE customer_id = ANY('{${moved.join(',')}}'::bigint[])`,
      )
    const copy = (rows.rows as { id: string; customer_id: string; total: string }[]).map(
      (r) => `(${r.id}, ${r.customer_id}, ${r.total})`,
    )
    await sc.shard('shard_1').cluster.query('primary', `INSERT INTO orders VALUES ${copy.join(', ')}`)

    // 2. load: keyed reads of every part and keyed writes outside the moved range, on 4 clients
    let stop = false
    let applied = Number.POSITIVE_INFINITY // performance.now() when the POST answered
    const failures: string[] = []
    const misrouted: string[] = []
    let statements = 0
    const worker = async (n: number) => {
      const c = new pg.Client({ connectionString: url })
      await c.connect()
      try {
        for (let i = n; !stop; i++) {
          const pick = i % 3 === 0 ? moved : i % 3 === 1 ? stay0 : on1
          const customer = pick[i % pick.length]!
          const started = performance.now()
          try {
            if (i % 5 === 4 && pick !== moved) {
              const w = await c.query(
                'UPDATE orders SET total = total + 1 WHERE customer_id = $1 RETURNING inet_server_port() AS port',
                [customer],
              )
              const shard = portOf.get(Number(w.rows[0].port))
              if (shard !== (pick === on1 ? 'shard_1' : 'shard_0'))
                misrouted.push(`write ${customer} on ${shard}`)
            } else {
              const r = await c.query(
                'SELECT inet_server_port() AS port, total FROM orders WHERE customer_id = $1',
                [customer],
              )
              if (r.rows.length !== 1) failures.push(`read ${customer}: ${r.rows.length} rows`)
              const shard = portOf.get(Number(r.rows[0]?.port))
              // once the POST has answered, every new statement takes the new route
              const owner = pick === on1 || (pick === moved && started > applied) ? 'shard_1' : 'shard_0'
              if (pick === moved && started <= applied) {
                if (shard !== 'shard_0' && shard !== 'shard_1') misrouted.push(`read ${customer} on ${shard}`)
              } else if (shard !== owner) misrouted.push(`read ${customer} on ${shard}, owner ${owner}`)
            }
            statements++
          } catch (err) {
            failures.push(`${customer}: ${(err as Error).message}`)
          }
        }
      } finally {
        await c.end()
      }
    }
    const m = moved[0]!
    const load = [0, 1, 2, 3].map(worker)
    try {
      await eventually('load running', () => statements > 40)

      // 3. a transaction open on the old route across the move
      const tx = new pg.Client({ connectionString: url })
      await tx.connect()
      await tx.query('BEGIN')
      const before = await tx.query(
        'SELECT inet_server_port() AS port, total FROM orders WHERE customer_id = $1',
        [m],
      )
      assert.equal(portOf.get(Number(before.rows[0].port)), 'shard_0')

      // 4. POST the entry; it applies at once and waits for the open transaction to finish
      const post = fetch(`${running.adminUrl}/api/v1/routing-map`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ partition_key_range: `${MOVED[0]}-${MOVED[1]}`, target_backend: 'shard_1' }),
      }).then(async (res) => {
        applied = performance.now()
        return { status: res.status, body: (await res.json()) as Json }
      })
      await eventually('the new map applied', () => running.routing.mapVersion === 2)
      // the open transaction keeps the map it began under: its write goes to shard_0, no ZF003
      const inTx = await tx.query(
        'UPDATE orders SET total = total + 1000 WHERE customer_id = $1 RETURNING inet_server_port() AS port',
        [m],
      )
      assert.equal(portOf.get(Number(inTx.rows[0].port)), 'shard_0')
      await tx.query('COMMIT')
      await tx.end()
      const answer = await post
      assert.equal(answer.status, 200, JSON.stringify(answer.body))
      assert.equal(answer.body.version, 2)
      assert.deepEqual(answer.body.drained.from, ['shard_0'])
      assert.ok(answer.body.drained.transactions >= 1, JSON.stringify(answer.body.drained))
      assert.equal(answer.body.drained.still_running, 0)
      const counted = answer.body.counts[0]
      assert.equal(counted.target.rows, counted.owner_rows)
      assert.equal(counted.owner_rows, moved.length)

      const metrics = await (
        await fetch(`${running.adminUrl}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })
      ).text()
      assert.match(metrics, /^routing_map_version 2$/m)
      assert.match(metrics, /^shard_decisions_total\{shard="shard_1",source="statement"\} \d+/m)

      // 5. more load on the new map, then stop
      const after = statements
      await eventually('load on the new map', () => statements > after + 60)
    } finally {
      // an assertion failing above must not leave the load running
      stop = true
      await Promise.all(load)
    }
    assert.deepEqual(failures, [])
    assert.deepEqual(misrouted, [])
    // the transaction finished on the old route: its write is on shard_0 only
    const t0 = await sc
      .shard('shard_0')
      .cluster.query('primary', `SELECT total FROM orders WHERE customer_id = ${m}`)
    const t1 = await sc
      .shard('shard_1')
      .cluster.query('primary', `SELECT total FROM orders WHERE customer_id = ${m}`)
    assert.equal(Number((t0.rows[0] as { total: string }).total), m + 1000)
    assert.equal(Number((t1.rows[0] as { total: string }).total), m)
    // and a new statement for that key now reads shard_1
    const c = new pg.Client({ connectionString: url })
    await c.connect()
    const now = await c.query('SELECT inet_server_port() AS port FROM orders WHERE customer_id = $1', [m])
    await c.end()
    assert.equal(portOf.get(Number(now.rows[0].port)), 'shard_1')
  })

  it('the API entry and the map version survive config reloads; a changed config map goes under it', async () => {
    const before = await routingMap()
    assert.equal(before.version, 2)
    await writeConfig(2)
    await running.reload()
    const same = await routingMap()
    assert.equal(same.version, 2, 'an unchanged map keeps its version')
    assert.ok(same.entries.some((e: Json) => e.id === 'api:1' && e.origin === 'api'))
    // the new config moves buckets 900-1023 to shard_0; the API entry (0-199 -> shard_1) stays on top
    await writeConfig(3, [
      { partition_key_range: '0-511', target_backend: 'shard_0' },
      { partition_key_range: '512-899', target_backend: 'shard_1' },
      { partition_key_range: '900-1023', target_backend: 'shard_0' },
    ])
    await running.reload()
    const moved = await routingMap()
    assert.equal(moved.version, 3)
    assert.equal(running.routing.mapVersion, 3)
    assert.deepEqual(
      moved.effective.map((e: Json) => `${e.partition_key_range}:${e.target_backend}`),
      ['0-199:shard_1', '200-511:shard_0', '512-899:shard_1', '900-1023:shard_0'],
    )
    assert.equal(running.routing.setup.map.shardOfPoint(100n), 'shard_1')
    assert.equal(running.routing.setup.map.shardOfPoint(950n), 'shard_0')
  })

  it('through the library: buckets 600-799 move to shard_0 under pool.query load, nothing fails or is misrouted', async () => {
    const pool = createShardedPool(validateConfig(configDoc(1)))
    let out: { release(destroy?: boolean): void } | undefined
    const admin = await startAdmin({
      pool,
      routingMap: routingMapHost(pool.routing, { log: () => {} }),
      admin: { listen: '127.0.0.1:0', token: TOKEN },
    })
    try {
      await pool.ready()
      const range = all.filter((c) => bucket(c) >= 600 && bucket(c) <= 799)
      const rest1 = all.filter((c) => bucket(c) >= 800)
      assert.ok(range.length > 20 && rest1.length > 20)
      const rows = await sc
        .shard('shard_1')
        .cluster.query(
          'primary',
          `SELECT id, customer_id, total FROM orders WHERE customer_id = ANY('{${range.join(',')}}'::bigint[])`,
        )
      const copy = (rows.rows as { id: string; customer_id: string; total: string }[]).map(
        (r) => `(${r.id}, ${r.customer_id}, ${r.total})`,
      )
      await sc.shard('shard_0').cluster.query('primary', `INSERT INTO orders VALUES ${copy.join(', ')}`)
      let stop = false
      let applied = Number.POSITIVE_INFINITY
      let statements = 0
      const failures: string[] = []
      const misrouted: string[] = []
      const worker = async (n: number) => {
        for (let i = n; !stop; i++) {
          const moving = i % 2 === 0
          const customer = (moving ? range : rest1)[i % (moving ? range.length : rest1.length)]!
          const started = performance.now()
          try {
            const r = await pool.query(
              'SELECT inet_server_port() AS port FROM orders WHERE customer_id = $1',
              [customer],
            )
            if (r.rows.length !== 1) failures.push(`read ${customer}: ${r.rows.length} rows`)
            const shard = portOf.get(Number(r.rows[0]?.port))
            const owner = moving && started > applied ? 'shard_0' : 'shard_1'
            if (!(moving && started <= applied) && shard !== owner)
              misrouted.push(`${customer} on ${shard}, owner ${owner}`)
            statements++
          } catch (err) {
            failures.push(`${customer}: ${(err as Error).message}`)
          }
        }
      }
      const load = [0, 1, 2].map(worker)
      try {
        await eventually('load running', () => statements > 30)
        // a transaction open on the old route across the move
        const m = range[0]!
        const tx = await pool.connect()
        out = tx
        await tx.query('BEGIN')
        const before = await tx.query(
          'SELECT inet_server_port() AS port FROM orders WHERE customer_id = $1',
          [m],
        )
        assert.equal(portOf.get(Number(before.rows[0].port)), 'shard_1')
        const res = await fetch(`${admin.url}/api/v1/routing-map`, {
          method: 'POST',
          headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify({ partition_key_range: '600-799', target_backend: 'shard_0' }),
        })
        applied = performance.now()
        const body = (await res.json()) as Json
        assert.equal(res.status, 200, JSON.stringify(body))
        assert.equal(body.version, 2)
        assert.equal(body.counts[0].target.rows, body.counts[0].owner_rows)
        assert.match(body.drained.note, /does not track statements per shard/)
        // the open transaction keeps the map it began under: its write goes to shard_1, no ZF003
        const inTx = await tx.query(
          'UPDATE orders SET total = total + 1000 WHERE customer_id = $1 RETURNING inet_server_port() AS port',
          [m],
        )
        assert.equal(portOf.get(Number(inTx.rows[0].port)), 'shard_1')
        await tx.query('COMMIT')
        tx.release()
        out = undefined
        const after = statements
        await eventually('load on the new map', () => statements > after + 40)
      } finally {
        // an assertion failing above must not leave the load running
        stop = true
        await Promise.all(load)
      }
      assert.deepEqual(failures, [])
      assert.deepEqual(misrouted, [])
      assert.equal(pool.routing.mapVersion, 2)
    } finally {
      // a failed assertion above leaves the transaction's client out: give it back so the pool can end
      out?.release(true)
      await admin.close()
      await pool.end()
    }
  })
})
