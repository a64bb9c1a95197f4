// Pool behaviour against a real cluster: warm-up, backpressure, per-tier budgets, replica statement
// timeout, and function volatility looked up in pg_catalog.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import {
  BackpressureError,
  createPool,
  type FreshetPool,
  freshness,
  isFreshetError,
} from '../../../src/index.js'
import { type LocalCluster, startCluster } from '../../cluster/index.js'
import { configFor, nodeByPort } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'

describe('library pools against a real cluster', () => {
  let cluster: LocalCluster
  let pool: FreshetPool
  let nodeOf: (port: number) => string

  before(async () => {
    cluster = await startCluster({ replicas: 1 })
    nodeOf = nodeByPort(cluster)
    await cluster.query(
      'primary',
      `CREATE FUNCTION stamp_stable() RETURNS int LANGUAGE sql STABLE AS 'SELECT 1';
       CREATE FUNCTION stamp_volatile() RETURNS int LANGUAGE sql VOLATILE AS 'SELECT 1'`,
    )
    await cluster.waitForCatchUp()
    pool = createPool(
      configFor(cluster, {
        pools: {
          primary: { min_idle: 3, max_active: 4, connection_timeout_ms: 5000 },
          replicas: { min_idle: 2, max_active: 4, connection_timeout_ms: 5000 },
          max_waiting: 3,
          tier_budgets: { eventual: 0.5 },
          replica_statement_timeout_ms: 300,
          slow_start_ms: 0,
        },
      }),
    )
    await pool.ready()
    await eventually('replica healthy', () => pool.snapshot().every((n) => n.healthy))
  })

  after(async () => {
    await pool?.end()
    await cluster?.stop()
  })

  it('warms each node up to min_idle before ready() resolves', () => {
    const byNode = Object.fromEntries(pool.snapshot().map((n) => [n.name, n.pool?.total ?? 0]))
    assert.ok(byNode.primary! >= 3, JSON.stringify(byNode))
    assert.ok(byNode.replica_1! >= 2, JSON.stringify(byNode))
  })

  it('fails fast with BackpressureError beyond pools.max_waiting waiters', async () => {
    // 4 connections busy, 3 may wait, the rest must fail at once instead of queueing.
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, () => pool.query('SELECT pg_sleep(0.3)')),
    )
    const rejected = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[]
    assert.ok(rejected.length >= 4, `expected fast failures, got ${rejected.length}`)
    for (const r of rejected) {
      assert.ok(r.reason instanceof BackpressureError, String(r.reason))
      assert.ok(isFreshetError(r.reason))
      assert.equal(r.reason.code, 'FRESHET_BACKPRESSURE')
      assert.match(r.reason.message, /^freshet: .*max_waiting/)
    }
    assert.ok(results.some((r) => r.status === 'fulfilled'))
  })

  it('keeps EVENTUAL reads within their share of a replica pool (tier_budgets)', async () => {
    let peak = 0
    const onAcquire = () => {
      const replica = pool.snapshot().find((n) => n.name === 'replica_1')
      peak = Math.max(peak, replica?.pool?.active ?? 0)
    }
    pool.on('acquire', onAcquire)
    try {
      // Few enough to stay under max_waiting: they queue on the tier budget, not fail.
      // pg_sleep is volatile: only an explicit ROUTE_TO sends it to a replica; the FRESHNESS hint sets the tier.
      const sql = '/*+ ROUTE_TO: replica */ /* FRESHNESS: EVENTUAL */ SELECT pg_sleep(0.1)'
      await Promise.all(Array.from({ length: 3 }, () => pool.query(sql)))
    } finally {
      pool.off('acquire', onAcquire)
    }
    assert.equal(peak, 2, 'eventual may hold half of max_active 4')
  })

  it('sets statement_timeout on replica connections only', async () => {
    await assert.rejects(
      pool.query('/*+ ROUTE_TO: replica */ SELECT pg_sleep(2)'),
      (err: { code?: string }) => err.code === '57014',
    )
    const res = await pool.query('SELECT pg_sleep(0.5), inet_server_port() AS port')
    assert.equal(nodeOf(Number(res.rows[0].port)), 'primary')
  })

  it('sends reads calling volatile functions to the primary, stable ones may use a replica', async () => {
    const where = async (sql: string) =>
      nodeOf(
        Number(
          (await freshness('eventual', () => pool.query(`SELECT inet_server_port() AS port, ${sql}`))).rows[0]
            .port,
        ),
      )
    assert.equal(await where('stamp_volatile()'), 'primary')
    assert.equal(await where('stamp_stable()'), 'replica_1')
    assert.equal(await where('random()'), 'replica_1', 'random() is on the read-only allow-list')
    assert.equal(
      pool.explain('/* FRESHNESS: EVENTUAL */ SELECT stamp_volatile()').reason,
      'volatile_function',
    )
  })

  it('never hands session state or an open transaction to the next caller', async () => {
    // every primary connection gets the chance to be reused: more checkouts than max_active
    const pids = new Set<number>()
    for (const setup of [
      'CREATE TEMP TABLE scratch (id int)',
      "SET search_path = 'nowhere'",
      'SELECT pg_advisory_lock(42)',
      'LISTEN somewhere',
      'BEGIN',
    ]) {
      const client = await pool.connect()
      pids.add((await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid)
      await client.query(setup)
      client.release()
    }
    for (let i = 0; i < 8; i++) {
      const res = await pool.query(
        `SELECT pg_backend_pid() AS pid, current_setting('search_path') AS path,
                to_regclass('pg_temp.scratch') IS NULL AS no_temp,
                (SELECT count(*) FROM pg_listening_channels())::int AS listens,
                (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())::int AS locks,
                now() = statement_timestamp() AS own_tx`,
      )
      const row = res.rows[0]
      assert.equal(row.path, '"$user", public', 'a SET leaked into the next caller')
      assert.equal(row.no_temp, true, 'a temp table leaked into the next caller')
      assert.equal(row.locks, 0, 'an advisory lock leaked into the next caller')
      assert.equal(row.listens, 0, 'a LISTEN leaked into the next caller')
      assert.equal(row.own_tx, true, 'an open transaction leaked into the next caller')
      assert.ok(!pids.has(row.pid), 'a connection that held session state was reused')
    }
  })
})
