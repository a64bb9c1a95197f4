// Decision-order rows of docs/routing.md that the other library tests do not observe, through createPool()
// against a real primary and two streaming replicas: the least_lagged fallback, a tier's
// fallback_rate_limit, consistency.sticky_after_write_ms, routing.unannotated (error and a tier name) and
// the emergency controls. Each row is checked on the node that served the statement (inet_server_port())
// and on the decision the pool emitted ('decision' event).

import assert from 'node:assert/strict'
import { after, afterEach, before, describe, it } from 'node:test'
import {
  createPool,
  type Decision,
  type FreshetPool,
  freshness,
  isFreshetError,
  withPrimary,
  withScope,
} from '../../../src/index.js'
import { type LocalCluster, startCluster } from '../../cluster/index.js'
import { configFor, nodeByPort, poolReady } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'

const PORT = 'SELECT inet_server_port() AS port'

const TIERS = {
  strict: { max_lag_ms: 0, fallback: 'primary' },
  near_rt: { max_lag_ms: 500, fallback: 'primary' },
  eventual: { max_lag_ms: 60000, fallback: 'least_lagged' },
  bounded: { max_lag_ms: 200, fallback: 'least_lagged' },
  capped: { max_lag_ms: 200, fallback: 'primary', fallback_rate_limit: 1 },
}

function isReplica(node: string): boolean {
  return node === 'replica_1' || node === 'replica_2'
}

