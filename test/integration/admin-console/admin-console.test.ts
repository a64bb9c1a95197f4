// The admin console over the wire protocol (psql -d freshet_admin -c 'SHOW POOLS'), as `freshet proxy`
// runs it: the same answers as the admin HTTP API, the emergency controls, RELOAD, and clear refusals.

import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { type RunningProxy, startProxy } from '../../../src/cli/proxy.js'
import { type LocalCluster, startCluster } from '../../cluster/index.js'
import { configFor, nodeByPort } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'
import { runCommand } from '../../support/run-command.js'

const ADMIN_PASSWORD = 'admin-pw'

describe('admin console', () => {
  let cluster: LocalCluster
  let running: RunningProxy
  let dir: string
  let file: string
  let port: number
  let nodeOf: (port: number) => string
  const notices: string[] = []

  const configText = (version: number) =>
    JSON.stringify(
      configFor(cluster, {
        version,
        proxy: {
          listen: '127.0.0.1:0',
          auth: { type: 'scram-sha-256', users: { app: { password: 'app' } } },
          admin: { users: { admin: { password: ADMIN_PASSWORD } } },
          shutdown_timeout_ms: 1000,
        },
        admin: { listen: '127.0.0.1:0' },
        telemetry: { log_level: 'silent' },
      }),
    )

  async function client(user = 'admin', password = ADMIN_PASSWORD, database = 'freshet_admin') {
    const c = new pg.Client({ host: '127.0.0.1', port, user, password, database })
    c.on('notice', (n) => notices.push(n.message ?? ''))
    await c.connect()
    return c
  }

  async function adminQuery(sql: string) {
    const c = await client()
    try {
      return await c.query(sql)
    } finally {
      await c.end()
    }
  }

  async function refused(sql: string | pg.QueryConfig): Promise<{ code?: string; message: string }> {
    const c = await client()
    try {
      await c.query(sql as string)
    } catch (err) {
      return err as { code?: string; message: string }
    } finally {
      await c.end()
    }
    assert.fail(`${JSON.stringify(sql)} was not refused`)
  }

  const http = async (path: string) => (await fetch(`${running.adminUrl}${path}`)).json()

  before(async () => {
    cluster = await startCluster({ replicas: 2 })
    nodeOf = nodeByPort(cluster)
    dir = mkdtempSync(join(tmpdir(), 'freshet-console-'))
    file = join(dir, 'freshet.yaml')
    writeFileSync(file, configText(1))
    running = await startProxy({ configPath: file, watchDebounceMs: 50 })
    port = Number(running.address.slice(running.address.lastIndexOf(':') + 1))
    await eventually('replicas have lag readings', () =>
      running.engine.snapshot().every((n) => n.role === 'primary' || (n.healthy && n.lag_ms !== null)),
    )
  })

  after(async () => {
    await running?.stop()
    await cluster?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it("psql -d freshet_admin -c 'SHOW POOLS' works as with pgbouncer", async () => {
    // async: the proxy runs in this process and must keep answering while psql waits
    const run = await runCommand(
      'psql',
      [
        '-X',
        '-h',
        '127.0.0.1',
        '-p',
        String(port),
        '-U',
        'admin',
        '-d',
        'freshet_admin',
        '--csv',
        '-c',
        'SHOW POOLS',
      ],
      { env: { ...process.env, PGPASSWORD: ADMIN_PASSWORD } },
    )
    assert.equal(run.status, 0, run.stderr)
    const lines = run.stdout.trim().split('\n')
    assert.equal(lines[0], 'node,role,total,active,idle,waiting')
    assert.deepEqual(
      lines
        .slice(1)
        .map((l) => l.split(',')[0])
        .sort(),
      ['primary', 'replica_1', 'replica_2'],
    )
  })

  it('SHOW NODES: role, lag, staleness bound and eligibility per tier, the same as GET /api/v1/topology', async () => {
    const { rows, fields } = await adminQuery('SHOW NODES')
    assert.deepEqual(
      fields.map((f) => f.name),
      [
        'name',
        'role',
        'healthy',
        'breaker',
        'lag_ms',
        'staleness_bound_ms',
        'checked_at',
        'strict',
        'near_rt',
        'eventual',
      ],
    )
    const topology = (await http('/api/v1/topology')) as {
      nodes: { name: string; role: string }[]
      eligibility: Record<string, Record<string, { eligible: boolean }>>
    }
    assert.deepEqual(
      rows.map((r) => [r.name, r.role]),
      topology.nodes.map((n) => [n.name, n.role]),
    )
    for (const r of rows.filter((x) => x.role !== 'primary')) {
      assert.equal(r.eventual, 'eligible', `${r.name} serves eventual`)
      assert.equal(topology.eligibility[r.name]?.eventual?.eligible, true)
      assert.equal(r.healthy, 'true')
    }
  })

  it('SHOW CONFIG is GET /api/v1/config, one key path per row, secrets as ***', async () => {
    const { rows } = await adminQuery('SHOW CONFIG')
    const byKey = new Map(rows.map((r) => [r.key as string, r.value as string | null]))
    assert.equal(byKey.get('proxy.auth.users.app.password'), '***')
    assert.equal(byKey.get('proxy.admin.users.admin.password'), '***')
    assert.equal(byKey.get('proxy.admin.database'), 'freshet_admin')
    const flat = new Map<string, string | null>()
    const walk = (v: unknown, path: string): void => {
      if (v !== null && typeof v === 'object') {
        const entries = Array.isArray(v) ? v.map((x, i) => [`[${i}]`, x] as const) : Object.entries(v)
        if (entries.length === 0) flat.set(path, Array.isArray(v) ? '[]' : '{}')
        for (const [k, x] of entries) walk(x, k.startsWith('[') ? `${path}${k}` : path ? `${path}.${k}` : k)
      } else flat.set(path, v === null ? null : String(v))
    }
    walk(await http('/api/v1/config'), '')
    assert.deepEqual(byKey, flat)
  })

  it('SHOW CLIENTS and SHOW SERVERS list the connections of an application client', async () => {
    const app = await client('app', 'app', 'freshet')
    try {
      await app.query('/* FRESHNESS: EVENTUAL */ SELECT 1')
      const clients = (await adminQuery('SHOW CLIENTS')).rows
      assert.ok(
        clients.some(
          (c) => c.user === 'app' && c.database === 'freshet' && /^127\.0\.0\.1:\d+$/.test(c.address),
        ),
        JSON.stringify(clients),
      )
      assert.ok(clients.some((c) => c.user === 'admin' && c.database === 'freshet_admin'))
      const servers = (await adminQuery('SHOW SERVERS')).rows
      assert.ok(
        servers.some((s) => s.user === 'app' && s.database === 'freshet'),
        JSON.stringify(servers),
      )
      for (const s of servers) {
        assert.equal(nodeOf(Number(s.port)), s.node)
        assert.match(s.state, /^(idle|active)$/)
      }
    } finally {
      await app.end()
    }
  })

  it('SET route_all_to_primary = on is the emergency control of POST /api/v1/controls', async () => {
    const app = await client('app', 'app', 'freshet')
    try {
      const where = async () =>
        nodeOf((await app.query('/* FRESHNESS: EVENTUAL */ SELECT inet_server_port() AS port')).rows[0].port)
      assert.match(await where(), /^replica_/)
      await adminQuery('SET route_all_to_primary = on')
      assert.ok(notices.includes('freshet: route_all_to_primary is on'), notices.join('\n'))
      assert.equal(
        ((await http('/api/v1/controls')) as { route_all_to_primary: boolean }).route_all_to_primary,
        true,
      )
      assert.equal(await where(), 'primary')
      const nodes = (await adminQuery('SHOW NODES')).rows
      assert.match(
        nodes.find((n) => n.name === 'replica_1').eventual,
        /^no: controls\.route_all_to_primary is on/,
      )
      assert.deepEqual(
        (await adminQuery('SHOW CONTROLS')).rows.find((r) => r.control === 'route_all_to_primary'),
        { control: 'route_all_to_primary', value: 'on' },
      )
      await adminQuery("SET route_all_to_primary TO 'off'")
      assert.match(await where(), /^replica_/)
    } finally {
      await adminQuery('SET route_all_to_primary = off')
      await app.end()
    }
  })

  it('RELOAD re-reads the config file: an older or equal version is refused, a newer one applies', async () => {
    await adminQuery('RELOAD')
    assert.ok(notices.includes('freshet: config version 1 is running'), 'an unchanged file is no refusal')
    writeFileSync(file, configText(1).replace('"log_level":"silent"', '"log_level":"error"'))
    const same = await refused('RELOAD')
    assert.equal(same.code, '55000')
    assert.match(
      same.message,
      /^freshet: reload refused: invalid config in \S+: version: must be greater than the running version 1 \(got 1\)$/,
    )
    writeFileSync(file, configText(2))
    await adminQuery('RELOAD')
    assert.ok(notices.includes('freshet: config version 2 is running'), notices.join('\n'))
    assert.equal(running.engine.config.version, 2)
  })

  it('refuses everything else with a clear error, and keeps the session usable', async () => {
    const select = await refused('SELECT 1')
    assert.equal(select.code, '42601')
    assert.match(
      select.message,
      /^freshet: the admin console accepts SHOW POOLS, .* RELOAD, SET <control> = on \| off; got 'SELECT 1'$/,
    )
    assert.equal((await refused('SHOW TABLES')).code, '42704')
    assert.match((await refused('SET work_mem = 1')).message, /SET works on the emergency controls only/)
    assert.match((await refused('SET disable_lag_checks = maybe')).message, /expected on or off, got 'maybe'/)
    const extended = await refused({ name: 'p', text: 'SHOW POOLS' })
    assert.equal(extended.code, '0A000')
    const c = await client()
    try {
      await assert.rejects(c.query('SELECT 1'), /admin console accepts/)
      assert.ok((await c.query('SHOW HELP')).rows.length >= 8, 'the same session answers after an error')
    } finally {
      await c.end()
    }
  })

  it('only proxy.admin.users log in to it, with their password', async () => {
    await assert.rejects(client('app', 'app'), (err: { code?: string; message: string }) => {
      assert.equal(err.code, '28000')
      assert.equal(
        err.message,
        "freshet: user 'admin' may not use the admin console freshet_admin (proxy.admin.users)".replace(
          "admin'",
          "app'",
        ),
      )
      return true
    })
    await assert.rejects(client('admin', 'wrong'), /password authentication failed|authentication failed/)
  })
})
