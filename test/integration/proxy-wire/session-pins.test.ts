// Session state through the proxy against a real cluster: every pin reason is kept on its own (a later
// pin or an unpin of another reason never drops it), session state created inside a transaction pins at
// COMMIT (and, for what survives a rollback, at ROLLBACK), SET LOCAL freshet.freshness lasts for its
// transaction only, a `freshet.freshness` startup parameter sets the session tier, and a pipelined
// extended batch is routed by its strictest statement.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import postgres from 'postgres'
import type { Decision } from '../../../src/core/route/decision.js'
import { eventually } from '../../support/eventually.js'
import { type ProxyFixture, startProxyFixture } from '../../support/proxy-fixture.js'

const PORT = 'SELECT inet_server_port() AS port'

/** One statement's answer inside a pipelined batch. */
interface StepResult {
  rows: (string | null)[][]
  command: string | null
}

/**
 * A pg Submittable that sends several unnamed Parse/Bind/Describe/Execute groups and one Sync: one
 * extended batch with several statements, as JDBC batches, pgx Batch and psycopg pipelines send.
 */
class Pipeline {
  readonly results: StepResult[] = []
  error: (Error & { code?: string }) | null = null
  readonly done: Promise<void>
  #current: StepResult | null = null
  #resolve!: () => void

  /** `flushAfter`: send a Flush after that many statements (a batch ended by Flush, then the rest up to Sync). */
  constructor(
    readonly texts: readonly string[],
    readonly flushAfter = 0,
  ) {
    this.done = new Promise((resolve) => {
      this.#resolve = resolve
    })
  }

  submit(connection: {
    parse(q: { text: string; name: string; types: number[] }): void
    bind(c: { portal: string; statement: string; values: unknown[] }): void
    describe(m: { type: string; name: string }): void
    execute(c: { portal: string; rows: number }): void
    flush(): void
    sync(): void
  }): void {
    for (const [i, text] of this.texts.entries()) {
      connection.parse({ text, name: '', types: [] })
      connection.bind({ portal: '', statement: '', values: [] })
      connection.describe({ type: 'P', name: '' })
      connection.execute({ portal: '', rows: 0 })
      if (i + 1 === this.flushAfter) connection.flush()
    }
    connection.sync()
  }

  handleRowDescription(): void {
    this.#current = { rows: [], command: null }
  }

  handleDataRow(msg: { fields: (string | null)[] }): void {
    this.#current?.rows.push(msg.fields)
  }

  handleCommandComplete(msg: { text: string }): void {
    const step = this.#current ?? { rows: [], command: null }
    step.command = msg.text
    this.results.push(step)
    this.#current = null
  }

  handleEmptyQuery(): void {}

  handleError(err: Error & { code?: string }): void {
    this.error ??= err
  }

  handleReadyForQuery(): void {
    this.#resolve()
  }
}

