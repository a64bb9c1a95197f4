// Lag you can trust on MariaDB: a replica behind by MASTER_DELAY and one with its SQL thread stopped are
// excluded (the stopped one as unknown lag, never zero); GTID read-your-writes with every replica behind;
// a replica killed and started again. All against real servers from the harness.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { freshness, type MysqlPool, readYourWrites } from '../../../src/mysql/index.js'
import { eventually } from '../../support/eventually.js'
import { type MariadbFixture, startMariadbFixture } from '../../support/mariadb-fixture.js'

const PORT = 'SELECT @@port AS port'

describe('createMysqlPool: lag, GTID read-your-writes and failover on MariaDB', () => {
  let fx: MariadbFixture
  let pool: MysqlPool
  const node = (name: string) => pool.snapshot().find((n) => n.name === name)!
  const on = (sql: string) => fx.servedBy((s) => pool.query(s), sql)

  before(async () => {
    fx = await startMariadbFixture({
      setupSql: ['CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64))'],
      patch: {
        routing: {
          tiers: {
            strict: { max_lag_ms: 0 },
            near_rt: { max_lag_ms: 800, fallback: 'primary' },
            eventual: { max_lag_ms: 60_000, fallback: 'least_lagged' },
          },
        },
        consistency: { max_wait_for_sync_ms: 1500 },
      },
    })
    pool = fx.pool
  })

  after(async () => {
    await fx?.stop()
  })

  it('measures lag from the heartbeat table and excludes a replica behind by MASTER_DELAY', async () => {
    await eventually('heartbeat or caught-up readings', () =>
      ['replica_1', 'replica_2'].every((n) => ['heartbeat', 'caught_up'].includes(node(n).lag_source ?? '')),
    )
    await fx.cluster.setDelay('replica_2', 3000)
    // A delayed replica is only stale while the primary keeps writing: with an idle primary it holds every
    // write and its staleness bound says so. Keep writing while asserting it is out of near_rt.
    let writing = true
    const writer = (async () => {
      while (writing) {
        await fx.cluster.query('primary', "INSERT INTO items (name) VALUES ('tick')").catch(() => {})
        await new Promise((r) => setTimeout(r, 50))
      }
    })()
    try {
      await eventually(
        'replica_2 over the near_rt bound, replica_1 within it',
        () =>
          (node('replica_2').staleness_bound_ms ?? Number.POSITIVE_INFINITY) > 800 &&
          (node('replica_1').staleness_bound_ms ?? Number.POSITIVE_INFINITY) <= 800,
        15_000,
      )
      assert.ok((node('replica_2').lag_ms ?? 0) > 0, 'the delayed replica reports lag')
      for (let i = 0; i < 6; i++) assert.equal(await on(`/* FRESHNESS: NEAR_RT */ ${PORT}`), 'replica_1')
    } finally {
      writing = false
      await writer
    }
    // eventual still takes it: its bound is 60 s
    const seen = new Set<string>()
    for (let i = 0; i < 8; i++) seen.add(await on(`/* FRESHNESS: EVENTUAL */ ${PORT}`))
    assert.ok(seen.has('replica_2'), [...seen].join(','))
    await fx.cluster.setDelay('replica_2', 0)
    await eventually('replica_2 back within near_rt', () => (node('replica_2').lag_ms ?? 1e9) <= 800, 15_000)
  })

  it('reports a replica whose SQL thread stopped as unknown lag and routes nothing to it', async () => {
    await fx.cluster.stopSqlThread('replica_1')
    await eventually('replica_1 lag unknown', () => node('replica_1').lag_ms === null)
    const r1 = node('replica_1')
    assert.equal(r1.replay_paused, true)
    assert.match(r1.error ?? '', /SQL thread not running/)
    await eventually(
      'replica_2 proven within eventual',
      () => (node('replica_2').staleness_bound_ms ?? Number.POSITIVE_INFINITY) <= 60_000,
      15_000,
    )
    for (let i = 0; i < 6; i++) assert.equal(await on(`/* FRESHNESS: EVENTUAL */ ${PORT}`), 'replica_2')
    assert.equal(pool.explain('/* FRESHNESS: NEAR_RT */ SELECT 1').target, 'replica_2')
    await fx.cluster.startSqlThread('replica_1')
    await eventually('replica_1 lag known again', () => node('replica_1').lag_ms !== null, 15_000)
  })

  it('reads its own write through a GTID token: the primary while every replica is delayed, a replica once one applied it', async () => {
    await fx.cluster.setDelay('replica_1', 4000)
    await fx.cluster.setDelay('replica_2', 4000)
    await eventually('both replicas behind but within eventual', () =>
      ['replica_1', 'replica_2'].every((n) => node(n).healthy && node(n).lag_ms !== null),
    )
    const [res] = await pool.query("INSERT INTO items (name) VALUES ('fresh')")
    const id = (res as { insertId: number }).insertId
    const token = pool.lastWriteToken()
    assert.match(token ?? '', /^0-1-\d+$/)
    const read = `/* FRESHNESS: EVENTUAL */ SELECT @@port AS port, (SELECT name FROM items WHERE id = ${id}) AS name`
    const started = Date.now()
    const [rows] = await readYourWrites(token!, () => pool.query(read))
    const waited = Date.now() - started
    const row = (rows as { port: number; name: string | null }[])[0]!
    // no replica applied it within max_wait_for_sync_ms (1.5 s): the primary answered, with the row
    assert.equal(row.name, 'fresh')
    assert.equal(row.port, fx.cluster.primary.port)
    assert.ok(waited >= 1000, `waited ${waited} ms for a replica before the primary`)
    // once the delay has passed, a replica covers the token and serves the read, with the row
    const replicaPorts = new Set(fx.cluster.replicas.map((r) => r.port))
    await eventually(
      'a replica serves the token',
      async () => {
        const [again] = await readYourWrites(token!, () => pool.query(read))
        const r = (again as { port: number; name: string | null }[])[0]!
        assert.equal(r.name, 'fresh')
        return replicaPorts.has(r.port)
      },
      15_000,
    )
    await fx.cluster.setDelay('replica_1', 0)
    await fx.cluster.setDelay('replica_2', 0)
    await fx.cluster.waitForCatchUp(20_000)
  })

  it('carries GTID tokens through freshness scopes: a write in the scope makes later reads see it', async () => {
    await fx.cluster.setDelay('replica_1', 2000)
    await fx.cluster.setDelay('replica_2', 2000)
    await freshness('eventual', async () => {
      const [res] = await pool.query("INSERT INTO items (name) VALUES ('scoped')")
      const id = (res as { insertId: number }).insertId
      const [rows] = await pool.query(`SELECT name FROM items WHERE id = ${id}`)
      assert.deepEqual(rows, [{ name: 'scoped' }])
    })
    await fx.cluster.setDelay('replica_1', 0)
    await fx.cluster.setDelay('replica_2', 0)
  })

  it('fails over from a killed replica: reads go to the other, the killed one is unhealthy, then comes back', async () => {
    await fx.cluster.waitForCatchUp(20_000)
    await fx.cluster.kill('replica_1')
    // a read decided before the monitor noticed is retried on the primary; none fails
    for (let i = 0; i < 6; i++) assert.notEqual(await on(`/* FRESHNESS: EVENTUAL */ ${PORT}`), 'replica_1')
    await eventually('replica_1 unhealthy', () => !node('replica_1').healthy)
    for (let i = 0; i < 6; i++) assert.equal(await on(`/* FRESHNESS: EVENTUAL */ ${PORT}`), 'replica_2')
    await fx.cluster.start('replica_1')
    await eventually(
      'replica_1 healthy with a lag reading',
      () => node('replica_1').healthy && node('replica_1').lag_ms !== null,
      20_000,
    )
    const seen = new Set<string>()
    await eventually(
      'replica_1 serves reads again',
      async () => {
        seen.add(await on(`/* FRESHNESS: EVENTUAL */ ${PORT}`))
        return seen.has('replica_1')
      },
      15_000,
    )
  })
})
