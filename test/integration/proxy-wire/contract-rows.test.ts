// Decision-order rows of docs/routing.md observed through the proxy with a real pg client against a real
// cluster: emergency controls, ROUTE_TO, the statement class inside an EVENTUAL session (locking reads,
// DML in a CTE, nextval, routing.write_functions, CALL, DO, LOCK), the least_lagged fallback, a tier's
// fallback_rate_limit and routing.unannotated: error. Each row is checked on the node that served the
// statement (inet_server_port(), a NOTICE, or the primary's pg_locks) and on the engine's decision.

import assert from 'node:assert/strict'
import { after, afterEach, before, describe, it } from 'node:test'
import pg from 'pg'
import type { Decision } from '../../../src/core/route/decision.js'
import { eventually } from '../../support/eventually.js'
import { type ProxyFixture, startProxyFixture } from '../../support/proxy-fixture.js'

const EVENTUAL_PORT = '/* FRESHNESS: EVENTUAL */ SELECT inet_server_port() AS port'

interface SqlError {
  code?: string
  message: string
}

/** Helpers bound to one fixture. */
function helpers(get: () => ProxyFixture) {
  async function connect(): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: get().url() })
    c.on('error', () => {})
    await c.connect()
    return c
  }

  /** Runs `sql` (which returns a `port` column) and reports the node that served it and the decision. */
  async function routed(c: pg.Client, sql: string): Promise<{ node: string; decision: Decision }> {
    const f = get()
    const seen: Decision[] = []
    const on = (d: Decision) => seen.push(d)
    f.engine.on('decision', on)
    let res: pg.QueryResult
    try {
      res = await c.query(sql)
    } finally {
      f.engine.off('decision', on)
    }
    assert.ok(seen.length > 0, `a decision for ${sql}`)
    const port = res.rows[0]?.port
    assert.ok(port !== undefined, `${sql} returned a port`)
    return { node: f.nodeOf(Number(port)), decision: seen[seen.length - 1]! }
  }

  /** The decision the engine made for `sql` (run for its side effects). */
  async function decisionOf(c: pg.Client, sql: string): Promise<Decision> {
    const f = get()
    const seen: Decision[] = []
    const on = (d: Decision) => seen.push(d)
    f.engine.on('decision', on)
    try {
      await c.query(sql)
    } finally {
      f.engine.off('decision', on)
    }
    assert.ok(seen.length > 0, `a decision for ${sql}`)
    return seen[seen.length - 1]!
  }

  return { connect, routed, decisionOf }
}

function isReplica(node: string): boolean {
  return node === 'replica_1' || node === 'replica_2'
}