describe('proxy: session pins, transactions, freshness settings and batches', () => {
  let f: ProxyFixture
  const clients: pg.Client[] = []

  before(async () => {
    f = await startProxyFixture(
      {
        pools: {
          primary: { min_idle: 0, max_active: 6, connection_timeout_ms: 5000 },
          replicas: { min_idle: 0, max_active: 4, connection_timeout_ms: 5000 },
          slow_start_ms: 0,
        },
      },
      2,
      async (cluster) => {
        await cluster.query('primary', 'CREATE TABLE items (id int PRIMARY KEY, v text)')
        await cluster.query('primary', 'GRANT ALL ON items TO app')
      },
    )
  })

  after(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => {})))
    await f?.stop()
  })

  async function connect(config: pg.ClientConfig = {}): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: f.url(), ...config })
    await c.connect()
    clients.push(c)
    return c
  }

  async function pidOf(c: pg.Client): Promise<number> {
    return (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid
  }

  async function nodeOf(c: pg.Client, sql = PORT): Promise<string> {
    const res = await c.query<{ port: number }>(sql)
    return f.nodeOf(Number(res.rows[0]!.port))
  }

  /** The decision the engine made for `sql` run by `c` (nothing else runs meanwhile). */
  async function decisionOf(c: pg.Client, sql: string): Promise<Decision> {
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

  /**
   * Runs `steps` on client `a`, with client `b` using a primary connection between every two steps
   * (a connection `a` gave back would be closed or handed on), and checks that `a` stays on one server
   * connection, which `b` never gets. Returns that connection's backend pid.
   */
  async function staysPinned(a: pg.Client, b: pg.Client, steps: readonly string[]): Promise<number> {
    let pid: number | null = null
    for (const step of steps) {
      await a.query(step)
      const now = await pidOf(a)
      if (pid === null) pid = now
      assert.equal(now, pid, `still on backend ${pid} after ${JSON.stringify(step)}`)
      assert.notEqual(await pidOf(b), pid, 'the other client never gets the pinned connection')
    }
    return pid!
  }

  function notified(c: pg.Client, channel: string, timeoutMs = 3000): Promise<string | undefined> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        c.off('notification', on)
        reject(new Error(`no NOTIFY on ${channel} within ${timeoutMs} ms`))
      }, timeoutMs)
      const on = (msg: pg.Notification) => {
        if (msg.channel !== channel) return
        clearTimeout(timer)
        c.off('notification', on)
        resolve(msg.payload)
      }
      c.on('notification', on)
    })
  }

  async function advisoryHeld(pid: number, key: number): Promise<boolean> {
    const res = await f.cluster.query<{ n: number }>(
      'primary',
      `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = ${key} AND pid = ${pid} AND granted`,
    )
    return res.rows[0]!.n === 1
  }

  describe('every pin reason is kept on its own', () => {
    it('CREATE TEMP TABLE; SET; RESET ALL keeps the temp table', async () => {
      const [a, b] = [await connect(), await connect()]
      const pid = await staysPinned(a, b, [
        'CREATE TEMP TABLE pin_t1 (x int)',
        'SET search_path = nowhere',
        'RESET ALL',
      ])
      await a.query('INSERT INTO pin_t1 VALUES (1)')
      assert.equal((await a.query('SELECT count(*)::int AS n FROM pin_t1')).rows[0].n, 1)
      assert.equal(await pidOf(a), pid)
      await a.end()
    })

    it('LISTEN; CREATE TEMP TABLE; DISCARD TEMP keeps listening', async () => {
      const [a, b] = [await connect(), await connect()]
      const pid = await staysPinned(a, b, [
        'LISTEN pin_c1',
        'CREATE TEMP TABLE pin_t2 (x int)',
        'DISCARD TEMP',
      ])
      const got = notified(a, 'pin_c1')
      await b.query("NOTIFY pin_c1, 'one'")
      assert.equal(await got, 'one')
      assert.equal(await pidOf(a), pid)
      await a.end()
    })

    it('SELECT pg_advisory_lock(1); LISTEN; UNLISTEN * keeps the lock', async () => {
      const [a, b] = [await connect(), await connect()]
      const pid = await staysPinned(a, b, ['SELECT pg_advisory_lock(7101)', 'LISTEN pin_c2', 'UNLISTEN *'])
      assert.ok(await advisoryHeld(pid, 7101), 'the lock is held by the pinned backend')
      // the other session cannot take it
      assert.equal((await b.query('SELECT pg_try_advisory_lock(7101) AS ok')).rows[0].ok, false)
      await a.end()
    })

    it('one string with several pins keeps each: SET ...; LISTEN ... then RESET ALL', async () => {
      const [a, b] = [await connect(), await connect()]
      const pid = await staysPinned(a, b, ["SET application_name = 'multi'; LISTEN pin_c3", 'RESET ALL'])
      const got = notified(a, 'pin_c3')
      await b.query("NOTIFY pin_c3, 'two'")
      assert.equal(await got, 'two')
      assert.equal(await pidOf(a), pid)
      await a.end()
    })

    it('delivers every NOTIFY to the LISTENing client, also during its read-your-writes token fetch', async () => {
      const [a, b] = [await connect(), await connect()]
      await a.query('LISTEN pin_storm')
      await a.query('CREATE TEMP TABLE pin_storm_t (x int)')
      let received = 0
      a.on('notification', (msg) => {
        if (msg.channel === 'pin_storm') received++
      })
      const n = 150
      // every write of `a` ends with freshet's hidden pg_current_wal_lsn() fetch, which PostgreSQL may
      // answer after a NotificationResponse
      const writes = (async () => {
        for (let i = 0; i < n; i++) {
          // extended protocol: the fetch goes out after the write's ReadyForQuery, when the backend is
          // idle and sends a pending notification at once
          await a.query('INSERT INTO pin_storm_t VALUES ($1)', [i])
          await a.query('INSERT INTO pin_storm_t VALUES (1)')
        }
      })()
      for (let i = 0; i < n; i++) await b.query(`NOTIFY pin_storm, '${i}'`)
      await writes
      await eventually(`${n} notifications (got ${received})`, () => received === n, 5000)
      await a.end()
    })

    it('DISCARD ALL clears every reason: the client is no longer pinned', async () => {
      const a = await connect()
      await a.query('CREATE TEMP TABLE pin_t3 (x int)')
      await a.query('LISTEN pin_c4')
      assert.equal((await decisionOf(a, 'SELECT 1')).reason, 'pinned_session')
      await a.query('DISCARD ALL')
      assert.notEqual((await decisionOf(a, 'SELECT 1')).reason, 'pinned_session')
      await a.end()
    })
  })

  describe('session state set inside a transaction', () => {
    it('a SET that commits pins; one that rolls back does not', async () => {
      const [a, b] = [await connect(), await connect()]
      const pid = await staysPinned(a, b, ['BEGIN', "SET work_mem = '7MB'", 'COMMIT'])
      assert.equal((await a.query('SHOW work_mem')).rows[0].work_mem, '7MB')
      assert.equal(await pidOf(a), pid)
      await a.end()

      const c = await connect()
      await c.query('BEGIN')
      await c.query("SET work_mem = '9MB'")
      await c.query('ROLLBACK')
      assert.notEqual((await decisionOf(c, 'SELECT 1')).reason, 'pinned_session')
      assert.equal((await c.query('SHOW work_mem')).rows[0].work_mem, '4MB')
    })

    it('a temp table and LISTEN created in a committed transaction pin', async () => {
      const [a, b] = [await connect(), await connect()]
      const pid = await staysPinned(a, b, [
        'BEGIN',
        'CREATE TEMP TABLE pin_t4 (x int)',
        'LISTEN pin_c5',
        'COMMIT',
        'SELECT 1',
      ])
      await a.query('INSERT INTO pin_t4 VALUES (1)')
      const got = notified(a, 'pin_c5')
      await b.query("NOTIFY pin_c5, 'three'")
      assert.equal(await got, 'three')
      assert.equal(await pidOf(a), pid)
      await a.end()
    })

    it('pins at COMMIT of a one-string transaction (BEGIN; SET ...; COMMIT)', async () => {
      const [a, b] = [await connect(), await connect()]
      const pid = await staysPinned(a, b, ["BEGIN; SET work_mem = '6MB'; COMMIT", 'SELECT 1'])
      assert.equal((await a.query('SHOW work_mem')).rows[0].work_mem, '6MB')
      assert.equal(await pidOf(a), pid)
      await a.end()
    })

    it('a session advisory lock taken in a rolled-back transaction is still held: pinned', async () => {
      const [a, b] = [await connect(), await connect()]
      const pid = await staysPinned(a, b, ['BEGIN', 'SELECT pg_advisory_lock(7102)', 'ROLLBACK', 'SELECT 1'])
      assert.ok(await advisoryHeld(pid, 7102), 'PostgreSQL keeps the lock after ROLLBACK')
      assert.equal((await decisionOf(a, 'SELECT 1')).reason, 'pinned_session')
      await a.end()
    })

    it('LISTEN and CREATE TEMP TABLE in a rolled-back transaction leave nothing: not pinned', async () => {
      const a = await connect()
      await a.query('BEGIN')
      await a.query('LISTEN pin_c6')
      await a.query('CREATE TEMP TABLE pin_t5 (x int)')
      await a.query('ROLLBACK')
      assert.notEqual((await decisionOf(a, 'SELECT 1')).reason, 'pinned_session')
      // and a failed transaction's COMMIT is a rollback
      await a.query('BEGIN')
      await a.query("SET work_mem = '5MB'")
      await assert.rejects(a.query('SELECT 1/0'))
      assert.equal((await a.query('COMMIT')).command, 'ROLLBACK')
      assert.notEqual((await decisionOf(a, 'SELECT 1')).reason, 'pinned_session')
    })
  })

  describe('freshet.freshness', () => {
    it('SET LOCAL lasts until the end of its transaction; outside one it warns and does nothing', async () => {
      const a = await connect()
      const notices: { code?: string; severity?: string }[] = []
      a.on('notice', (n) => notices.push(n as { code?: string; severity?: string }))
      assert.equal((await a.query("SET LOCAL freshet.freshness = 'eventual'")).command, 'SET')
      assert.equal(await nodeOf(a), 'primary', 'no effect outside a transaction')
      assert.ok(
        notices.some((n) => n.code === '25P01' && n.severity === 'WARNING'),
        `a 25P01 warning: ${JSON.stringify(notices)}`,
      )
      await a.query('BEGIN')
      await a.query("SET LOCAL freshet.freshness = 'eventual'")
      await a.query('SELECT 1')
      await a.query('COMMIT')
      assert.equal(await nodeOf(a), 'primary', 'gone after COMMIT')
      await a.query('BEGIN')
      await a.query("SET LOCAL freshet.freshness = 'eventual'")
      await a.query('ROLLBACK')
      assert.equal(await nodeOf(a), 'primary', 'gone after ROLLBACK')
      // a plain SET inside a transaction lasts if it commits, and is undone by ROLLBACK
      await a.query('BEGIN')
      await a.query("SET freshet.freshness = 'eventual'")
      await a.query('ROLLBACK')
      assert.equal(await nodeOf(a), 'primary')
      await a.query('BEGIN')
      await a.query("SET freshet.freshness = 'eventual'")
      await a.query('COMMIT')
      assert.match(await nodeOf(a), /^replica_/)
      await a.end()
    })

    it('a freshet.freshness startup parameter sets the session tier, and RESET returns to it', async () => {
      const sql = postgres(f.url(), {
        max: 1,
        onnotice: () => {},
        connection: { 'freshet.freshness': 'eventual' } as Record<string, string>,
      })
      try {
        const where = async () => f.nodeOf(Number((await sql.unsafe(PORT))[0]!.port))
        assert.match(await where(), /^replica_/)
        await sql.unsafe("SET freshet.freshness = 'strict'")
        assert.equal(await where(), 'primary')
        await sql.unsafe('RESET freshet.freshness')
        assert.match(await where(), /^replica_/)
        // never sent to PostgreSQL
        const server = await sql.unsafe("SELECT current_setting('freshet.freshness', true) AS s")
        assert.equal(server[0]!.s, null)
      } finally {
        await sql.end()
      }
    })
  })

  describe('a pipelined extended batch is routed by its strictest statement', () => {
    async function run(c: pg.Client, texts: string[], flushAfter = 0): Promise<Pipeline> {
      const p = new Pipeline(texts, flushAfter)
      c.query(p as unknown as pg.QueryConfig)
      await p.done
      if (p.error) throw p.error
      return p
    }

    it('a later STRICT or MIN_LSN statement is not served stale by a paused replica', async () => {
      const replicas = f.cluster.replicas.map((r) => r.name)
      await Promise.all(replicas.map((r) => f.cluster.pauseReplay(r)))
      try {
        await f.cluster.query('primary', "INSERT INTO items VALUES (9001, 'fresh')")
        const lsn = (
          await f.cluster.query<{ l: string }>('primary', 'SELECT pg_current_wal_lsn()::text AS l')
        ).rows[0]!.l
        const c = await connect()
        const stale = `/* FRESHNESS: EVENTUAL */ SELECT v, inet_server_port() AS port FROM items WHERE id = 9001`
        // control: an eventual read alone goes to a paused replica, which lacks the row
        const alone = await run(c, [stale, stale])
        assert.equal(alone.results[0]!.rows.length, 0, 'the paused replicas are stale')

        const strict = await run(c, [
          `/* FRESHNESS: EVENTUAL */ ${PORT}`,
          '/* FRESHNESS: STRICT */ SELECT v, inet_server_port() AS port FROM items WHERE id = 9001',
        ])
        assert.deepEqual(
          strict.results[1]!.rows.map((r) => r[0]),
          ['fresh'],
        )
        assert.equal(f.nodeOf(Number(strict.results[0]!.rows[0]![0])), 'primary')

        const hinted = await run(c, [
          `/* FRESHNESS: EVENTUAL */ ${PORT}`,
          `/* FRESHNESS: EVENTUAL */ /* MIN_LSN: ${lsn} */ SELECT v FROM items WHERE id = 9001`,
        ])
        assert.deepEqual(
          hinted.results[1]!.rows.map((r) => r[0]),
          ['fresh'],
        )
        assert.equal(f.nodeOf(Number(hinted.results[0]!.rows[0]![0])), 'primary')

        // an unannotated read (routing.unannotated: primary) is the strictest too
        const unannotated = await run(c, [
          `/* FRESHNESS: EVENTUAL */ ${PORT}`,
          'SELECT v FROM items WHERE id = 9001',
        ])
        assert.deepEqual(
          unannotated.results[1]!.rows.map((r) => r[0]),
          ['fresh'],
        )

        // and two eventual reads still go to a replica
        const loose = await run(c, [
          `/* FRESHNESS: EVENTUAL */ ${PORT}`,
          `/* FRESHNESS: EVENTUAL */ SELECT 2`,
        ])
        assert.match(f.nodeOf(Number(loose.results[0]!.rows[0]![0])), /^replica_/)
      } finally {
        await Promise.all(replicas.map((r) => f.cluster.resumeReplay(r)))
      }
    })

    it('honours the tightest tier and the latest MIN_LSN of the batch together', async () => {
      // replica_1 paused (stale, lagging), replica_2 replaying
      await f.cluster.pauseReplay('replica_1')
      try {
        await f.cluster.query('primary', "INSERT INTO items VALUES (9002, 'fresh')")
        const lsn = (
          await f.cluster.query<{ l: string }>('primary', 'SELECT pg_current_wal_lsn()::text AS l')
        ).rows[0]!.l
        // the engine sees replica_1 far outside near_rt's 500 ms
        await eventually('replica_1 lags', () =>
          f.engine.snapshot().some((n) => n.name === 'replica_1' && (n.lag_ms ?? 0) > 1500),
        )
        const c = await connect()
        const read = 'SELECT v, inet_server_port() AS port FROM items WHERE id = 9002'
        for (let i = 0; i < 6; i++) {
          // the first read alone may go to either replica; with the second's MIN_LSN, only to one that has it
          const hinted = await run(c, [
            `/* FRESHNESS: EVENTUAL */ ${read}`,
            `/* FRESHNESS: EVENTUAL */ /* MIN_LSN: ${lsn} */ ${read}`,
          ])
          assert.equal(hinted.results[0]!.rows[0]?.[0], 'fresh', `round ${i}: the first read saw the row`)
          assert.notEqual(f.nodeOf(Number(hinted.results[0]!.rows[0]![1])), 'replica_1')
          // an eventual read and a near_rt one: the batch needs a replica within 500 ms
          const tight = await run(c, [
            `/* FRESHNESS: EVENTUAL */ ${read}`,
            `/* FRESHNESS: NEAR_RT */ ${read}`,
          ])
          assert.equal(tight.results[0]!.rows[0]?.[0], 'fresh', `round ${i}: near_rt decided the batch`)
          assert.notEqual(f.nodeOf(Number(tight.results[0]!.rows[0]![1])), 'replica_1')
        }
      } finally {
        await f.cluster.resumeReplay('replica_1')
      }
    })

    it('keeps the pins of a batch ended by Flush', async () => {
      const [a, b] = [await connect(), await connect()]
      await run(a, ['LISTEN pin_c8', "SET work_mem = '3MB'"], 1)
      const pid = await pidOf(a)
      await staysPinned(a, b, ['RESET ALL'])
      assert.equal(await pidOf(a), pid)
      const got = notified(a, 'pin_c8')
      await b.query("NOTIFY pin_c8, 'five'")
      assert.equal(await got, 'five')
      await a.end()
    })

    it('keeps the pins of every statement of a batch', async () => {
      const [a, b] = [await connect(), await connect()]
      await run(a, ['LISTEN pin_c7', "SET work_mem = '3MB'"])
      const pid = await pidOf(a)
      await staysPinned(a, b, ['RESET ALL'])
      assert.equal(await pidOf(a), pid)
      const got = notified(a, 'pin_c7')
      await b.query("NOTIFY pin_c7, 'four'")
      assert.equal(await got, 'four')
      await a.end()
    })
  })
})
