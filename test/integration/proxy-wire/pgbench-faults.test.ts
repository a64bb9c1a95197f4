// pgbench through the proxy, session pool mode, replicas that lag or die, and graceful shutdown.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { parseConfig } from '../../../src/core/config/parse-config.js'
import { ProxyServer } from '../../../src/proxy/proxy-server.js'
import { RoutingEngine } from '../../../src/routing/routing-engine.js'
import { configFor } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'
import { type ProxyFixture, runCommand, startProxyFixture } from '../../support/proxy-fixture.js'

const WHERE = 'SELECT inet_server_port() AS port'

describe('proxy wire: pgbench, pool modes, faults, shutdown', () => {
  let f: ProxyFixture

  before(async () => {
    f = await startProxyFixture({
      pools: {
        primary: { min_idle: 0, max_active: 8 },
        replicas: { min_idle: 0, max_active: 8 },
        slow_start_ms: 0,
      },
    })
  })

  after(async () => {
    await f?.stop()
  })

  async function servedBy(c: pg.Client, sql: string): Promise<string> {
    const res = await c.query(sql)
    return f.nodeOf(Number(res.rows[0].port))
  }

  function pgbenchEnv() {
    return {
      PGHOST: '127.0.0.1',
      PGPORT: String(f.port),
      PGUSER: 'postgres',
      PGPASSWORD: 'x',
      PGDATABASE: 'freshet',
    }
  }

  it('pgbench -i, then the TPC-B-like and select-only scripts in simple and prepared modes, without errors', async () => {
    const init = await runCommand('pgbench', ['-i', '-s', '1', '-q'], pgbenchEnv(), 120_000)
    assert.equal(init.code, 0, init.stderr)
    for (const args of [
      ['-c', '8', '-j', '2', '-t', '50', '-M', 'simple'],
      ['-c', '8', '-j', '2', '-t', '50', '-M', 'prepared'],
      ['-S', '-c', '8', '-j', '2', '-t', '200', '-M', 'simple'],
      ['-S', '-c', '8', '-j', '2', '-t', '200', '-M', 'prepared'],
      ['-S', '-c', '8', '-j', '2', '-t', '200', '-M', 'extended'],
    ]) {
      const run = await runCommand('pgbench', ['-n', ...args], pgbenchEnv(), 120_000)
      assert.equal(run.code, 0, `${args.join(' ')}: ${run.stderr}`)
      assert.match(run.stdout, /number of failed transactions: 0/, run.stdout)
    }
  })

  it('session pool mode keeps one server connection per client', async () => {
    const input = configFor(f.cluster, {
      version: 2,
      proxy: {
        listen: '127.0.0.1:0',
        pool_mode: 'session',
        auth: { type: 'md5', users: { app: { password: 'app' } } },
      },
    })
    const engine = new RoutingEngine(parseConfig(JSON.stringify(input)))
    await engine.start()
    const proxy = new ProxyServer(engine, { log: () => {} })
    const { port } = await proxy.listen()
    try {
      const c = new pg.Client({ connectionString: `postgres://app:app@127.0.0.1:${port}/freshet` })
      await c.connect()
      const pids = new Set<number>()
      for (let i = 0; i < 5; i++) pids.add((await c.query('SELECT pg_backend_pid() AS p')).rows[0].p)
      assert.equal(pids.size, 1)
      await c.query('SET statement_timeout = 1234')
      assert.equal((await c.query('SHOW statement_timeout')).rows[0].statement_timeout, '1234ms')
      await c.end()
    } finally {
      await proxy.close(1000)
      await engine.stop()
    }
  })

  it('keeps session state on one connection in transaction mode (temp tables, SET)', async () => {
    const c = new pg.Client({ connectionString: f.url() })
    await c.connect()
    try {
      await c.query('CREATE TEMP TABLE scratch (x int)')
      await c.query('INSERT INTO scratch VALUES (1)')
      for (let i = 0; i < 3; i++)
        assert.equal((await c.query('SELECT count(*)::int AS n FROM scratch')).rows[0].n, 1)
    } finally {
      await c.end()
    }
  })

  it('takes a paused replica out of NEAR_RT and routes around a killed one', async () => {
    const c = new pg.Client({ connectionString: f.url() })
    await c.connect()
    try {
      await f.cluster.pauseReplay('replica_1')
      await eventually(
        'replica_1 lags beyond near_rt',
        () => (f.engine.snapshot().find((n) => n.name === 'replica_1')?.staleness_bound_ms ?? 1e9) > 600,
      )
      for (let i = 0; i < 10; i++) {
        assert.notEqual(await servedBy(c, `/* FRESHNESS: NEAR_RT */ ${WHERE}`), 'replica_1')
      }
      await f.cluster.resumeReplay('replica_1')
      await eventually(
        'replica_1 back within near_rt',
        () => (f.engine.snapshot().find((n) => n.name === 'replica_1')?.staleness_bound_ms ?? 1e9) < 300,
      )

      await f.cluster.kill('replica_2')
      await eventually(
        'replica_2 seen unhealthy',
        () => f.engine.snapshot().find((n) => n.name === 'replica_2')?.healthy === false,
      )
      for (let i = 0; i < 10; i++) {
        assert.notEqual(await servedBy(c, `/* FRESHNESS: EVENTUAL */ ${WHERE}`), 'replica_2')
      }
    } finally {
      await c.end()
    }
  })

  it('drains on shutdown: an open transaction may commit, idle clients are told 57P01', async () => {
    const busy = new pg.Client({ connectionString: f.url('postgres', 'x') })
    const idle = new pg.Client({ connectionString: f.url() })
    await busy.connect()
    await idle.connect()
    const idleError = new Promise<{ code?: string }>((r) =>
      idle.on('error', (e) => r(e as { code?: string })),
    )
    busy.on('error', () => {})
    try {
      await busy.query('BEGIN')
      await busy.query('INSERT INTO pgbench_history (tid, bid, aid, delta) VALUES (1, 1, 1, 1)')
      const closing = f.proxy.close(5000)
      assert.equal((await idleError).code, '57P01')
      await busy.query('COMMIT')
      await closing
      assert.equal(f.proxy.clients, 0)
      const seen = await f.cluster.query(
        'primary',
        'SELECT count(*)::int AS n FROM pgbench_history WHERE delta = 1 AND aid = 1 AND tid = 1',
      )
      assert.ok((seen.rows[0] as { n: number }).n >= 1)
    } finally {
      await busy.end().catch(() => {})
      await idle.end().catch(() => {})
    }
  })
})