describe('proxy wire: decision-order rows', () => {
  let f: ProxyFixture
  const { connect, routed, decisionOf } = helpers(() => f)

  before(async () => {
    f = await startProxyFixture(
      {
        pools: {
          primary: { min_idle: 0, max_active: 6, connection_timeout_ms: 5000 },
          replicas: { min_idle: 0, max_active: 6, connection_timeout_ms: 5000 },
          slow_start_ms: 0,
        },
        routing: {
          write_functions: ['reserve_slot'],
          tiers: {
            strict: { max_lag_ms: 0, fallback: 'primary' },
            near_rt: { max_lag_ms: 500, fallback: 'primary' },
            eventual: { max_lag_ms: 60000, fallback: 'least_lagged' },
            bounded: { max_lag_ms: 200, fallback: 'least_lagged' },
            capped: { max_lag_ms: 200, fallback: 'primary', fallback_rate_limit: 1 },
          },
        },
      },
      2,
      async (cluster) => {
        const setup = [
          'CREATE TABLE items (id int PRIMARY KEY, v text)',
          "INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 20) g",
          'CREATE TABLE audit (id serial PRIMARY KEY, note text)',
          'CREATE TABLE marks (id serial PRIMARY KEY)',
          'CREATE SEQUENCE ticket_seq',
          // STABLE on purpose: only its place in routing.write_functions sends it to the primary
          // (a volatile function would go there for being volatile)
          'CREATE FUNCTION reserve_slot(n int) RETURNS int LANGUAGE sql STABLE AS $$ SELECT inet_server_port() + 0 * n $$',
          'CREATE FUNCTION peek_slot(n int) RETURNS int LANGUAGE sql STABLE AS $$ SELECT inet_server_port() + 0 * n $$',
          // a procedure that only reads: a replica could run it, so only CALL's class sends it to the primary
          'CREATE PROCEDURE where_am_i(INOUT port int) LANGUAGE plpgsql AS $$ BEGIN port := inet_server_port(); END $$',
          'GRANT ALL ON items, audit, marks TO app',
          'GRANT ALL ON SEQUENCE ticket_seq, audit_id_seq, marks_id_seq TO app',
        ]
        for (const sql of setup) await cluster.query('primary', sql)
      },
    )
  })

  after(async () => {
    await f?.stop()
  })

  describe('emergency controls', () => {
    afterEach(() => {
      f.engine.setControls({ route_all_to_primary: false, disable_replica_pools: false })
    })

    for (const control of ['route_all_to_primary', 'disable_replica_pools'] as const) {
      it(`${control} sends a hinted EVENTUAL read to the primary, and a replica serves it again once off`, async () => {
        const c = await connect()
        try {
          const before = await routed(c, EVENTUAL_PORT)
          assert.ok(isReplica(before.node), `before: served by ${before.node}`)
          assert.equal(before.decision.reason, 'replica')

          f.engine.setControls({ [control]: true })
          for (let i = 0; i < 4; i++) {
            const on = await routed(c, EVENTUAL_PORT)
            assert.equal(on.node, 'primary', `with ${control}: served by ${on.node}`)
            assert.equal(on.decision.reason, 'emergency_primary')
            assert.equal(on.decision.target, 'primary')
          }

          f.engine.setControls({ [control]: false })
          for (let i = 0; i < 4; i++) {
            const off = await routed(c, EVENTUAL_PORT)
            assert.ok(isReplica(off.node), `after ${control} off: served by ${off.node}`)
            assert.equal(off.decision.reason, 'replica')
          }
        } finally {
          await c.end()
        }
      })
    }
  })

  describe('emergency controls and an open transaction', () => {
    afterEach(() => {
      f.engine.setControls({ route_all_to_primary: false })
    })

    it('a transaction open on a replica keeps it; the next statement after COMMIT goes to the primary', async () => {
      const c = await connect()
      try {
        await c.query("SET freshet.freshness = 'eventual'")
        await c.query('BEGIN READ ONLY')
        const first = await routed(c, 'SELECT inet_server_port() AS port')
        assert.ok(isReplica(first.node), `the read-only transaction runs on ${first.node}`)
        f.engine.setControls({ route_all_to_primary: true })
        const inside = await routed(c, 'SELECT inet_server_port() AS port')
        assert.equal(inside.node, first.node, 'the transaction keeps its node')
        assert.equal(inside.decision.reason, 'pinned_transaction')
        await c.query('COMMIT')
        const next = await routed(c, 'SELECT inet_server_port() AS port')
        assert.equal(next.node, 'primary')
        assert.equal(next.decision.reason, 'emergency_primary')
      } finally {
        await c.end()
      }
    })
  })

  describe('ROUTE_TO', () => {
    it('primary: a read the tier would send to a replica runs on the primary', async () => {
      const c = await connect()
      try {
        for (let i = 0; i < 3; i++) {
          const r = await routed(c, `/*+ ROUTE_TO: primary */ ${EVENTUAL_PORT}`)
          assert.equal(r.node, 'primary')
          assert.equal(r.decision.reason, 'hint_route')
        }
      } finally {
        await c.end()
      }
    })

    it('a node name: every read runs on that node, for each replica', async () => {
      const c = await connect()
      try {
        for (const name of ['replica_2', 'replica_1']) {
          for (let i = 0; i < 4; i++) {
            const r = await routed(c, `/*+ ROUTE_TO: ${name} */ SELECT inet_server_port() AS port`)
            assert.equal(r.node, name)
            assert.equal(r.decision.reason, 'hint_route')
            assert.equal(r.decision.target, name)
          }
        }
      } finally {
        await c.end()
      }
    })

    it('on BEGIN places the whole transaction on that node', async () => {
      const c = await connect()
      try {
        await c.query('/*+ ROUTE_TO: replica_2 */ BEGIN READ ONLY')
        try {
          for (let i = 0; i < 3; i++) {
            assert.equal((await routed(c, 'SELECT inet_server_port() AS port')).node, 'replica_2')
          }
        } finally {
          await c.query('COMMIT')
        }
      } finally {
        await c.end()
      }
    })

    it('a write naming a replica still runs on the primary', async () => {
      const c = await connect()
      try {
        const r = await routed(
          c,
          "/*+ ROUTE_TO: replica_1 */ INSERT INTO audit (note) VALUES ('hinted') RETURNING inet_server_port() AS port",
        )
        assert.equal(r.node, 'primary')
        assert.equal(r.decision.reason, 'write')
      } finally {
        await c.end()
      }
    })

    it('an unknown node name fails with 42704 and a freshet: message; the client goes on', async () => {
      const c = await connect()
      try {
        await assert.rejects(c.query('/*+ ROUTE_TO: replica_9 */ SELECT 1'), (err: SqlError) => {
          assert.equal(err.code, '42704')
          assert.match(err.message, /^freshet: /)
          assert.match(err.message, /replica_9/)
          return true
        })
        assert.equal((await c.query('SELECT 40 + 2 AS x')).rows[0].x, 42)
      } finally {
        await c.end()
      }
    })
  })

  describe('writes and locking reads in an EVENTUAL session', () => {
    let c: pg.Client

    before(async () => {
      c = await connect()
      await c.query("SET freshet.freshness = 'eventual'")
    })

    after(async () => {
      await c?.end()
    })

    it('the session tier alone sends plain reads to a replica (the control for the rows below)', async () => {
      for (const sql of [
        'SELECT inet_server_port() AS port FROM items WHERE id = 1',
        'SELECT peek_slot(1) AS port',
        'SELECT 1 AS one; SELECT inet_server_port() AS port FROM items LIMIT 1',
      ]) {
        const res = await c.query(sql)
        const rows = Array.isArray(res) ? (res as pg.QueryResult[]).at(-1)!.rows : res.rows
        const node = f.nodeOf(Number(rows[0].port))
        assert.ok(isReplica(node), `${sql}: served by ${node}`)
      }
    })

    it('SELECT ... FOR UPDATE runs on the primary', async () => {
      const r = await routed(c, 'SELECT inet_server_port() AS port, v FROM items WHERE id = 1 FOR UPDATE')
      assert.equal(r.node, 'primary')
      assert.equal(r.decision.reason, 'write')
      assert.equal(r.decision.classReason, 'locking_read')
    })

    it('a CTE with INSERT ... RETURNING runs on the primary and its row is there', async () => {
      const r = await routed(
        c,
        "WITH ins AS (INSERT INTO audit (note) VALUES ('from-cte') RETURNING id) SELECT inet_server_port() AS port, id FROM ins",
      )
      assert.equal(r.node, 'primary')
      assert.equal(r.decision.classReason, 'dml_in_cte')
      const rows = await f.cluster.query(
        'primary',
        "SELECT count(*)::int AS n FROM audit WHERE note = 'from-cte'",
      )
      assert.equal(rows.rows[0]?.n, 1)
    })

    it("SELECT nextval('ticket_seq') runs on the primary and advances its sequence", async () => {
      const r = await routed(c, "SELECT nextval('ticket_seq') AS n, inet_server_port() AS port")
      assert.equal(r.node, 'primary')
      assert.equal(r.decision.classReason, 'write_function')
      const seq = await f.cluster.query('primary', 'SELECT last_value::int AS v, is_called FROM ticket_seq')
      assert.equal(seq.rows[0]?.is_called, true)
      assert.equal(seq.rows[0]?.v, 1)
    })

    it('a function in routing.write_functions runs on the primary (a STABLE one beside it does not)', async () => {
      const r = await routed(c, 'SELECT reserve_slot(1) AS port')
      assert.equal(r.node, 'primary')
      assert.equal(r.decision.reason, 'write')
      assert.equal(r.decision.classReason, 'write_function')
      const peek = await routed(c, 'SELECT peek_slot(1) AS port')
      assert.ok(isReplica(peek.node), `peek_slot served by ${peek.node}`)
    })

    it('CALL of a read-only procedure runs on the primary', async () => {
      const r = await routed(c, 'CALL where_am_i(NULL)')
      assert.equal(r.node, 'primary')
      assert.equal(r.decision.classReason, 'call')
    })

    it('DO runs on the primary (its NOTICE names the server port)', async () => {
      const notices: string[] = []
      const onNotice = (n: { message?: string }) => notices.push(n.message ?? '')
      c.on('notice', onNotice)
      try {
        const d = await decisionOf(c, "DO $$ BEGIN RAISE NOTICE 'port=%', inet_server_port(); END $$")
        assert.equal(d.target, 'primary')
        assert.equal(d.classReason, 'do')
        await eventually('the NOTICE of the DO block', () => notices.some((m) => m.startsWith('port=')))
      } finally {
        c.off('notice', onNotice)
      }
      const port = Number(notices.find((m) => m.startsWith('port='))!.slice(5))
      assert.equal(f.nodeOf(port), 'primary')
    })

    it('over the extended protocol too (parameters, named statements), each runs on the primary', async () => {
      const statements: [string, pg.QueryConfig][] = [
        [
          'FOR UPDATE',
          { text: 'SELECT inet_server_port() AS port FROM items WHERE id = $1 FOR UPDATE', values: [2] },
        ],
        [
          'CTE',
          {
            text: 'WITH ins AS (INSERT INTO audit (note) VALUES ($1) RETURNING id) SELECT inet_server_port() AS port FROM ins',
            values: ['ext-cte'],
          },
        ],
        [
          'nextval',
          { text: 'SELECT nextval($1::regclass) AS n, inet_server_port() AS port', values: ['ticket_seq'] },
        ],
        ['write function', { text: 'SELECT reserve_slot($1) AS port', values: [3] }],
        ['CALL', { text: 'CALL where_am_i($1)', values: [null] }],
      ]
      for (const [what, q] of statements) {
        for (const name of [undefined, `ext_${what.replace(/\W/g, '_')}`]) {
          // a named statement twice: prepared, then bound by name only
          for (let i = 0; i < (name ? 2 : 1); i++) {
            const res = await c.query(name ? { ...q, name } : q)
            const node = f.nodeOf(Number(res.rows[0].port))
            assert.equal(node, 'primary', `${what} (${name ?? 'unnamed'}, run ${i + 1}) served by ${node}`)
          }
        }
      }
      const peek = await c.query({ name: 'ext_peek', text: 'SELECT peek_slot($1) AS port', values: [1] })
      assert.ok(isReplica(f.nodeOf(Number(peek.rows[0].port))), 'the control read runs on a replica')
    })

    it('LOCK TABLE in an implicit transaction block takes the whole string to the primary', async () => {
      const res = (await c.query(
        'LOCK TABLE items IN ACCESS SHARE MODE; SELECT inet_server_port() AS port FROM items LIMIT 1',
      )) as unknown as pg.QueryResult[]
      assert.equal(f.nodeOf(Number(res.at(-1)!.rows[0].port)), 'primary')
    })

    it('LOCK TABLE in a transaction holds the lock on the primary', async () => {
      await c.query('BEGIN')
      try {
        const d = await decisionOf(c, 'LOCK TABLE marks IN ACCESS EXCLUSIVE MODE')
        assert.equal(d.target, 'primary')
        assert.equal(d.classReason, 'lock')
        const locks = await f.cluster.query(
          'primary',
          `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_class r ON r.oid = l.relation
            WHERE r.relname = 'marks' AND l.mode = 'AccessExclusiveLock' AND l.granted AND l.pid <> pg_backend_pid()`,
        )
        assert.equal(locks.rows[0]?.n, 1, 'the primary holds the ACCESS EXCLUSIVE lock')
      } finally {
        await c.query('ROLLBACK')
      }
    })
  })

  describe('lag fallbacks', () => {
    afterEach(async () => {
      for (const r of f.cluster.replicas) {
        await f.cluster.resumeReplay(r.name)
        await f.cluster.setApplyDelay(r.name, 0)
      }
      await f.cluster.waitForCatchUp(20_000)
      await eventually(
        'replicas caught up in the engine',
        () =>
          f.engine
            .snapshot()
            .every(
              (n) => n.role === 'primary' || (n.staleness_bound_ms !== null && n.staleness_bound_ms < 200),
            ),
        20_000,
      )
    })

    /** The staleness bound: what eligibility and least_lagged go by. */
    function lagOf(name: string): number | null {
      return f.engine.snapshot().find((n) => n.name === name)?.staleness_bound_ms ?? null
    }

    it('least_lagged: with both replicas over the bound, the less lagged replica serves the read', async () => {
      await f.cluster.setApplyDelay('replica_2', 700)
      await f.cluster.pauseReplay('replica_1')
      await f.cluster.query('primary', 'INSERT INTO marks DEFAULT VALUES')
      await eventually(
        'replica_2 over 200 ms and replica_1 well behind it',
        () => {
          const l1 = lagOf('replica_1')
          const l2 = lagOf('replica_2')
          return l1 !== null && l2 !== null && l2 > 200 && l1 > l2 + 1500
        },
        20_000,
      )
      const c = await connect()
      try {
        for (let i = 0; i < 4; i++) {
          const r = await routed(c, '/* FRESHNESS: bounded */ SELECT inet_server_port() AS port')
          assert.equal(r.node, 'replica_2', `read ${i} served by ${r.node}`)
          assert.equal(r.decision.reason, 'fallback_least_lagged')
          assert.equal(r.decision.tier, 'bounded')
        }
      } finally {
        await c.end()
      }
    })

    it('fallback_rate_limit: the first fallback goes to the primary, the next one fails with 53400', async () => {
      await f.cluster.pauseReplay('replica_1')
      await f.cluster.pauseReplay('replica_2')
      await f.cluster.query('primary', 'INSERT INTO marks DEFAULT VALUES')
      await eventually(
        'both replicas lag past 200 ms',
        () => [lagOf('replica_1'), lagOf('replica_2')].every((l) => l !== null && l > 400),
        20_000,
      )
      const c = await connect()
      try {
        const sql = '/* FRESHNESS: capped */ SELECT inet_server_port() AS port'
        const first = await routed(c, sql)
        assert.equal(first.node, 'primary')
        assert.equal(first.decision.reason, 'fallback_primary')
        await assert.rejects(c.query(sql), (err: SqlError) => {
          assert.equal(err.code, '53400')
          assert.match(err.message, /^freshet: /)
          assert.match(err.message, /fallback_rate_limit/)
          return true
        })
        // the client goes on, and a second later the bucket allows one more fallback
        assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1)
        const again: string[] = []
        await eventually('a fallback is allowed again', async () => {
          try {
            again.push((await routed(c, sql)).node)
            return true
          } catch (err) {
            if ((err as SqlError).code !== '53400') throw err
            return false
          }
        })
        assert.deepEqual(again, ['primary'])
      } finally {
        await c.end()
      }
    })
  })
})

