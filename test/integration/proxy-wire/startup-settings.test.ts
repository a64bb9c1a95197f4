// Startup settings through the proxy against a real cluster: what a client asks for at login
// (application_name, statement_timeout, `options -c ...`) holds on every pooled server connection that
// serves it, on the primary and on replicas, and never leaks to the next client of that connection.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { type ProxyFixture, startProxyFixture } from '../../support/proxy-fixture.js'

interface Settings {
  app: string
  timeout: string
  path: string
  port: number
}

const SHOW =
  "SELECT current_setting('application_name') AS app, current_setting('statement_timeout') AS timeout," +
  " current_setting('search_path') AS path, inet_server_port() AS port"

describe('proxy: startup settings on pooled connections', () => {
  let f: ProxyFixture

  before(async () => {
    // one server connection per node: every client shares it, so a leak would show
    f = await startProxyFixture(
      {
        pools: {
          primary: { min_idle: 0, max_active: 1, connection_timeout_ms: 5000 },
          replicas: { min_idle: 0, max_active: 1, connection_timeout_ms: 5000 },
          slow_start_ms: 0,
          // replica connections log in with it; a client's own statement_timeout goes over it
          replica_statement_timeout_ms: 700,
        },
        routing: { read_only_functions: ['pg_sleep'] },
      },
      1,
      async (cluster) => {
        await cluster.query('primary', 'CREATE SCHEMA inventory')
        await cluster.query('primary', 'CREATE TABLE inventory.things (id int PRIMARY KEY, name text)')
        await cluster.query('primary', "INSERT INTO inventory.things VALUES (1, 'widget')")
        // search_path skips a schema its user may not use
        await cluster.query(
          'primary',
          'GRANT USAGE ON SCHEMA inventory TO PUBLIC; GRANT SELECT ON inventory.things TO PUBLIC',
        )
      },
    )
  })

  after(async () => {
    await f?.stop()
  })

  async function connect(config: pg.ClientConfig = {}): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: f.url(), ...config })
    await client.connect()
    return client
  }

  async function settingsOf(client: pg.Client, hint = ''): Promise<Settings & { node: string }> {
    const { rows } = await client.query<Settings>(`${hint}${SHOW}`)
    const row = rows[0]!
    return { ...row, node: f.nodeOf(Number(row.port)) }
  }

  it('applies application_name, statement_timeout and -c options on the primary and on a replica', async () => {
    const client = await connect({
      application_name: 'orders-api',
      statement_timeout: 1500,
      options: '-c search_path=inventory,public -c work_mem=8MB',
    })
    try {
      const onPrimary = await settingsOf(client)
      assert.equal(onPrimary.node, 'primary')
      assert.deepEqual(
        { app: onPrimary.app, timeout: onPrimary.timeout, path: onPrimary.path },
        { app: 'orders-api', timeout: '1500ms', path: 'inventory,public' },
      )
      const onReplica = await settingsOf(client, '/* FRESHNESS: EVENTUAL */ ')
      assert.equal(onReplica.node, 'replica_1')
      assert.deepEqual(
        { app: onReplica.app, timeout: onReplica.timeout, path: onReplica.path },
        { app: 'orders-api', timeout: '1500ms', path: 'inventory,public' },
      )
      // search_path is a list: both schemas resolve, unqualified
      const things = await client.query('SELECT name FROM things WHERE id = 1')
      assert.equal(things.rows[0].name, 'widget')
      const mem = await client.query("SELECT current_setting('work_mem') AS v")
      assert.equal(mem.rows[0].v, '8MB')
      // the timeout is real: the server cancels a statement that runs longer
      await assert.rejects(
        client.query('SELECT pg_sleep(5)'),
        (err: { code?: string }) => err.code === '57014',
      )
    } finally {
      await client.end()
    }
  })

  it('the next client of the same server connection gets the login defaults back, not the last settings', async () => {
    const first = await connect({ application_name: 'first', options: '-c search_path=inventory' })
    await settingsOf(first)
    await settingsOf(first, '/* FRESHNESS: EVENTUAL */ ')
    await first.end()
    const plain = await connect()
    try {
      for (const hint of ['', '/* FRESHNESS: EVENTUAL */ ']) {
        const s = await settingsOf(plain, hint)
        assert.equal(s.app, '', `${s.node}: application_name is the server default, as directly`)
        assert.equal(
          s.timeout,
          s.node === 'primary' ? '0' : '700ms',
          `${s.node}: statement_timeout is back to the login default (the replica's is pools.replica_statement_timeout_ms)`,
        )
        assert.equal(s.path, '"$user", public', `${s.node}: search_path is back to the default`)
      }
      await assert.rejects(
        plain.query('SELECT name FROM things'),
        (err: { code?: string }) => err.code === '42P01',
      )
    } finally {
      await plain.end()
    }
  })

  it('two clients with different settings interleave on one server connection, each seeing its own', async () => {
    const a = await connect({ application_name: 'alpha', statement_timeout: 1000 })
    const b = await connect({ application_name: 'beta', statement_timeout: 2000 })
    try {
      for (let i = 0; i < 5; i++) {
        const [sa, sb] = await Promise.all([settingsOf(a), settingsOf(b)])
        assert.deepEqual([sa.app, sa.timeout], ['alpha', '1s'])
        assert.deepEqual([sb.app, sb.timeout], ['beta', '2s'])
      }
    } finally {
      await a.end()
      await b.end()
    }
  })

  it('reports the chosen application_name in ParameterStatus at login, like PostgreSQL', async () => {
    const seen: Record<string, string> = {}
    const client = new pg.Client({ connectionString: f.url(), application_name: 'reporting' })
    client.connection.on('parameterStatus', (m: { parameterName: string; parameterValue: string }) => {
      seen[m.parameterName] = m.parameterValue
    })
    await client.connect()
    await client.end()
    assert.equal(seen.application_name, 'reporting')
    assert.equal(seen.client_encoding, 'UTF8')
    assert.ok(seen.server_version, 'the server parameters are reported too')
  })

  it("reports a setting chosen at login in the server's own spelling", async () => {
    const seen: Record<string, string> = {}
    const client = new pg.Client({
      connectionString: f.url(),
      options: '-c DateStyle=German -c TimeZone=UTC',
    })
    client.connection.on('parameterStatus', (m: { parameterName: string; parameterValue: string }) => {
      seen[m.parameterName] = m.parameterValue
    })
    await client.connect()
    try {
      assert.equal(seen.DateStyle, 'German, DMY', 'PostgreSQL completes the style with its order')
      const shown = await client.query('SHOW DateStyle')
      assert.equal(shown.rows[0].DateStyle, 'German, DMY')
    } finally {
      await client.end()
    }
  })

  it('replica connections carry pools.replica_statement_timeout_ms; a client setting overrides it', async () => {
    const plain = await connect()
    const patient = await connect({ statement_timeout: 3000 })
    try {
      const slowRead = '/* FRESHNESS: EVENTUAL */ SELECT pg_sleep(1.2), inet_server_port() AS port'
      await assert.rejects(plain.query(slowRead), (err: { code?: string }) => err.code === '57014')
      // the primary has no such timeout
      await plain.query('SELECT pg_sleep(1.2)')
      const res = await patient.query(slowRead)
      assert.equal(f.nodeOf(Number(res.rows[0].port)), 'replica_1')
    } finally {
      await plain.end()
      await patient.end()
    }
  })

  it('a setting the server refuses fails the login, as on PostgreSQL; other clients are unaffected', async () => {
    const bad = new pg.Client({ connectionString: f.url(), options: '-c statement_timeout=banana' })
    await assert.rejects(bad.connect(), (err: { code?: string; message: string; severity?: string }) => {
      assert.equal(err.code, '22023')
      assert.equal(err.severity, 'FATAL')
      assert.match(err.message, /statement_timeout/)
      return true
    })
    const good = await connect({ application_name: 'after-bad' })
    try {
      const s = await settingsOf(good)
      assert.equal(s.app, 'after-bad')
      assert.equal(s.timeout, '0')
    } finally {
      await good.end()
    }
  })
})
