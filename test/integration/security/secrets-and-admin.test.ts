// Security on a real cluster: the admin token guards every route but /healthz, secrets never leak into
// the admin API, metrics, decision logs, error messages or logs, and hints in user data never route.

import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import type { AdminServer } from '../../../src/index.js'
import { ConfigError, createPool, type FreshetPool, startAdmin } from '../../../src/index.js'
import { createLogger } from '../../../src/telemetry/logger.js'
import { type LocalCluster, startCluster } from '../../cluster/index.js'
import { configFor, nodeByPort } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'

const DB_PASSWORD = 'Db-S3cret-Zq8x'
const WRONG_PASSWORD = 'Wr0ng-S3cret-Jk2'
const PROXY_PASSWORD = 'Pr0xy-S3cret-Kx4'
const TOKEN = 'Adm1n-T0ken-Wq7v'
const SECRETS = [DB_PASSWORD, WRONG_PASSWORD, PROXY_PASSWORD, TOKEN]

function leaks(text: string): string[] {
  return SECRETS.filter((s) => text.includes(s) || text.includes(encodeURIComponent(s)))
}

describe('secrets and the admin API', () => {
  let cluster: LocalCluster
  let pool: FreshetPool
  let broken: FreshetPool
  let admin: AdminServer
  let nodeOf: (port: number) => string
  const logged: string[] = []
  const errors: string[] = []

  const urlWith = (port: number, password: string) =>
    `postgres://app:${encodeURIComponent(password)}@127.0.0.1:${port}/freshet`

  before(async () => {
    cluster = await startCluster({ replicas: 1 })
    nodeOf = nodeByPort(cluster)
    // `app` logs in with SCRAM (the harness trusts other roles): give it a password worth looking for.
    await cluster.query('primary', `ALTER ROLE app PASSWORD '${DB_PASSWORD}'`)
    await cluster.waitForCatchUp()
    const config = (password: string, logLevel: string) =>
      configFor(cluster, {
        cluster: {
          primary: { name: 'primary', url: urlWith(cluster.primary.port, DB_PASSWORD) },
          replicas: [{ name: 'replica_1', url: urlWith(cluster.node('replica_1').port, password) }],
        },
        proxy: { auth: { type: 'scram-sha-256', users: { app: { password: PROXY_PASSWORD } } } },
        admin: { listen: '127.0.0.1:0', token: TOKEN },
        telemetry: { log_level: logLevel, log_sampling_rate: 1 },
      })
    const sink = new Writable({
      write(chunk, _enc, done) {
        logged.push(String(chunk))
        done()
      },
    })
    pool = createPool(config(DB_PASSWORD, 'debug'))
    pool.on('log', (level, message, fields) =>
      logged.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`),
    )
    await pool.ready()
    await eventually('replica healthy', () => pool.snapshot().every((n) => n.healthy))
    admin = await startAdmin({ pool, logger: createLogger({ log_level: 'debug' }, sink) })
    // A second pool whose replica URL carries a wrong password: every attempt to reach it fails.
    broken = createPool(config(WRONG_PASSWORD, 'debug'))
    broken.on('error', (err: Error) => errors.push(err.message))
    broken.on('log', (level, message, fields) =>
      logged.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`),
    )
    await broken.ready().catch((err: Error) => errors.push(err.message))
  })

  after(async () => {
    await admin?.close()
    await pool?.end()
    await broken?.end()
    await cluster?.stop()
  })

  const get = (path: string, token?: string, init: RequestInit = {}) =>
    fetch(`${admin.url}${path}`, {
      ...init,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.headers ?? {}) },
    })

  it('requires the token on every route but /healthz', async () => {
    assert.equal((await get('/healthz')).status, 200)
    const routes: [string, RequestInit][] = [
      ['/', {}],
      ['/readyz', {}],
      ['/metrics', {}],
      ['/api/v1/topology', {}],
      ['/api/v1/stats', {}],
      ['/api/v1/config', {}],
      ['/api/v1/config', { method: 'PUT', body: '{"version": 99}' }],
      ['/api/v1/controls', { method: 'POST', body: '{"route_all_to_primary": true}' }],
      ['/api/v1/explain', { method: 'POST', body: '{"sql": "SELECT 1"}' }],
      ['/api/v1/decisions', {}],
      ['/no/such/route', {}],
    ]
    for (const [path, init] of routes) {
      for (const token of [undefined, 'wrong-token', `${TOKEN}x`]) {
        const res = await get(path, token, init)
        const body = await res.text()
        assert.equal(res.status, 401, `${init.method ?? 'GET'} ${path} with ${token} answered ${res.status}`)
        assert.deepEqual(leaks(body), [], path)
      }
    }
    // The refused PUT and POST changed nothing.
    assert.equal(pool.config.version, 1)
    assert.equal(pool.config.controls.route_all_to_primary, false)
    assert.equal((await get('/readyz', TOKEN)).status, 200)
  })

  it('refuses a non-loopback bind without a token unless explicitly allowed', async () => {
    // A pool whose config has no admin token (the token would otherwise come from the config).
    const open = createPool(configFor(cluster, { admin: { listen: '127.0.0.1:0', token: null } }))
    try {
      await open.ready()
      const started = await startAdmin({ pool: open, admin: { listen: '0.0.0.0:0' } }).then(
        async (a) => {
          await a.close()
          return null
        },
        (err: unknown) => err,
      )
      assert.ok(started instanceof ConfigError, `a non-loopback admin without a token started: ${started}`)
      assert.ok(started.issues.some((i) => i.path === 'admin.listen'))
    } finally {
      await open.end()
    }
  })

  it('hints inside a bound parameter or a string literal never change routing', async () => {
    // Control: the same hint as a comment does route to the replica.
    const viaComment = await pool.query('/*+ ROUTE_TO: replica */ SELECT inet_server_port() AS port')
    assert.equal(nodeOf(Number(viaComment.rows[0].port)), 'replica_1')
    const tricks: [string, unknown[]?][] = [
      ["SELECT inet_server_port() AS port, '/*+ ROUTE_TO: replica */' AS s"],
      ["SELECT inet_server_port() AS port, '/* FRESHNESS: EVENTUAL */' AS s"],
      ["SELECT inet_server_port() AS port, E'\\' /*+ ROUTE_TO: replica */' AS s"],
      ['SELECT inet_server_port() AS port, $x$ /*+ ROUTE_TO: replica */ $x$ AS s'],
      ['SELECT inet_server_port() AS port, 1 AS "/*+ ROUTE_TO: replica */"'],
      ['SELECT inet_server_port() AS port, $1::text AS s', ['/*+ ROUTE_TO: replica */']],
      ['SELECT inet_server_port() AS port, $1::text AS s', ['*/ /*+ ROUTE_TO: replica */ /*']],
    ]
    for (const [sql, params] of tricks) {
      for (let i = 0; i < 3; i++) {
        const res = await pool.query(sql, params)
        assert.equal(nodeOf(Number(res.rows[0].port)), 'primary', `${sql} ${JSON.stringify(params)}`)
      }
    }
  })

  it('keeps secrets out of config, metrics, topology, decisions, errors and logs', async () => {
    for (let i = 0; i < 20; i++) await pool.query('/* FRESHNESS: EVENTUAL */ SELECT 1')
    // The broken pool: replica reads fail authentication; the primary works.
    for (let i = 0; i < 3; i++) {
      await broken
        .query('/*+ ROUTE_TO: replica_1 */ SELECT 1')
        .catch((err: Error) => errors.push(`${err.message} ${String(err.stack)}`))
    }
    await eventually('the wrong password was refused', () =>
      broken.snapshot().some((n) => n.name === 'replica_1' && !n.healthy),
    )
    const snapshotText = JSON.stringify(broken.snapshot())
    const bodies: Record<string, string> = {}
    for (const path of [
      '/api/v1/config',
      '/metrics',
      '/api/v1/topology',
      '/api/v1/decisions?limit=1000',
      '/api/v1/stats',
    ]) {
      const res = await get(path, TOKEN)
      assert.equal(res.status, 200, path)
      bodies[path] = await res.text()
    }
    const decisions = JSON.parse(bodies['/api/v1/decisions?limit=1000']!).decisions as unknown[]
    assert.ok(decisions.length > 0, 'no decisions were logged, the check would prove nothing')
    assert.ok(logged.length > 0, 'nothing was logged, the check would prove nothing')
    for (const [where, text] of Object.entries({
      ...bodies,
      snapshot: snapshotText,
      errors: errors.join('\n'),
      logs: logged.join('\n'),
    })) {
      assert.deepEqual(leaks(text), [], `a secret appears in ${where}`)
    }
    // The config endpoint still says which fields exist (redacted, not dropped).
    assert.match(bodies['/api/v1/config']!, /app:\*\*\*@127\.0\.0\.1/)
  })
})
