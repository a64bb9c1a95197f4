// Engine reloads while clients run a steady mix of reads, writes and transactions through the proxy:
// no client sees an error, nobody loses a write or reads past their own writes, every decision made
// under a config version follows that version (a control and a tier bound changed), and statements sent
// after a reload land where the new config says.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { validateConfig } from '../../../src/core/config/parse-config.js'
import type { Decision } from '../../../src/core/route/decision.js'
import { configFor } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'
import { type ProxyFixture, startProxyFixture } from '../../support/proxy-fixture.js'

const FLEX_READ = '/* FRESHNESS: flex */ SELECT inet_server_port() AS port, count(*)::int AS n FROM ledger'
const READERS = 3
const WRITERS = 3

const TIERS = {
  strict: { max_lag_ms: 0, fallback: 'primary' },
  near_rt: { max_lag_ms: 500, fallback: 'primary' },
  eventual: { max_lag_ms: 60000, fallback: 'least_lagged' },
}

const PATCH = {
  pools: {
    primary: { min_idle: 1, max_active: 6, connection_timeout_ms: 5000 },
    replicas: { min_idle: 1, max_active: 6, connection_timeout_ms: 5000 },
    slow_start_ms: 0,
  },
  // version 1: everything on the primary, and tier flex is strict
  controls: { route_all_to_primary: true },
  routing: { tiers: { ...TIERS, flex: { max_lag_ms: 0, fallback: 'primary' } } },
}

/**
 * A statement a client finished: the config version when it was sent and when its answer came (equal:
 * it was decided under that version), and the node that served it.
 */
interface Done {
  client: number
  kind: 'read' | 'write' | 'tx' | 'own_read'
  sentUnder: number
  answeredUnder: number
  node: string
}