describe('library contract rows against a real cluster', () => {
  let cluster: LocalCluster
  let nodeOf: (port: number) => string

  before(async () => {
    cluster = await startCluster({ replicas: 2 })
    nodeOf = nodeByPort(cluster)
    await cluster.query('primary', 'CREATE TABLE marks (id serial PRIMARY KEY)')
    await cluster.waitForCatchUp()
  })

  after(async () => {
    await cluster?.stop()
  })

  /**
   * Runs `sql` (returning a `port` column) on `pool` in the current scope; reports the node that served it
   * and the decision the pool emitted for it.
   */
  async function routed(pool: FreshetPool, sql: string): Promise<{ node: string; decision: Decision }> {
    const seen: Decision[] = []
    const on = (d: Decision) => seen.push(d)
    pool.on('decision', on)
    let port: unknown
    try {
      port = (await pool.query(sql)).rows[0]?.port
    } finally {
      pool.off('decision', on)
    }
    assert.equal(seen.length, 1, `one decision for ${sql}`)
    assert.ok(port !== undefined, `${sql} returned a port`)
    return { node: nodeOf(Number(port)), decision: seen[0]! }
  }

  /** The decision of a statement that the pool rejects, and the error. */
  async function rejected(pool: FreshetPool, sql: string): Promise<{ decision: Decision; error: unknown }> {
    const seen: Decision[] = []
    const on = (d: Decision) => seen.push(d)
    pool.on('decision', on)
    try {
      await pool.query(sql)
    } catch (error) {
      assert.equal(seen.length, 1, `one decision for ${sql}`)
      return { decision: seen[0]!, error }
    } finally {
      pool.off('decision', on)
    }
    assert.fail(`${sql} was expected to fail, and ran`)
  }

  function hasCode(err: unknown, code: string): boolean {
    return isFreshetError(err) && err.code === code && /^freshet: /.test(err.message)
  }

  describe('lag fallbacks', () => {
    let pool: FreshetPool

    before(async () => {
      pool = createPool(configFor(cluster, { routing: { tiers: TIERS } }))
      await poolReady(pool)
    })

    after(async () => {
      await pool?.end()
    })

    afterEach(async () => {
      for (const r of cluster.replicas) {
        await cluster.resumeReplay(r.name)
        await cluster.setApplyDelay(r.name, 0)
      }
      await cluster.waitForCatchUp(20_000)
      await eventually(
        'replicas caught up in the pool',
        () =>
          pool
            .snapshot()
            .every(
              (n) => n.role === 'primary' || (n.staleness_bound_ms !== null && n.staleness_bound_ms < 150),
            ),
        20_000,
      )
    })

    function lagOf(name: string): number | null {
      // the staleness bound: what eligibility and least_lagged go by
      return pool.snapshot().find((n) => n.name === name)?.staleness_bound_ms ?? null
    }

    it('least_lagged: both replicas over the bound, the less lagged one serves the read (fallback_least_lagged)', async () => {
      // the bounded tier is served by replicas when they are within 200 ms
      await eventually('both replicas proven within 150 ms', () =>
        ['replica_1', 'replica_2'].every((n) => (lagOf(n) ?? 1e9) < 150),
      )
      const baseline = await withScope(() => routed(pool, `/* FRESHNESS: bounded */ ${PORT}`))
      assert.ok(isReplica(baseline.node), `baseline served by ${baseline.node}`)
      assert.equal(baseline.decision.reason, 'replica')

      await cluster.setApplyDelay('replica_2', 700)
      await cluster.pauseReplay('replica_1')
      await cluster.query('primary', 'INSERT INTO marks DEFAULT VALUES')
      await eventually(
        'replica_2 over 200 ms behind and replica_1 well behind replica_2',
        () => {
          const l1 = lagOf('replica_1')
          const l2 = lagOf('replica_2')
          return l1 !== null && l2 !== null && l2 > 200 && l1 > l2 + 1500
        },
        20_000,
      )
      for (let i = 0; i < 4; i++) {
        const r = await withScope(() => routed(pool, `/* FRESHNESS: bounded */ ${PORT}`))
        assert.equal(r.node, 'replica_2', `read ${i} served by ${r.node}`)
        assert.equal(r.decision.reason, 'fallback_least_lagged')
        assert.equal(r.decision.tier, 'bounded')
        assert.equal(r.decision.target, 'replica_2')
        assert.equal(r.decision.role, 'replica')
        assert.ok(
          (r.decision.stalenessBoundMs ?? 0) > 200,
          `decision staleness bound ${r.decision.stalenessBoundMs} is over the tier's`,
        )
      }
    })

    it('fallback_rate_limit 1/s: the first fallback runs on the primary, the next one fails FRESHET_FALLBACK_RATE_LIMITED', async () => {
      await cluster.pauseReplay('replica_1')
      await cluster.pauseReplay('replica_2')
      await cluster.query('primary', 'INSERT INTO marks DEFAULT VALUES')
      await eventually(
        'both replicas past the capped (200 ms) and NEAR_RT (500 ms) bounds',
        () => [lagOf('replica_1'), lagOf('replica_2')].every((l) => l !== null && l > 800),
        20_000,
      )
      const sql = `/* FRESHNESS: capped */ ${PORT}`
      await withScope(async () => {
        const first = await routed(pool, sql)
        assert.equal(first.node, 'primary')
        assert.equal(first.decision.reason, 'fallback_primary')
        assert.equal(first.decision.tier, 'capped')

        const second = await rejected(pool, sql)
        assert.ok(
          hasCode(second.error, 'FRESHET_FALLBACK_RATE_LIMITED'),
          `rejected with ${String(second.error)}`,
        )
        assert.match((second.error as Error).message, /fallback_rate_limit/)
        assert.equal(second.decision.reason, 'fallback_rate_limited')
        assert.equal(second.decision.target, null)

        // a tier without a cap still falls back to the primary meanwhile
        const nearRt = await routed(pool, `/* FRESHNESS: NEAR_RT */ ${PORT}`)
        assert.equal(nearRt.node, 'primary')
        assert.equal(nearRt.decision.reason, 'fallback_primary')

        // it is a rate, not a stop: within about a second the bucket allows one more fallback
        const again: string[] = []
        await eventually('a capped fallback is allowed again', async () => {
          try {
            again.push((await routed(pool, sql)).node)
            return true
          } catch (err) {
            if (!hasCode(err, 'FRESHET_FALLBACK_RATE_LIMITED')) throw err
            return false
          }
        })
        assert.deepEqual(again, ['primary'])
      })
    })
  })

  describe('consistency.sticky_after_write_ms', () => {
    const STICKY_MS = 1500
    let pool: FreshetPool

    before(async () => {
      pool = createPool(configFor(cluster, { consistency: { sticky_after_write_ms: STICKY_MS } }))
      await poolReady(pool)
    })

    after(async () => {
      await pool?.end()
    })

    it('a read right after a write in the scope goes to the primary even at EVENTUAL; a replica again after the window', async () => {
      const sql = `/* FRESHNESS: EVENTUAL */ ${PORT}`
      // before any write the scope reads from replicas
      const before = await withScope(() => routed(pool, sql))
      assert.ok(isReplica(before.node), `before the write: served by ${before.node}`)

      await withScope(async () => {
        await pool.query('INSERT INTO marks DEFAULT VALUES')
        const wroteAt = Date.now()
        const first = await routed(pool, sql)
        assert.equal(first.node, 'primary', `right after the write: served by ${first.node}`)
        assert.equal(first.decision.reason, 'sticky_after_write')
        assert.equal(first.decision.tier, 'eventual')
        assert.equal(first.decision.tierSource, 'hint')

        // the window belongs to the scope that wrote: another scope reads from replicas meanwhile
        const other = await withScope(() => routed(pool, sql))
        assert.ok(isReplica(other.node), `another scope during the window: served by ${other.node}`)
        assert.equal(other.decision.reason, 'replica')

        // poll until a replica serves this scope again
        const seen: { startedMs: number; endedMs: number; node: string; reason: string }[] = []
        await eventually(
          'a replica serves the scope again after the window',
          async () => {
            const startedMs = Date.now() - wroteAt
            const r = await routed(pool, sql)
            seen.push({ startedMs, endedMs: Date.now() - wroteAt, node: r.node, reason: r.decision.reason })
            return r.node !== 'primary'
          },
          STICKY_MS + 10_000,
        )
        const last = seen.at(-1)!
        const sticky = seen.slice(0, -1)
        assert.ok(isReplica(last.node))
        assert.equal(last.reason, 'replica')
        assert.ok(
          last.endedMs >= STICKY_MS - 100,
          `a replica served the scope ${last.endedMs} ms after the write, inside the ${STICKY_MS} ms window`,
        )
        assert.ok(sticky.length > 0, 'reads during the window were observed')
        for (const s of sticky) {
          assert.equal(s.node, 'primary')
          assert.equal(s.reason, 'sticky_after_write')
          assert.ok(s.startedMs < STICKY_MS, `a sticky read started ${s.startedMs} ms after the write`)
        }
      })
    })
  })

  describe('routing.unannotated: error', () => {
    let pool: FreshetPool

    before(async () => {
      pool = createPool(configFor(cluster, { routing: { unannotated: 'error' } }))
      await poolReady(pool)
    })

    after(async () => {
      await pool?.end()
    })

    it('an unannotated read fails with FRESHET_UNANNOTATED_READ; hinted, context and write statements run', async () => {
      await withScope(async () => {
        const bare = await rejected(pool, `${PORT} FROM marks LIMIT 1`)
        assert.ok(hasCode(bare.error, 'FRESHET_UNANNOTATED_READ'), `rejected with ${String(bare.error)}`)
        assert.equal(bare.decision.reason, 'unannotated_error')
        assert.equal(bare.decision.tierSource, 'unannotated')
        assert.equal(bare.decision.target, null)

        const hinted = await routed(pool, `/* FRESHNESS: EVENTUAL */ ${PORT}`)
        assert.ok(isReplica(hinted.node), `hinted read served by ${hinted.node}`)
        assert.equal(hinted.decision.reason, 'replica')
        assert.equal(hinted.decision.tierSource, 'hint')

        const context = await freshness('eventual', () => routed(pool, PORT))
        assert.ok(isReplica(context.node), `context tier read served by ${context.node}`)
        assert.equal(context.decision.tierSource, 'context')

        const primary = await withPrimary(() => routed(pool, PORT))
        assert.equal(primary.node, 'primary')
        assert.equal(primary.decision.reason, 'context_primary')

        // the rule is about reads: a write has no tier and goes to the primary
        const write = await routed(
          pool,
          `INSERT INTO marks DEFAULT VALUES RETURNING inet_server_port() AS port`,
        )
        assert.equal(write.node, 'primary')
        assert.equal(write.decision.reason, 'write')
      })
    })
  })

  describe('routing.unannotated: <tier name>', () => {
    let pool: FreshetPool

    before(async () => {
      pool = createPool(configFor(cluster, { routing: { unannotated: 'eventual', tiers: TIERS } }))
      await poolReady(pool)
    })

    after(async () => {
      await pool?.end()
    })

    it('an unannotated read is routed by that tier: a replica serves it', async () => {
      await withScope(async () => {
        const nodes = new Set<string>()
        for (let i = 0; i < 6; i++) {
          const r = await routed(pool, `${PORT} FROM marks LIMIT 1`)
          assert.ok(isReplica(r.node), `unannotated read ${i} served by ${r.node}`)
          assert.equal(r.decision.reason, 'replica')
          assert.equal(r.decision.tier, 'eventual')
          assert.equal(r.decision.tierSource, 'unannotated')
          nodes.add(r.node)
        }
        assert.ok(nodes.size >= 1)
        // a hint still beats the unannotated tier
        const strict = await routed(pool, `/* FRESHNESS: STRICT */ ${PORT}`)
        assert.equal(strict.node, 'primary')
        assert.equal(strict.decision.reason, 'strict_tier')
        // and writes still go to the primary
        const write = await routed(
          pool,
          `INSERT INTO marks DEFAULT VALUES RETURNING inet_server_port() AS port`,
        )
        assert.equal(write.node, 'primary')
      })
      // the default, for contrast, is verified in routing.test.ts: unannotated_primary
      assert.equal(withScope(() => pool.explain(PORT)).tierSource, 'unannotated')
    })
  })

  describe('emergency controls (pool.engine.setControls)', () => {
    let pool: FreshetPool

    before(async () => {
      pool = createPool(configFor(cluster, { routing: { tiers: TIERS } }))
      await poolReady(pool)
    })

    after(async () => {
      await pool?.end()
    })

    afterEach(() => {
      pool.engine.setControls({ route_all_to_primary: false, disable_replica_pools: false })
    })

    for (const control of ['route_all_to_primary', 'disable_replica_pools'] as const) {
      it(`${control} sends hinted reads to the primary; turning it off restores replica reads`, async () => {
        await withScope(async () => {
          const sql = `/* FRESHNESS: EVENTUAL */ ${PORT}`
          const before = await routed(pool, sql)
          assert.ok(isReplica(before.node), `before: served by ${before.node}`)
          assert.equal(before.decision.reason, 'replica')

          const controls = pool.engine.setControls({ [control]: true })
          assert.equal(controls[control], true)
          for (const hinted of [
            sql,
            `/* FRESHNESS: NEAR_RT */ ${PORT}`,
            `/*+ ROUTE_TO: replica */ ${PORT}`,
            `/*+ ROUTE_TO: replica_2 */ ${PORT}`,
          ]) {
            const on = await routed(pool, hinted)
            assert.equal(on.node, 'primary', `with ${control}: ${hinted} served by ${on.node}`)
            assert.equal(on.decision.reason, 'emergency_primary')
          }
          const context = await freshness('eventual', () => routed(pool, PORT))
          assert.equal(context.node, 'primary')
          assert.equal(context.decision.reason, 'emergency_primary')

          pool.engine.setControls({ [control]: false })
          const off = await routed(pool, sql)
          assert.ok(isReplica(off.node), `after turning ${control} off: served by ${off.node}`)
          assert.equal(off.decision.reason, 'replica')
          const named = await routed(pool, `/*+ ROUTE_TO: replica_2 */ ${PORT}`)
          assert.equal(named.node, 'replica_2')
        })
      })
    }
  })
})