describe('proxy wire: routing.unannotated error', () => {
  let f: ProxyFixture
  const { connect, routed } = helpers(() => f)

  before(async () => {
    f = await startProxyFixture(
      {
        routing: { unannotated: 'error' },
        pools: {
          primary: { min_idle: 0, max_active: 4, connection_timeout_ms: 5000 },
          replicas: { min_idle: 0, max_active: 4, connection_timeout_ms: 5000 },
          slow_start_ms: 0,
        },
      },
      1,
      async (cluster) => {
        await cluster.query('primary', 'CREATE TABLE notes (id int PRIMARY KEY)')
        await cluster.query('primary', 'GRANT ALL ON notes TO app')
      },
    )
  })

  after(async () => {
    await f?.stop()
  })

  it('fails an unannotated read with ZF002; a hinted read and a write still run', async () => {
    const c = await connect()
    try {
      await assert.rejects(c.query('SELECT inet_server_port() AS port FROM notes'), (err: SqlError) => {
        assert.equal(err.code, 'ZF002')
        assert.match(err.message, /^freshet: /)
        return true
      })
      const hinted = await routed(c, EVENTUAL_PORT)
      assert.equal(hinted.node, 'replica_1')
      assert.equal(hinted.decision.tierSource, 'hint')
      // the rule is about reads: a write has no tier and goes to the primary
      await c.query('INSERT INTO notes VALUES (1)')
      const n = await f.cluster.query('primary', 'SELECT count(*)::int AS n FROM notes')
      assert.equal(n.rows[0]?.n, 1)
      // over the extended protocol: unnamed and named, twice, and the client goes on each time
      for (const q of [
        { text: 'SELECT $1::int AS x', values: [1] },
        { name: 'plain', text: 'SELECT $1::int AS x', values: [1] },
        { name: 'plain', text: 'SELECT $1::int AS x', values: [2] },
      ]) {
        await assert.rejects(c.query(q), (err: SqlError) => {
          assert.equal(err.code, 'ZF002')
          assert.match(err.message, /^freshet: /)
          return true
        })
        const ok = await c.query({ text: '/* FRESHNESS: EVENTUAL */ SELECT $1::int AS x', values: [7] })
        assert.equal(ok.rows[0].x, 7)
      }
      // a session tier annotates reads too
      await c.query("SET freshet.freshness = 'eventual'")
      const session = await routed(c, 'SELECT inet_server_port() AS port')
      assert.equal(session.decision.tierSource, 'session')
    } finally {
      await c.end()
    }
  })
})
