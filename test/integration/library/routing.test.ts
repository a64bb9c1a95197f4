// CONTRACT section 3 through the library, against a real primary and two streaming replicas: which node
// served each statement is read back with inet_server_port().

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import {
  createPool,
  type FreshetPool,
  freshness,
  NoEligibleNodeError,
  readYourWrites,
  withPrimary,
  withScope,
} from '../../../src/index.js'
import { type LocalCluster, startCluster } from '../../cluster/index.js'
import { configFor, nodeByPort, poolReady } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'

const WHERE = 'SELECT inet_server_port() AS port'

describe('library routing against a real cluster', () => {
  let cluster: LocalCluster
  let pool: FreshetPool
  let nodeOf: (port: number) => string

  async function servedBy(sql: string, values?: unknown[]): Promise<string> {
    const res = await pool.query(sql, values)
    return nodeOf(Number(res.rows[0].port))
  }

  before(async () => {
    cluster = await startCluster({ replicas: 2 })
    nodeOf = nodeByPort(cluster)
    await cluster.query('primary', 'CREATE TABLE items (id int PRIMARY KEY, v text)')
    await cluster.query('primary', 'CREATE TABLE ledger_entries (id serial PRIMARY KEY, amount int)')
    await cluster.query('primary', "INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 100) g")
    await cluster.waitForCatchUp()
    pool = createPool(
      configFor(cluster, {
        domains: { ledger_entries: 'strict', items: 'eventual' },
        routing: {
          tiers: {
            strict: { max_lag_ms: 0 },
            near_rt: { max_lag_ms: 500, fallback: 'primary' },
            eventual: { max_lag_ms: 60000, fallback: 'least_lagged' },
            fresh_or_fail: { max_lag_ms: 300, fallback: 'error' },
          },
        },
      }),
    )
    await poolReady(pool)
  })

  after(async () => {
    await pool?.end()
    await cluster?.stop()
  })

  it('sends unannotated reads to the primary by default', async () => {
    assert.equal(await servedBy(WHERE), 'primary')
    assert.equal(pool.explain('SELECT 1').reason, 'unannotated_primary')
  })

  it('explain() is a dry run: no decision event (metrics, logs, dev guard see nothing)', () => {
    let events = 0
    const count = () => {
      events++
    }
    pool.on('decision', count)
    try {
      for (let i = 0; i < 3; i++) pool.explain('/* FRESHNESS: NEAR_RT */ SELECT 1')
      pool.explain('INSERT INTO items VALUES (1000, $1)')
    } finally {
      pool.off('decision', count)
    }
    assert.equal(events, 0)
  })

  it('sends a FRESHNESS hint read to a replica, and spreads reads over both', async () => {
    const seen = new Set<string>()
    for (let i = 0; i < 10; i++) seen.add(await servedBy(`/* FRESHNESS: NEAR_RT */ ${WHERE}`))
    assert.deepEqual([...seen].sort(), ['replica_1', 'replica_2'])
  })

  it('uses the request context tier: freshness(tier, fn)', async () => {
    const node = await freshness('eventual', () => servedBy(WHERE))
    assert.match(node, /^replica_/)
  })

  it('sends writes, locking reads, DML in CTEs, nextval and unparsable SQL to the primary', async () => {
    await freshness('eventual', async () => {
      for (const sql of [
        `WITH w AS (INSERT INTO items VALUES (1000, 'x') RETURNING 1) ${WHERE}`,
        `${WHERE} FROM items WHERE id = 1 FOR UPDATE`,
        `SELECT inet_server_port() AS port, nextval('ledger_entries_id_seq')`,
      ]) {
        assert.equal(await servedBy(sql), 'primary', sql)
      }
    })
    const d = pool.explain('SELEC oops')
    assert.equal(d.target, 'primary')
    assert.ok(d.parseError)
  })

  it('honours ROUTE_TO hints and withPrimary', async () => {
    assert.equal(await servedBy(`/*+ ROUTE_TO: replica_2 */ ${WHERE}`), 'replica_2')
    assert.equal(await freshness('eventual', () => servedBy(`/*+ ROUTE_TO: primary */ ${WHERE}`)), 'primary')
    assert.equal(await freshness('eventual', () => withPrimary(() => servedBy(WHERE))), 'primary')
  })

  it('takes the strictest domains tier of the tables a read touches', async () => {
    // items is eventual: a replica; ledger_entries is strict: the primary, even with items joined.
    assert.match(await servedBy(`${WHERE} FROM items LIMIT 1`), /^replica_/)
    assert.equal(
      await servedBy(`${WHERE} FROM items, ledger_entries LIMIT 1`).catch(() => 'primary'),
      'primary',
    )
    const d = pool.explain('SELECT * FROM items JOIN ledger_entries ON true')
    assert.equal(d.tier, 'strict')
    assert.equal(d.tierSource, 'domain')
    assert.equal(d.domainTable, 'ledger_entries')
  })

  it('pins a transaction to one node from BEGIN to COMMIT, and READ ONLY transactions may use a replica', async () => {
    const client = await pool.connect()
    try {
      await client.query('BEGIN')
      const first = nodeOf(Number((await client.query(`/* FRESHNESS: EVENTUAL */ ${WHERE}`)).rows[0].port))
      assert.equal(first, 'primary')
      await client.query("INSERT INTO items VALUES (2000, 'tx')")
      assert.equal(nodeOf(Number((await client.query(WHERE)).rows[0].port)), 'primary')
      await client.query('COMMIT')
      await freshness('eventual', async () => {
        await client.query('BEGIN READ ONLY')
        const ports = new Set<string>()
        for (let i = 0; i < 3; i++) ports.add(nodeOf(Number((await client.query(WHERE)).rows[0].port)))
        await client.query('COMMIT')
        assert.equal(ports.size, 1, 'all statements of the transaction ran on one node')
        assert.match([...ports][0]!, /^replica_/)
      })
    } finally {
      client.release()
    }
  })

  it('pins session state (temp tables) to one connection until release', async () => {
    const client = await pool.connect()
    try {
      await client.query('CREATE TEMP TABLE scratch (x int)')
      await client.query('INSERT INTO scratch VALUES (1)')
      const res = await freshness('eventual', () => client.query('SELECT count(*)::int AS n FROM scratch'))
      assert.equal(res.rows[0].n, 1)
    } finally {
      client.release()
    }
  })

  it('route_all_to_primary sends everything to the primary on the next statement', async () => {
    pool.engine.setControls({ route_all_to_primary: true })
    try {
      assert.equal(await servedBy(`/* FRESHNESS: EVENTUAL */ ${WHERE}`), 'primary')
      assert.equal(pool.explain('/* FRESHNESS: EVENTUAL */ SELECT 1').reason, 'emergency_primary')
    } finally {
      pool.engine.setControls({ route_all_to_primary: false })
    }
    assert.match(await servedBy(`/* FRESHNESS: EVENTUAL */ ${WHERE}`), /^replica_/)
  })

  it('reads its own writes with every replica paused, then uses replicas again once they replay', async () => {
    await cluster.pauseReplay('replica_1')
    await cluster.pauseReplay('replica_2')
    try {
      await withScope(async () => {
        await pool.query("INSERT INTO items VALUES (3000, 'mine')")
        const token = pool.lastWriteToken()
        assert.match(token ?? '', /^[0-9A-F]+\/[0-9A-F]+$/)
        // EVENTUAL would accept a paused replica (lag well under 60 s): the token must still win.
        const res = await freshness('eventual', () =>
          pool.query('SELECT inet_server_port() AS port, (SELECT v FROM items WHERE id = 3000) AS v'),
        )
        assert.equal(res.rows[0].v, 'mine')
        assert.equal(nodeOf(Number(res.rows[0].port)), 'primary')
      })
    } finally {
      await cluster.resumeReplay('replica_1')
      await cluster.resumeReplay('replica_2')
    }
    // A token carried to another scope (e.g. from an HTTP header) works the same way.
    const token = await withScope(async () => {
      await pool.query("INSERT INTO items VALUES (3001, 'carried')")
      return pool.lastWriteToken()
    })
    const res = await readYourWrites(token, () =>
      freshness('eventual', () =>
        pool.query('SELECT inet_server_port() AS port, (SELECT v FROM items WHERE id = 3001) AS v'),
      ),
    )
    assert.equal(res.rows[0].v, 'carried')
  })

  it('excludes a paused replica from NEAR_RT within a few probe intervals, and uses it again after resume', async () => {
    await cluster.pauseReplay('replica_1')
    try {
      // Writes keep the primary moving so the paused replica's heartbeat ages.
      const writer = setInterval(
        () => void pool.query('UPDATE items SET v = v WHERE id = 1').catch(() => {}),
        50,
      )
      try {
        await eventually(
          'replica_1 lag over 500 ms',
          () => (pool.snapshot().find((n) => n.name === 'replica_1')?.lag_ms ?? 0) > 500,
        )
        for (let i = 0; i < 6; i++)
          assert.equal(await servedBy(`/* FRESHNESS: NEAR_RT */ ${WHERE}`), 'replica_2')
        // the lag in WAL bytes shows too: the paused replica is behind, the streaming one is not far
        await eventually('replica_1 behind in WAL bytes', () => {
          const r1 = pool.snapshot().find((n) => n.name === 'replica_1')
          return (r1?.lag_bytes ?? 0) > 0 && r1?.replay_paused === true
        })
        assert.equal(pool.snapshot().find((n) => n.role === 'primary')?.lag_bytes, null)
      } finally {
        clearInterval(writer)
      }
    } finally {
      await cluster.resumeReplay('replica_1')
    }
    await eventually(
      'replica_1 caught up in WAL bytes after resume',
      () => pool.snapshot().find((n) => n.name === 'replica_1')?.lag_bytes === 0,
    )
    await eventually('replica_1 back within NEAR_RT', async () => {
      const seen = new Set<string>()
      for (let i = 0; i < 4; i++) seen.add(await servedBy(`/* FRESHNESS: NEAR_RT */ ${WHERE}`))
      return seen.has('replica_1')
    })
  })

  it('fails a read with FRESHET_NO_ELIGIBLE_NODE when no replica is fresh enough and the fallback is error', async () => {
    await cluster.pauseReplay('replica_1')
    await cluster.pauseReplay('replica_2')
    const writer = setInterval(
      () => void pool.query('UPDATE items SET v = v WHERE id = 2').catch(() => {}),
      50,
    )
    try {
      await eventually('both replicas over 600 ms behind, past the NEAR_RT bound', () =>
        pool.snapshot().every((n) => n.role === 'primary' || (n.lag_ms ?? 0) > 600),
      )
      await assert.rejects(
        withScope(() => pool.query('/* FRESHNESS: fresh_or_fail */ SELECT 1')),
        (err: Error & { code?: string }) =>
          err instanceof NoEligibleNodeError &&
          err.code === 'FRESHET_NO_ELIGIBLE_NODE' &&
          /^freshet: /.test(err.message),
      )
      // NEAR_RT falls back to the primary instead of failing: never a stale read.
      assert.equal(await withScope(() => servedBy(`/* FRESHNESS: NEAR_RT */ ${WHERE}`)), 'primary')
    } finally {
      clearInterval(writer)
      await cluster.resumeReplay('replica_1')
      await cluster.resumeReplay('replica_2')
    }
  })

  it('explains a decision with target, tier, reason, lag and timing', async () => {
    await eventually('replicas back within NEAR_RT', () =>
      pool.snapshot().every((n) => n.role === 'primary' || (n.lag_ms !== null && n.lag_ms < 400)),
    )
    // A fresh scope: earlier tests' writes outside any scope left a pool-wide read-your-writes token.
    const d = withScope(() => pool.explain('/* FRESHNESS: NEAR_RT */ SELECT * FROM items'))
    assert.equal(d.tier, 'near_rt')
    assert.equal(d.reason, 'replica')
    assert.equal(d.role, 'replica')
    assert.equal(typeof d.lagMs, 'number')
    assert.ok(d.decideNs > 0)
    assert.ok(Object.isFrozen(d))
  })
})
