// createMysqlPool against a real MariaDB primary with two GTID replicas: statement routing, context
// helpers, pinning on getConnection(), the admin API, and bad config. The serving node is read back with @@port.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { startAdmin } from '../../../src/admin/admin-server.js'
import { ConfigError } from '../../../src/core/errors.js'
import { createMysqlPool, freshness, type MysqlPool, withPrimary } from '../../../src/mysql/index.js'
import { eventually } from '../../support/eventually.js'
import { type MariadbFixture, mariadbConfigFor, startMariadbFixture } from '../../support/mariadb-fixture.js'

const PORT = 'SELECT @@port AS port'

describe('createMysqlPool: routing on a MariaDB cluster', () => {
  let fx: MariadbFixture
  let pool: MysqlPool
  const on = (sql: string, values?: unknown) => fx.servedBy((s) => pool.query(s, values), sql)

  before(async () => {
    fx = await startMariadbFixture({
      setupSql: [
        'CREATE TABLE accounts (id INT AUTO_INCREMENT PRIMARY KEY, owner VARCHAR(64) NOT NULL, balance INT NOT NULL)',
        "INSERT INTO accounts (owner, balance) VALUES ('ada', 100), ('bob', 50)",
        'CREATE TABLE ledger (id INT AUTO_INCREMENT PRIMARY KEY, note TEXT)',
      ],
      patch: { domains: { ledger: 'strict' } },
    })
    pool = fx.pool
  })

  after(async () => {
    await fx?.stop()
  })

  it('sends unannotated reads to the primary and FRESHNESS-hinted reads to the replicas, both of them', async () => {
    assert.equal(await on(PORT), 'primary')
    const seen = new Set<string>()
    for (let i = 0; i < 6; i++) seen.add(await on(`/* FRESHNESS: EVENTUAL */ ${PORT}`))
    assert.deepEqual([...seen].sort(), ['replica_1', 'replica_2'])
    assert.match(await on(`/*freshness='near_rt'*/ ${PORT} FROM accounts WHERE id = ?`, [1]), /^replica_/)
  })

  it('runs writes on the primary and returns mysql2 results (insertId, affectedRows)', async () => {
    const [res] = await pool.query('INSERT INTO accounts (owner, balance) VALUES (?, ?)', ['cy', 7])
    const header = res as { insertId: number; affectedRows: number }
    assert.equal(header.affectedRows, 1)
    assert.ok(header.insertId > 2)
    assert.match(pool.lastWriteToken() ?? '', /^0-1-\d+$/)
    const [rows] = await pool.execute('SELECT owner FROM accounts WHERE id = ?', [header.insertId])
    assert.deepEqual(rows, [{ owner: 'cy' }])
  })

  it('keeps locking reads, SELECT INTO, side-effect functions, variable assignment and unparsable text on the primary', async () => {
    const hinted = [
      'SELECT @@port AS port FROM accounts WHERE id = 1 FOR UPDATE',
      'SELECT @@port AS port FROM accounts WHERE id = 1 LOCK IN SHARE MODE',
      'SELECT @@port AS port, GET_LOCK("k", 0) AS l, RELEASE_LOCK("k") AS r',
      'SELECT @@port AS port, LAST_INSERT_ID() AS id',
      'SELECT @@port AS port, @x := 1 AS x',
      'SELECT /*!40001 SQL_NO_CACHE */ @@port AS port',
    ]
    for (const sql of hinted) assert.equal(await on(`/* FRESHNESS: EVENTUAL */ ${sql}`), 'primary', sql)
    for (const [sql, reason] of [
      ['SELECT balance INTO @b FROM accounts WHERE id = 1', 'select_into'],
      ['CALL some_procedure()', 'call'],
      ["LOAD DATA INFILE '/tmp/x' INTO TABLE accounts", 'load_data'],
      ['SELECT NEXTVAL(seq)', 'write_function'],
      ['SELECT FROM WHERE', 'unparsable'],
    ] as const) {
      const d = pool.explain(`/* FRESHNESS: EVENTUAL */ ${sql}`)
      assert.equal(d.role, 'primary', sql)
      assert.equal(d.classReason, reason, sql)
    }
  })

  it('applies freshness(), withPrimary() and domains like the PostgreSQL face', async () => {
    assert.match(await freshness('eventual', () => on(PORT)), /^replica_/)
    assert.equal(await freshness('eventual', () => withPrimary(() => on(PORT))), 'primary')
    // ledger is a strict domain: an unannotated read of it is decided by its tier (the decider's order:
    // hint, context, session tier, then domains)
    const d = pool.explain('SELECT * FROM ledger')
    assert.equal(d.reason, 'strict_tier')
    assert.equal(d.tierSource, 'domain')
    assert.equal(d.domainTable, 'ledger')
    assert.equal(await on(`${PORT}, (SELECT COUNT(*) FROM ledger) AS n`), 'primary')
  })

  it('routes each statement of an idle connection on its own, and pins BEGIN..COMMIT to the primary', async () => {
    const conn = await pool.getConnection()
    try {
      assert.match(await fx.servedBy((s) => conn.query(s), `/* FRESHNESS: EVENTUAL */ ${PORT}`), /^replica_/)
      await conn.beginTransaction()
      assert.equal(conn.pinnedNode, 'primary')
      assert.equal(await fx.servedBy((s) => conn.query(s), `/* FRESHNESS: EVENTUAL */ ${PORT}`), 'primary')
      const [ins] = await conn.query('INSERT INTO ledger (note) VALUES (?)', ['in tx'])
      // LAST_INSERT_ID() sees the insert: the same primary connection runs the whole checkout
      const [[row]] = (await conn.query('SELECT LAST_INSERT_ID() AS id')) as unknown as [[{ id: number }]]
      assert.equal(Number(row.id), (ins as { insertId: number }).insertId)
      await conn.commit()
      assert.equal(conn.pinnedNode, null)
      assert.match(conn.token ?? '', /^0-1-\d+$/)
      assert.match(await fx.servedBy((s) => conn.query(s), `/* FRESHNESS: EVENTUAL */ ${PORT}`), /^replica_/)
    } finally {
      conn.release()
    }
  })

  it('places START TRANSACTION READ ONLY on one replica for the whole transaction when the tier allows', async () => {
    const conn = await pool.getConnection()
    try {
      await freshness('eventual', async () => {
        await conn.query('START TRANSACTION READ ONLY')
        const node = conn.pinnedNode
        assert.match(node ?? '', /^replica_/)
        for (let i = 0; i < 4; i++) assert.equal(await fx.servedBy((s) => conn.query(s), PORT), node)
        await conn.query('COMMIT')
      })
      assert.equal(conn.pinnedNode, null)
    } finally {
      conn.release()
    }
  })

  it('pins to the primary for temporary tables, user variables and GET_LOCK until release', async () => {
    const conn = await pool.getConnection()
    try {
      await conn.query('CREATE TEMPORARY TABLE scratch (v INT)')
      await conn.query('INSERT INTO scratch VALUES (1), (2)')
      assert.equal(conn.pinnedNode, 'primary')
      // the temporary table exists only on the primary connection: a replica would not know it
      const [rows] = await conn.query('/* FRESHNESS: EVENTUAL */ SELECT COUNT(*) AS n FROM scratch')
      assert.equal(Number((rows as { n: number }[])[0]!.n), 2)
    } finally {
      conn.release()
    }
    const vars = await pool.getConnection()
    try {
      await vars.query('SET @answer = 42')
      const [rows] = await vars.query('/* FRESHNESS: EVENTUAL */ SELECT @answer AS a, @@port AS port')
      assert.equal(Number((rows as { a: number }[])[0]!.a), 42)
    } finally {
      vars.release()
    }
    const locks = await pool.getConnection()
    try {
      await locks.query("SELECT GET_LOCK('job', 1)")
      assert.equal(await fx.servedBy((s) => locks.query(s), `/* FRESHNESS: EVENTUAL */ ${PORT}`), 'primary')
    } finally {
      locks.release()
    }
  })

  it('takes SET @freshet_freshness as the session tier without sending it', async () => {
    const conn = await pool.getConnection()
    try {
      await conn.query("SET @freshet_freshness = 'eventual'")
      assert.equal(conn.pinnedNode, null)
      assert.match(await fx.servedBy((s) => conn.query(s), PORT), /^replica_/)
      await conn.query('SET @freshet_freshness = NULL')
      assert.equal(await fx.servedBy((s) => conn.query(s), PORT), 'primary')
    } finally {
      conn.release()
    }
  })

  it('rolls back a transaction left open at release()', async () => {
    const conn = await pool.getConnection()
    await conn.beginTransaction()
    await conn.query("INSERT INTO ledger (note) VALUES ('never')")
    conn.release()
    await eventually('the rollback ran', async () => {
      const [rows] = await pool.query("SELECT COUNT(*) AS n FROM ledger WHERE note = 'never'")
      return Number((rows as { n: number }[])[0]!.n) === 0
    })
  })

  it('serves the admin API: topology with GTID positions, explain, metrics', async () => {
    const admin = await startAdmin({ pool, admin: { listen: '127.0.0.1:0' } })
    try {
      const topo = (await (await fetch(`${admin.url}/api/v1/topology`)).json()) as {
        nodes: { name: string; replay_lsn: string | null; lag_ms: number | null }[]
      }
      assert.equal(topo.nodes.length, 3)
      for (const n of topo.nodes) assert.match(n.replay_lsn ?? '', /^0-1-\d+$/, n.name)
      const explained = (await (
        await fetch(`${admin.url}/api/v1/explain`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ sql: 'SELECT * FROM accounts FOR UPDATE' }),
        })
      ).json()) as { decision: { role: string; classReason: string } }
      assert.equal(explained.decision.role, 'primary')
      assert.equal(explained.decision.classReason, 'locking_read')
      await pool.query(`/* FRESHNESS: EVENTUAL */ ${PORT}`)
      const metrics = await (await fetch(`${admin.url}/metrics`)).text()
      assert.match(metrics, /routing_decisions_total\{[^}]*tier="eventual"/)
      assert.match(metrics, /replica_lag_seconds\{host="replica_1"\}/)
    } finally {
      await admin.close()
    }
  })

  it('refuses bad config with the key path', () => {
    const cfg = mariadbConfigFor(fx.cluster) as Record<string, unknown>
    const bad = (patch: Record<string, unknown>) => () => createMysqlPool({ ...cfg, ...patch } as never)
    assert.throws(
      bad({ cluster: { primary: { name: 'primary', url: 'postgres://app@db/main' } } }),
      (err: unknown) => err instanceof ConfigError && /cluster\.primary\.url/.test(err.message),
    )
    assert.throws(
      bad({ engine: 'oracle' }),
      (err: unknown) => err instanceof ConfigError && /engine/.test(err.message),
    )
    assert.throws(bad({ engine: 'postgres' }), (err: unknown) => err instanceof ConfigError)
    assert.throws(
      bad({ cluster: { primary: { name: 'primary', url: 'mysql://app@db:99999/main' } } }),
      (err: unknown) => err instanceof ConfigError && /cluster\.primary\.url/.test(err.message),
    )
    assert.throws(
      bad({ classifier: { rules: [{ pattern: '^SELECT', action: 'route_replica', priority: 1 }] } }),
      (err: unknown) =>
        err instanceof ConfigError &&
        /classifier\.rules: is not supported with engine: mysql/.test(err.message),
    )
    // a mysql:// primary without `engine` is a MySQL config
    const inferred = { ...cfg }
    delete inferred.engine
    const p = createMysqlPool(inferred as never)
    return p.end()
  })
})
