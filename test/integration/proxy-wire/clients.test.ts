// Real clients through the proxy against a real cluster: psql, pg, postgres.js; COPY, cancel, routing,
// SET freshet.freshness, malformed input, many clients over a small pool.

import assert from 'node:assert/strict'
import { connect as netConnect, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import postgres from 'postgres'
import { cancelRequest, startupMessage } from '../../../src/protocol/index.js'
import { eventually } from '../../support/eventually.js'
import { type ProxyFixture, runCommand, startProxyFixture } from '../../support/proxy-fixture.js'

const WHERE = 'SELECT inet_server_port() AS port'

describe('proxy wire: real clients', () => {
  let f: ProxyFixture

  before(async () => {
    f = await startProxyFixture(
      {
        domains: { items: 'eventual' },
        pools: {
          primary: { min_idle: 0, max_active: 4 },
          replicas: { min_idle: 0, max_active: 4 },
          slow_start_ms: 0,
        },
      },
      2,
      async (cluster) => {
        await cluster.query('primary', 'CREATE TABLE items (id int PRIMARY KEY, v text)')
        await cluster.query('primary', "INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 100) g")
        await cluster.query('primary', 'CREATE TABLE sink (id int, v text)')
        await cluster.query('primary', 'GRANT ALL ON items, sink TO app, app_md5')
      },
    )
  })

  after(async () => {
    await f?.stop()
  })

  async function withClient<T>(fn: (c: pg.Client) => Promise<T>, url = f.url()): Promise<T> {
    const c = new pg.Client({ connectionString: url })
    await c.connect()
    try {
      return await fn(c)
    } finally {
      await c.end()
    }
  }

  /** `n` node-postgres clients connected through the proxy. */
  function connectMany(n: number): Promise<pg.Client[]> {
    return Promise.all(
      Array.from({ length: n }, async () => {
        const c = new pg.Client({ connectionString: f.url() })
        await c.connect()
        return c
      }),
    )
  }

  async function servedBy(c: pg.Client, sql: string): Promise<string> {
    const res = await c.query(sql)
    return f.nodeOf(Number(res.rows[0].port))
  }

  describe('psql', () => {
    it('runs a simple query and a multi-statement string', async () => {
      const one = await runCommand('psql', [f.url(), '-Atc', 'SELECT 40 + 2'])
      assert.equal(one.code, 0, one.stderr)
      assert.equal(one.stdout.trim(), '42')
      const multi = await runCommand('psql', [
        f.url(),
        '-Atc',
        "SELECT 1; SELECT 'two'; SELECT count(*) FROM items",
      ])
      assert.equal(multi.code, 0, multi.stderr)
      assert.deepEqual(multi.stdout.trim().split('\n'), ['1', 'two', '100'])
    })

    it('refuses a wrong password with 28P01', async () => {
      const r = await runCommand('psql', [f.url('app', 'wrong'), '-Atc', 'SELECT 1'])
      assert.notEqual(r.code, 0)
      assert.match(r.stderr, /password authentication failed for user "app"/)
    })

    it('accepts md5 users under SCRAM config (server login as that user)', async () => {
      const r = await runCommand('psql', [f.url('app_md5'), '-Atc', 'SELECT current_user'])
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stdout.trim(), 'app_md5')
    })

    it("gives PostgreSQL's own error for an unknown database", async () => {
      const r = await runCommand('psql', [f.url('app', 'app', 'nope'), '-Atc', 'SELECT 1'])
      assert.notEqual(r.code, 0)
      assert.match(r.stderr, /database "nope" does not exist/)
    })
  })

  describe('node-postgres', () => {
    it('runs simple and parameterized queries and named prepared statements', async () => {
      await withClient(async (c) => {
        assert.equal((await c.query('SELECT 1 AS x')).rows[0].x, 1)
        assert.equal((await c.query('SELECT $1::int + 1 AS x', [41])).rows[0].x, 42)
        for (let i = 0; i < 5; i++) {
          const res = await c.query({
            name: 'by_id',
            text: 'SELECT v FROM items WHERE id = $1',
            values: [i + 1],
          })
          assert.equal(res.rows[0].v, `v${i + 1}`)
        }
      })
    })

    it('shares a few server connections among 50 clients using named statements', async () => {
      const clients = await connectMany(50)
      try {
        await Promise.all(
          clients.map(async (c, i) => {
            for (let k = 0; k < 5; k++) {
              const id = ((i * 5 + k) % 100) + 1
              const res = await c.query({
                name: 'item',
                text: 'SELECT id, v FROM items WHERE id = $1',
                values: [id],
              })
              assert.deepEqual(res.rows[0], { id, v: `v${id}` })
            }
            await c.query('BEGIN')
            await c.query({ name: 'ins', text: 'INSERT INTO sink VALUES ($1, $2)', values: [i, 'x'] })
            await c.query('COMMIT')
          }),
        )
        const stats = f.proxy.poolStats()
        assert.ok(stats.primary!.total <= 4, `primary pool stays within max_active: ${JSON.stringify(stats)}`)
        const count = await withClient((c) => c.query('SELECT count(*)::int AS n FROM sink'))
        assert.equal(count.rows[0].n, 50)
      } finally {
        await Promise.all(clients.map((c) => c.end()))
      }
    })

    it('keeps one statement name apart across clients with different texts, and beside SQL PREPARE', async () => {
      // every client uses the name 'q' for its own text; the pool has at most 4 primary connections,
      // so most server connections see several clients' 'q' (the first keeps the name, others a key)
      const clients = await connectMany(12)
      try {
        await Promise.all(
          clients.map(async (c, i) => {
            for (let k = 0; k < 6; k++) {
              const res = await c.query({ name: 'q', text: `SELECT $1::int + ${i} AS r`, values: [k] })
              assert.equal(res.rows[0].r, k + i, `client ${i} round ${k}`)
              if (k === 2 && i % 3 === 0) {
                // SQL-level statements share PostgreSQL's namespace with protocol ones; the PREPARE pins
                // the client to its connection until DEALLOCATE ALL
                await c.query('PREPARE q AS SELECT 7 AS r')
                assert.equal((await c.query('EXECUTE q')).rows[0].r, 7)
                await c.query('DEALLOCATE ALL')
              }
            }
          }),
        )
      } finally {
        await Promise.all(clients.map((c) => c.end()))
      }
    })

    it('reports PostgreSQL errors and stays usable', async () => {
      await withClient(async (c) => {
        await assert.rejects(
          c.query('SELECT * FROM no_such_table'),
          (e: { code?: string }) => e.code === '42P01',
        )
        await assert.rejects(c.query('SELECT $1::int', ['x']), (e: { code?: string }) => e.code === '22P02')
        assert.equal((await c.query('SELECT 3 AS x')).rows[0].x, 3)
      })
    })
  })

  describe('postgres.js', () => {
    it('prepares by default and works across pooled connections', async () => {
      const sql = postgres(f.url(), { max: 4, onnotice: () => {} })
      try {
        const results = await Promise.all(
          Array.from({ length: 40 }, (_, i) => sql`SELECT v FROM items WHERE id = ${(i % 100) + 1}`),
        )
        for (const [i, rows] of results.entries()) assert.equal(rows[0]!.v, `v${(i % 100) + 1}`)
        const counted = await sql`SELECT count(*)::int AS n FROM items WHERE id <= ${10}`
        assert.equal(counted[0]!.n, 10)
        await sql.begin(async (tx) => {
          await tx`INSERT INTO sink VALUES (${1000}, ${'pjs'})`
        })
      } finally {
        await sql.end()
      }
    })
  })

  describe('COPY', () => {
    it('copies into a table from STDIN and out to STDOUT', async () => {
      const input = Array.from({ length: 500 }, (_, i) => `${10_000 + i}\tcopy${i}`).join('\n')
      const { spawn } = await import('node:child_process')
      const child = spawn('psql', [f.url(), '-Atc', 'COPY sink FROM STDIN'], {
        stdio: ['pipe', 'pipe', 'pipe'],
      })
      let err = ''
      child.stderr.on('data', (d) => {
        err += d
      })
      child.stdin.end(`${input}\n`)
      const code = await new Promise((r) => child.on('close', r))
      assert.equal(code, 0, err)
      const out = await runCommand('psql', [
        f.url(),
        '-Atc',
        'COPY (SELECT id FROM sink WHERE id >= 10000 ORDER BY id) TO STDOUT',
      ])
      assert.equal(out.code, 0, out.stderr)
      const ids = out.stdout.trim().split('\n')
      assert.equal(ids.length, 500)
      assert.equal(ids[0], '10000')
    })
  })

  describe('cancel', () => {
    it('cancels a running pg_sleep(10) quickly with 57014', async () => {
      await withClient(async (c) => {
        const started = Date.now()
        const running = c.query('SELECT pg_sleep(10)')
        // the proxy must have the query on a server before the cancel can reach it
        await eventually('query is running', () =>
          f.cluster
            .query(
              'primary',
              "SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(10)' AND state = 'active'",
            )
            .then((r) => (r.rows[0] as { n: number }).n > 0),
        )
        // CancelRequest to the proxy with the key data freshet sent at startup, as libpq does it
        const key = c as unknown as { processID: number; secretKey: number }
        const s = netConnect({ host: '127.0.0.1', port: f.port }, () =>
          s.end(cancelRequest(key.processID, key.secretKey)),
        )
        await new Promise((r) => s.once('close', r))
        const err = await running.then(
          () => null,
          (e: { code?: string }) => e,
        )
        assert.equal(err?.code, '57014')
        assert.ok(Date.now() - started < 5000, 'cancelled well before the sleep ended')
        assert.equal((await c.query('SELECT 1 AS x')).rows[0].x, 1)
      })
    })
  })

  describe('routing (CONTRACT section 3)', () => {
    it('sends hinted reads to replicas, unannotated reads and writes to the primary', async () => {
      await withClient(async (c) => {
        assert.equal(await servedBy(c, WHERE), 'primary')
        const seen = new Set<string>()
        for (let i = 0; i < 10; i++) seen.add(await servedBy(c, `/* FRESHNESS: EVENTUAL */ ${WHERE}`))
        assert.deepEqual([...seen].sort(), ['replica_1', 'replica_2'])
        const w = await c.query(`INSERT INTO sink VALUES (1, 'w') RETURNING inet_server_port() AS port`)
        assert.equal(f.nodeOf(Number(w.rows[0].port)), 'primary')
      })
    })

    it('pins a transaction to one node', async () => {
      await withClient(async (c) => {
        await c.query('/*+ ROUTE_TO: replica */ BEGIN READ ONLY')
        const first = await servedBy(c, `/* FRESHNESS: EVENTUAL */ ${WHERE}`)
        for (let i = 0; i < 5; i++) assert.equal(await servedBy(c, WHERE), first)
        await c.query('COMMIT')
        await c.query('BEGIN')
        for (let i = 0; i < 3; i++)
          assert.equal(await servedBy(c, `/* FRESHNESS: EVENTUAL */ ${WHERE}`), 'primary')
        await c.query('COMMIT')
      })
    })

    it('consumes SET freshet.freshness and the startup option', async () => {
      await withClient(async (c) => {
        const res = await c.query("SET freshet.freshness = 'eventual'")
        assert.equal(res.command, 'SET')
        assert.match(await servedBy(c, WHERE), /^replica_/)
        await c.query('RESET freshet.freshness')
        assert.equal(await servedBy(c, WHERE), 'primary')
        // the extended protocol (a named statement: Parse, then Bind/Execute only on reuse) too
        const set = { name: 'fresh', text: "SET freshet.freshness = 'eventual'" }
        assert.equal((await c.query(set)).command, 'SET')
        assert.match(await servedBy(c, WHERE), /^replica_/)
        await c.query({ name: 'unfresh', text: 'RESET freshet.freshness' })
        assert.equal(await servedBy(c, WHERE), 'primary')
        assert.equal((await c.query(set)).command, 'SET')
        assert.match(await servedBy(c, WHERE), /^replica_/)
        const server = await c.query("SELECT current_setting('freshet.freshness', true) AS s")
        assert.equal(server.rows[0].s, null, 'the SET never reached PostgreSQL')
      })
      const viaOptions = new pg.Client({
        connectionString: f.url(),
        options: '-c freshet.freshness=eventual',
      })
      await viaOptions.connect()
      try {
        assert.match(await servedBy(viaOptions, WHERE), /^replica_/)
      } finally {
        await viaOptions.end()
      }
    })

    it('records the read-your-writes token of an autocommit write and of a COMMIT, with replicas paused', async () => {
      const replicas = f.cluster.replicas.map((r) => r.name)
      await Promise.all(replicas.map((r) => f.cluster.pauseReplay(r)))
      try {
        await withClient(async (c) => {
          // the token is fetched in the same write as the statement that ends the write
          await c.query("INSERT INTO items VALUES (5001, 'autocommit')")
          const a = await c.query('SELECT v FROM items WHERE id = 5001')
          assert.equal(a.rows[0]?.v, 'autocommit')
          await c.query('BEGIN')
          await c.query("INSERT INTO items VALUES (5002, 'committed')")
          await c.query('COMMIT')
          const b = await c.query('SELECT v FROM items WHERE id = 5002')
          assert.equal(b.rows[0]?.v, 'committed')
          // and the session goes on normally after the hidden answers
          assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1)
        })
      } finally {
        await Promise.all(replicas.map((r) => f.cluster.resumeReplay(r)))
      }
    })

    it('routes by domain tier and honours MIN_LSN hints and read-your-writes tokens', async () => {
      await withClient(async (c) => {
        assert.match(await servedBy(c, `SELECT inet_server_port() AS port FROM items LIMIT 1`), /^replica_/)
        await c.query("INSERT INTO items VALUES (5000, 'ryw')")
        // right after its own write, this session's read of items sees the row wherever it goes
        const r = await c.query('SELECT v, inet_server_port() AS port FROM items WHERE id = 5000')
        assert.equal(r.rows[0]?.v, 'ryw')
        const lsn = (await f.cluster.query('primary', 'SELECT pg_current_wal_lsn()::text AS l')).rows[0] as {
          l: string
        }
        const hinted = await c.query(
          `/* MIN_LSN: ${lsn.l} */ /* FRESHNESS: EVENTUAL */ SELECT v FROM items WHERE id = 5000`,
        )
        assert.equal(hinted.rows[0]?.v, 'ryw')
      })
    })
  })

  describe('faults', () => {
    async function rawConnect(): Promise<Socket> {
      const s = netConnect({ host: '127.0.0.1', port: f.port })
      await new Promise((r) => s.once('connect', r))
      return s
    }
    function closed(s: Socket): Promise<string> {
      let data = ''
      s.on('data', (d) => {
        data += d.toString('latin1')
      })
      return new Promise((r) => s.once('close', () => r(data)))
    }

    it('closes only the client that sends a garbage startup packet, silently as PostgreSQL does', async () => {
      await withClient(async (other) => {
        const s = await rawConnect()
        const done = closed(s)
        s.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4]))
        assert.equal(await done, '')
        assert.equal((await other.query('SELECT 1 AS x')).rows[0].x, 1)
      })
    })

    it('closes only the client that sends a truncated message', async () => {
      await withClient(async (other) => {
        const s = await rawConnect()
        const done = closed(s)
        s.write(startupMessage({ user: 'app', database: 'freshet' }))
        await new Promise((r) => s.once('data', r)) // AuthenticationSASL
        // a Password message whose length says 3: below the minimum
        s.write(Buffer.from([0x70, 0, 0, 0, 3]))
        assert.match(await done, /08P01|invalid message length/)
        assert.equal((await other.query('SELECT 1 AS x')).rows[0].x, 1)
      })
    })

    it('cancels the running statement of a client that disconnects abruptly', async () => {
      const running = (sql: string) =>
        f.cluster.query(
          'primary',
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = '${sql}' AND state <> 'idle'`,
        )
      const c = new pg.Client({ connectionString: f.url() })
      c.on('error', () => {})
      await c.connect()
      const sleep = c.query('SELECT pg_sleep(30)').catch(() => 'ended')
      await eventually(
        'the sleep runs on the primary',
        async () => (await running('SELECT pg_sleep(30)')).rows[0]?.n === 1,
      )
      const started = Date.now()
      ;(c as unknown as { connection: { stream: Socket } }).connection.stream.destroy()
      await sleep
      // cancelled at once, not left running for nobody until its 30 s are up
      await eventually(
        'the abandoned statement is gone from the server',
        async () => (await running('SELECT pg_sleep(30)')).rows[0]?.n === 0,
        10_000,
      )
      assert.ok(Date.now() - started < 10_000)
    })

    it('closes a client whose Query body is malformed after login', async () => {
      await withClient(async (c) => {
        const s = (c as unknown as { connection: { stream: Socket } }).connection.stream
        const ended = new Promise((r) => c.once('error', r).once('end', r))
        // Query without a NUL terminator
        s.write(Buffer.from([0x51, 0, 0, 0, 6, 0x41, 0x42]))
        await ended
      }).catch(() => {})
      await withClient(async (c) => assert.equal((await c.query('SELECT 1 AS x')).rows[0].x, 1))
    })
  })

  describe('scale', () => {
    it('holds 500 idle clients over a pool of at most 20 server connections', async () => {
      const sockets: pg.Client[] = []
      try {
        for (let batch = 0; batch < 10; batch++) {
          const made = await Promise.all(
            Array.from({ length: 50 }, async () => {
              const c = new pg.Client({ connectionString: f.url() })
              await c.connect()
              return c
            }),
          )
          sockets.push(...made)
        }
        assert.equal(sockets.length, 500)
        const stats = f.proxy.poolStats()
        const total = Object.values(stats).reduce((n, s) => n + s.total, 0)
        assert.ok(total <= 20, `server connections: ${JSON.stringify(stats)}`)
        const answers = await Promise.all(sockets.slice(0, 100).map((c) => c.query('SELECT 1 AS x')))
        assert.ok(answers.every((r) => r.rows[0].x === 1))
      } finally {
        await Promise.all(sockets.map((c) => c.end().catch(() => {})))
      }
    })
  })
})
