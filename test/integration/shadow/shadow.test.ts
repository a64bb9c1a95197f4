// routing.shadow on a real cluster: decisions are made as configured and reported (reason 'shadow' with the
// would-be replica), while every statement runs on the primary (inet_server_port()).

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { shadowDecision } from '../../../src/core/route/shadow-decision.js'
import { createPool, type Decision, type FreshetPool, freshness, withScope } from '../../../src/index.js'
import { FreshetMetrics } from '../../../src/telemetry/metrics.js'
import { type LocalCluster, startCluster } from '../../cluster/index.js'
import { configFor, nodeByPort, poolReady } from '../../support/cluster-config.js'

const PORT = 'SELECT inet_server_port() AS port'

describe('shadow mode (routing.shadow: true)', () => {
  let cluster: LocalCluster
  let pool: FreshetPool
  let nodeOf: (port: number) => string
  const metrics = new FreshetMetrics()

  before(async () => {
    cluster = await startCluster({ replicas: 2 })
    nodeOf = nodeByPort(cluster)
    await cluster.query('primary', 'CREATE TABLE items (id int PRIMARY KEY, v text)')
    await cluster.query('primary', "INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 10) g")
    await cluster.waitForCatchUp()
    pool = createPool(
      configFor(cluster, {
        routing: {
          shadow: true,
          // shadow mode is the subject here, not the staleness bound: a generous near_rt, so that probes
          // delayed on a loaded machine cannot turn a would-be replica read into a fallback
          tiers: {
            strict: { max_lag_ms: 0 },
            near_rt: { max_lag_ms: 5000, fallback: 'primary' },
            eventual: { max_lag_ms: 60_000, fallback: 'least_lagged' },
          },
        },
        domains: { items: 'eventual' },
      }),
    )
    await poolReady(pool)
    metrics.attachEngine(pool.engine)
  })

  after(async () => {
    await pool?.end()
    await cluster?.stop()
  })

  it('runs 100% of statements on the primary while decisions show the would-be replica share', async () => {
    const decisions: Decision[] = []
    const onDecision = (d: Decision) => decisions.push(d)
    pool.on('decision', onDecision)
    const served: string[] = []
    const run = async (sql: string, values?: unknown[]) =>
      served.push(nodeOf(Number((await pool.query(sql, values)).rows[0].port)))
    try {
      for (let i = 0; i < 6; i++) await run(`/* FRESHNESS: NEAR_RT */ ${PORT}`) // would be a replica
      for (let i = 0; i < 4; i++) await run(`${PORT}, v FROM items WHERE id = $1`, [i + 1]) // domain eventual: replica
      for (let i = 0; i < 2; i++) await freshness('eventual', () => run(PORT)) // context tier: replica
      await run(`/*+ ROUTE_TO: replica_2 */ ${PORT}`) // explicit hint: replica_2
      for (let i = 0; i < 4; i++) await run(PORT) // unannotated: primary anyway
      for (let i = 0; i < 3; i++) await run(`UPDATE items SET v = v WHERE id = 1 RETURNING ${PORT.slice(7)}`)
    } finally {
      pool.off('decision', onDecision)
    }

    assert.equal(served.length, 20)
    assert.deepEqual(new Set(served), new Set(['primary']), 'every statement ran on the primary')

    const shadow = decisions.filter((d) => d.reason === 'shadow')
    assert.equal(shadow.length, 13, 'the 13 reads that would have gone to a replica')
    for (const d of shadow) {
      assert.equal(d.target, 'primary')
      assert.equal(d.role, 'primary')
      assert.match(d.wouldBe?.target ?? '', /^replica_/)
    }
    assert.deepEqual(new Set(shadow.map((d) => d.wouldBe?.reason)), new Set(['replica', 'hint_route']))
    assert.equal(shadow.find((d) => d.wouldBe?.reason === 'hint_route')?.wouldBe?.target, 'replica_2')
    assert.equal(
      new Set(shadow.filter((d) => d.wouldBe?.reason === 'replica').map((d) => d.wouldBe?.target)).size,
      2,
      'the policy still spreads the would-be reads over both replicas',
    )
    assert.ok(decisions.every((d) => d.reason === 'shadow' || d.wouldBe === undefined))

    // The admin metrics: routing_decisions_total{reason="shadow"} over all decisions is the replica share.
    const text = await metrics.registry.metrics()
    const count = (re: RegExp) =>
      text
        .split('\n')
        .filter((l) => l.startsWith('routing_decisions_total{') && re.test(l))
        .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0)
    const shadowCount = count(/reason="shadow"/)
    const total = count(/./)
    assert.ok(shadowCount >= 13, text)
    assert.ok(shadowCount / total > 0 && shadowCount / total < 1)
    assert.ok(/routing_decisions_total\{[^}]*target="primary"[^}]*reason="shadow"/.test(text))
  })

  it('keeps explain honest, skips the read-your-writes wait, and leaves pinned transactions on the primary', async () => {
    // A fresh scope: the earlier UPDATEs outside any scope left the pool a token replicas may not have yet.
    const d = withScope(() => pool.explain('/* FRESHNESS: EVENTUAL */ SELECT 1'))
    assert.equal(d.reason, 'shadow')
    assert.match(d.wouldBe?.target ?? '', /^replica_/)

    await cluster.pauseReplay('replica_1')
    await cluster.pauseReplay('replica_2')
    try {
      await withScope(async () => {
        await pool.query("UPDATE items SET v = 'w' WHERE id = 2")
        const started = Date.now()
        const res = await freshness('eventual', () => pool.query(`${PORT}, v FROM items WHERE id = 2`))
        assert.equal(res.rows[0].v, 'w')
        assert.equal(nodeOf(Number(res.rows[0].port)), 'primary')
        // max_wait_for_sync_ms is 1000 by default: shadow mode does not spend it.
        assert.ok(Date.now() - started < 900, `took ${Date.now() - started} ms`)
      })
    } finally {
      await cluster.resumeReplay('replica_1')
      await cluster.resumeReplay('replica_2')
    }

    const client = await pool.connect()
    try {
      await freshness('eventual', async () => {
        await client.query('BEGIN READ ONLY')
        for (let i = 0; i < 3; i++)
          assert.equal(nodeOf(Number((await client.query(PORT)).rows[0].port)), 'primary')
        await client.query('COMMIT')
      })
    } finally {
      client.release()
    }
  })

  it('shadowDecision leaves primary and error decisions alone', () => {
    const base = pool.explain('UPDATE items SET v = v')
    assert.equal(shadowDecision(base, 'primary'), base)
    const failed = Object.freeze({ ...base, target: null, role: null, reason: 'fallback_error' as const })
    assert.equal(shadowDecision(failed, 'primary'), failed)
  })
})