describe('proxy: engine reload under traffic', () => {
  let f: ProxyFixture

  before(async () => {
    f = await startProxyFixture(PATCH, 2, async (cluster) => {
      await cluster.query(
        'primary',
        'CREATE TABLE ledger (id serial PRIMARY KEY, client int NOT NULL, n int)',
      )
      await cluster.query('primary', 'GRANT ALL ON ledger, ledger_id_seq TO app')
    })
  })

  after(async () => {
    await f?.stop()
  })

  /** The running config with `patch` over the test's own, at version + 1 (the proxy section kept). */
  function nextConfig(patch: Record<string, unknown>) {
    return validateConfig({
      ...configFor(f.cluster, { ...PATCH, ...patch }),
      proxy: f.engine.config.proxy,
      version: f.engine.config.version + 1,
    })
  }

  it('no client sees an error, and each statement follows the config it was decided under', async () => {
    const startVersion = f.engine.config.version
    const done: Done[] = []
    const errors: { client: number; kind: string; error: string }[] = []
    const decisions: { version: number; decision: Decision }[] = []
    const onDecision = (decision: Decision) => decisions.push({ version: f.engine.config.version, decision })
    f.engine.on('decision', onDecision)

    const clients = await Promise.all(
      Array.from({ length: READERS + WRITERS }, async () => {
        const c = new pg.Client({ connectionString: f.url() })
        c.on('error', (err) => errors.push({ client: -1, kind: 'connection', error: err.message }))
        await c.connect()
        return c
      }),
    )
    let running = true
    const inserted = new Array<number>(READERS + WRITERS).fill(0)

    async function step(client: number, kind: Done['kind'], fn: () => Promise<number>): Promise<void> {
      const sentUnder = f.engine.config.version
      try {
        const port = await fn()
        done.push({ client, kind, sentUnder, answeredUnder: f.engine.config.version, node: f.nodeOf(port) })
      } catch (err) {
        errors.push({ client, kind, error: `${(err as { code?: string }).code}: ${(err as Error).message}` })
      }
    }

    async function reader(client: number, c: pg.Client): Promise<void> {
      while (running) {
        await step(client, 'read', async () => Number((await c.query(FLEX_READ)).rows[0].port))
      }
    }

    async function writer(client: number, c: pg.Client): Promise<void> {
      let i = 0
      while (running) {
        i++
        if (i % 2 === 0) {
          await step(client, 'write', async () => {
            const res = await c.query(
              'INSERT INTO ledger (client, n) VALUES ($1, $2) RETURNING inet_server_port() AS port',
              [client, i],
            )
            inserted[client]!++
            return Number(res.rows[0].port)
          })
        } else {
          await step(client, 'tx', async () => {
            await c.query('BEGIN')
            try {
              await c.query('INSERT INTO ledger (client, n) VALUES ($1, $2)', [client, i])
              const res = await c.query(
                'SELECT inet_server_port() AS port FROM ledger WHERE client = $1 ORDER BY id DESC LIMIT 1 FOR UPDATE',
                [client],
              )
              await c.query('COMMIT')
              inserted[client]!++
              return Number(res.rows[0].port)
            } catch (err) {
              await c.query('ROLLBACK').catch(() => {})
              throw err
            }
          })
        }
        // read-your-writes through whatever the config is now: never behind this client's own writes
        await step(client, 'own_read', async () => {
          const res = await c.query(
            '/* FRESHNESS: flex */ SELECT inet_server_port() AS port, count(*)::int AS n FROM ledger WHERE client = $1',
            [client],
          )
          assert.equal(
            res.rows[0].n,
            inserted[client],
            `client ${client} reads its ${inserted[client]} writes`,
          )
          return Number(res.rows[0].port)
        })
      }
    }

    const loops = clients.map((c, i) => (i < READERS ? reader(i, c) : writer(i, c)))
    // statements sent and answered under one version (those in flight across a reload may go either way)
    const under = (version: number) =>
      done.filter((d) => d.sentUnder === version && d.answeredUnder === version)
    const readsUnder = (version: number) => under(version).filter((d) => d.kind === 'read').length
    const writesUnder = (version: number) => under(version).filter((d) => d.kind !== 'read').length
    const steady = (version: number) =>
      eventually(
        `traffic under version ${version}`,
        () => readsUnder(version) >= 150 && writesUnder(version) >= 60,
        30_000,
      )

    try {
      await steady(startVersion)

      // v+1: the control off and tier flex relaxed: flex reads move to the replicas
      f.engine.reload(
        nextConfig({
          controls: { route_all_to_primary: false },
          routing: { tiers: { ...TIERS, flex: { max_lag_ms: 60000, fallback: 'primary' } } },
        }),
      )
      const relaxed = startVersion + 1
      assert.equal(f.engine.config.version, relaxed)
      await steady(relaxed)

      // v+2: only the bound changes back to 0: flex reads return to the primary as strict_tier
      f.engine.reload(
        nextConfig({
          controls: { route_all_to_primary: false },
          routing: { tiers: { ...TIERS, flex: { max_lag_ms: 0, fallback: 'primary' } } },
        }),
      )
      const strict = startVersion + 2
      assert.equal(f.engine.config.version, strict)
      await steady(strict)
    } finally {
      running = false
      await Promise.all(loops)
      f.engine.off('decision', onDecision)
      await Promise.all(clients.map((c) => c.end()))
    }

    assert.deepEqual(errors, [], 'no client saw an error')
    const relaxed = startVersion + 1
    const strict = startVersion + 2
    assert.equal(f.engine.config.version, strict)
    assert.equal(f.engine.config.controls.route_all_to_primary, false)
    assert.equal(f.engine.config.routing.tiers.flex?.max_lag_ms, 0)

    // where statements sent under each version ran
    const nodes = (version: number, kind: Done['kind']) =>
      new Set(
        under(version)
          .filter((d) => d.kind === kind)
          .map((d) => d.node),
      )
    assert.deepEqual([...nodes(startVersion, 'read')], ['primary'], 'v1: reads on the primary (control on)')
    assert.deepEqual(
      [...nodes(relaxed, 'read')].sort(),
      ['replica_1', 'replica_2'],
      'v2: flex reads on the replicas',
    )
    assert.deepEqual([...nodes(strict, 'read')], ['primary'], 'v3: flex reads on the primary (strict bound)')
    for (const version of [startVersion, relaxed, strict]) {
      assert.deepEqual([...nodes(version, 'write')], ['primary'], `v${version}: writes on the primary`)
      assert.deepEqual([...nodes(version, 'tx')], ['primary'], `v${version}: transactions on the primary`)
    }

    // every decision follows the config it was made under
    const reasons = (version: number, pick: (d: Decision) => boolean) =>
      new Set(
        decisions.filter((d) => d.version === version && pick(d.decision)).map((d) => d.decision.reason),
      )
    const all = () => true
    const flex = (d: Decision) => d.tier === 'flex'
    assert.ok(
      [...reasons(startVersion, all)].every((r) => r === 'emergency_primary' || r === 'pinned_transaction'),
      `v1 reasons: ${[...reasons(startVersion, all)]}`,
    )
    assert.ok(!reasons(relaxed, all).has('emergency_primary'), 'v2: the control is off')
    assert.ok(!reasons(strict, all).has('emergency_primary'), 'v3: the control is off')
    assert.ok(
      [...reasons(relaxed, flex)].every((r) => r === 'replica' || r === 'read_your_writes'),
      `v2 flex reasons: ${[...reasons(relaxed, flex)]}`,
    )
    assert.ok(reasons(relaxed, flex).has('replica'))
    assert.deepEqual([...reasons(strict, flex)], ['strict_tier'])

    // no write lost or doubled
    const rows = await f.cluster.query(
      'primary',
      'SELECT client, count(*)::int AS n FROM ledger GROUP BY client',
    )
    const counted = new Array<number>(READERS + WRITERS).fill(0)
    for (const r of rows.rows) counted[r.client] = r.n
    assert.deepEqual(counted, inserted)
  })
})
