// The admin API against a routing engine that was never started (no cluster): every route with and
// without a token, config PUT outcomes, controls, explain, decisions, metrics and the bind rule.

import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { type AdminServer, isLoopback, parseListen, startAdmin } from '../../../src/admin/admin-server.js'
import { Classifier } from '../../../src/core/classify/classifier.js'
import { validateConfig } from '../../../src/core/config/parse-config.js'
import { ConfigError } from '../../../src/core/errors.js'
import { RoutingEngine } from '../../../src/routing/routing-engine.js'
import { ShardedRouting } from '../../../src/routing/sharded-routing.js'
import { createLogger } from '../../../src/telemetry/logger.js'

const TOKEN = 's3cret-token-value'

/** Response bodies are checked field by field; their shape is what the test asserts. */
// biome-ignore lint/suspicious/noExplicitAny: test assertions read arbitrary JSON
const json = async (res: Response): Promise<any> => res.json()

function configInput(version: number, extra: Record<string, unknown> = {}) {
  return {
    version,
    cluster: {
      primary: { name: 'primary', url: 'postgres://app:dbpassword@127.0.0.1:1/main' },
      replicas: [{ name: 'replica_1', url: 'postgres://app:dbpassword@127.0.0.1:2/main' }],
    },
    admin: { listen: '127.0.0.1:0', token: TOKEN },
    telemetry: { log_sampling_rate: 1, log_level: 'info' },
    ...extra,
  }
}

describe('admin server', () => {
  let engine: RoutingEngine
  let admin: AdminServer
  const logLines: string[] = []
  const sink = new Writable({
    write(chunk, _enc, done) {
      logLines.push(String(chunk))
      done()
    },
  })

  before(async () => {
    await Classifier.loadParser()
    engine = new RoutingEngine(validateConfig(configInput(1)))
    admin = await startAdmin({ engine, logger: createLogger({ log_level: 'debug' }, sink) })
  })
  after(async () => {
    await admin.close()
    await engine.stop()
  })

  const call = (path: string, init: RequestInit & { token?: string | null } = {}) => {
    const headers = new Headers(init.headers)
    const token = init.token === undefined ? TOKEN : init.token
    if (token !== null) headers.set('authorization', `Bearer ${token}`)
    return fetch(admin.url + path, { ...init, headers })
  }

  it('serves /healthz without a token', async () => {
    const res = await call('/healthz', { token: null })
    assert.equal(res.status, 200)
    assert.deepEqual(await json(res), { status: 'ok' })
  })

  for (const [method, path] of [
    ['GET', '/readyz'],
    ['GET', '/metrics'],
    ['GET', '/api/v1/topology'],
    ['GET', '/api/v1/config'],
    ['PUT', '/api/v1/config'],
    ['POST', '/api/v1/controls'],
    ['POST', '/api/v1/explain'],
    ['GET', '/api/v1/decisions'],
    ['GET', '/api/v1/stats'],
  ] as const) {
    it(`${method} ${path} needs the bearer token (401 without, 401 with a wrong one)`, async () => {
      for (const token of [null, 'wrong', `${TOKEN}x`]) {
        const res = await call(path, { method, token, ...(method === 'GET' ? {} : { body: '{}' }) })
        assert.equal(res.status, 401, `${method} ${path} token=${token}`)
        assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="freshet"')
        const text = await res.text()
        assert.ok(!text.includes(TOKEN))
      }
    })
  }

  it('GET / without a token answers 401 with a token prompt, with ?token= the dashboard', async () => {
    const bare = await call('/', { token: null })
    assert.equal(bare.status, 401)
    assert.match(await bare.text(), /name="token"/)
    const viaQuery = await call(`/?token=${TOKEN}`, { token: null })
    assert.equal(viaQuery.status, 200)
    assert.match(await viaQuery.text(), /id="lag-chart"/)
    const viaHeader = await call('/')
    assert.equal(viaHeader.status, 200)
    // A query token works only for the page, never for the API.
    assert.equal((await call(`/api/v1/topology?token=${TOKEN}`, { token: null })).status, 401)
  })

  it('GET /readyz is 503 while the primary has no healthy reading', async () => {
    const res = await call('/readyz')
    assert.equal(res.status, 503)
    assert.match((await json(res)).reason, /primary/)
  })

  it('GET /api/v1/topology lists nodes, tiers, controls and the version', async () => {
    const res = await call('/api/v1/topology')
    assert.equal(res.status, 200)
    const body = await json(res)
    assert.equal(body.config_version, 1)
    assert.deepEqual(
      body.nodes.map((n: { name: string }) => n.name),
      ['primary', 'replica_1'],
    )
    assert.equal(body.tiers.near_rt.max_lag_ms, 500)
    assert.equal(body.controls.route_all_to_primary, false)
  })

  it('GET /api/v1/config is redacted', async () => {
    const res = await call('/api/v1/config')
    const text = await res.text()
    assert.equal(res.status, 200)
    assert.ok(!text.includes('dbpassword'), 'no database password')
    assert.ok(!text.includes(TOKEN), 'no admin token')
    assert.equal(JSON.parse(text).cluster.primary.url, 'postgres://app:***@127.0.0.1:1/main')
  })

  it('PUT /api/v1/config: invalid is 422 with every key path, older is 409, newer applies', async () => {
    const invalid = await call('/api/v1/config', {
      method: 'PUT',
      body: 'version: 5\ncluster:\n  primary: { name: primary }\nrouting:\n  polcy: x\n  tiers:\n    near_rt: { max_lag_ms: -1 }\n',
    })
    assert.equal(invalid.status, 422)
    const paths = (await json(invalid)).issues.map((i: { path: string }) => i.path)
    assert.ok(paths.includes('cluster.primary.url'), paths.join())
    assert.ok(paths.includes('routing.polcy'), paths.join())
    assert.ok(paths.includes('routing.tiers.near_rt.max_lag_ms'), paths.join())
    assert.equal(engine.config.version, 1)

    const notYaml = await call('/api/v1/config', { method: 'PUT', body: '{ nope: [' })
    assert.equal(notYaml.status, 422)

    const same = await call('/api/v1/config', { method: 'PUT', body: JSON.stringify(configInput(1)) })
    assert.equal(same.status, 409)
    assert.equal((await json(same)).issues[0].path, 'version')

    const ok = await call('/api/v1/config', {
      method: 'PUT',
      body: JSON.stringify(configInput(2, { domains: { ledger: 'strict' } })),
    })
    assert.equal(ok.status, 200)
    assert.deepEqual(await json(ok), { status: 'applied', version: 2 })
    assert.equal(engine.config.version, 2)
    const metrics = await (await call('/metrics')).text()
    assert.match(metrics, /^config_version 2$/m)
    assert.match(metrics, /freshet_config_reloads_total\{source="api",result="invalid"\} 2/)
    assert.match(metrics, /freshet_config_reloads_total\{source="api",result="version"\} 1/)
    assert.ok(!logLines.join('').includes('dbpassword'))
  })

  it('POST /api/v1/controls: unknown keys and non-booleans are 422; a change applies, is logged and counted', async () => {
    const bad = await call('/api/v1/controls', {
      method: 'POST',
      body: JSON.stringify({ route_all_to_primary: true, route_everything: true, disable_lag_checks: 'yes' }),
    })
    assert.equal(bad.status, 422)
    const issues = (await json(bad)).issues.map((i: { path: string }) => i.path)
    assert.deepEqual(issues.sort(), ['disable_lag_checks', 'route_everything'])
    assert.equal(engine.config.controls.route_all_to_primary, false, 'nothing applied from a refused patch')

    const ok = await call('/api/v1/controls', {
      method: 'POST',
      body: JSON.stringify({ route_all_to_primary: true }),
    })
    assert.equal(ok.status, 200)
    assert.equal((await json(ok)).route_all_to_primary, true)
    const explained = await call('/api/v1/explain', {
      method: 'POST',
      body: JSON.stringify({ sql: '/* FRESHNESS: EVENTUAL */ SELECT 1' }),
    })
    assert.equal((await json(explained)).decision.reason, 'emergency_primary')
    assert.ok(logLines.some((l) => l.includes('"control":"route_all_to_primary"') && l.includes('"to":true')))
    const metrics = await (await call('/metrics')).text()
    assert.match(metrics, /freshet_controls_changes_total\{control="route_all_to_primary"\} 1/)
    assert.match(metrics, /freshet_controls\{control="route_all_to_primary"\} 1/)
    await call('/api/v1/controls', { method: 'POST', body: JSON.stringify({ route_all_to_primary: false }) })
    assert.equal(engine.config.controls.route_all_to_primary, false)
  })

  it('POST /api/v1/explain returns the decision and a classification summary, and is not counted', async () => {
    const res = await call('/api/v1/explain', {
      method: 'POST',
      body: JSON.stringify({ sql: "INSERT INTO t VALUES ('secret literal')" }),
    })
    assert.equal(res.status, 200)
    const body = await json(res)
    assert.equal(body.decision.target, 'primary')
    assert.equal(body.decision.reason, 'write')
    assert.equal(body.classification.kind, 'write')
    assert.deepEqual(body.classification.tables, ['t'])
    assert.match(body.summary, /reason=write/)
    const missing = await call('/api/v1/explain', { method: 'POST', body: '{}' })
    assert.equal(missing.status, 422)
    const notJson = await call('/api/v1/explain', { method: 'POST', body: 'SELECT 1' })
    assert.equal(notJson.status, 400)
    const metrics = await (await call('/metrics')).text()
    assert.doesNotMatch(metrics, /routing_decisions_total\{[^}]*reason="write"/)
  })

  it('GET /api/v1/decisions returns sampled decisions with fingerprints, never statement text', async () => {
    engine.decide(
      engine.classify("SELECT * FROM accounts WHERE email = 'alice@example.com'"),
      {
        pinnedNode: null,
        pinReason: null,
        inTransaction: false,
      },
      {},
    )
    const res = await call('/api/v1/decisions?limit=5')
    assert.equal(res.status, 200)
    const text = await res.text()
    const body = JSON.parse(text)
    assert.equal(body.sampling_rate, 1)
    assert.ok(body.decisions.length >= 1)
    assert.equal(body.decisions[0].kind, 'read')
    assert.equal(typeof body.decisions[0].fingerprint, 'string')
    assert.ok(!text.includes('alice@example.com'))
    assert.ok(!logLines.join('').includes('alice@example.com'))
    assert.equal((await call('/api/v1/decisions?limit=-1')).status, 422)
  })

  it('answers 404 for unknown paths and 405 for wrong methods', async () => {
    assert.equal((await call('/nope')).status, 404)
    const res = await call('/api/v1/topology', { method: 'DELETE' })
    assert.equal(res.status, 405)
    assert.equal(res.headers.get('allow'), 'GET')
  })
})

describe('admin bind rule', () => {
  it('parses listen addresses and knows loopback', () => {
    assert.deepEqual(parseListen('127.0.0.1:9187'), { host: '127.0.0.1', port: 9187 })
    assert.deepEqual(parseListen('[::1]:0'), { host: '::1', port: 0 })
    assert.deepEqual(parseListen(':9187'), { host: '127.0.0.1', port: 9187 })
    assert.throws(() => parseListen('nohost'), ConfigError)
    assert.ok(isLoopback('127.0.0.2') && isLoopback('::1') && isLoopback('localhost'))
    assert.ok(!isLoopback('0.0.0.0') && !isLoopback('10.1.2.3'))
  })

  it('refuses a non-loopback address without a token, unless allowed explicitly', async () => {
    await Classifier.loadParser()
    const engine = new RoutingEngine(
      validateConfig({
        ...configInput(1),
        admin: { listen: '0.0.0.0:0', token: null },
        telemetry: { log_level: 'silent' },
      }),
    )
    await assert.rejects(startAdmin({ engine }), (err: ConfigError) => {
      assert.equal(err.issues[0]!.path, 'admin.listen')
      assert.match(err.issues[0]!.message, /without admin.token/)
      return true
    })
    const withToken = await startAdmin({ engine, admin: { token: 't' } })
    await withToken.close()
    const allowed = await startAdmin({ engine, admin: { allow_remote_without_token: true } })
    const res = await fetch(`${allowed.url.replace('0.0.0.0', '127.0.0.1')}/api/v1/topology`)
    assert.equal(res.status, 200)
    await allowed.close()
  })
})

describe('admin server over a sharded routing (never started)', () => {
  let routing: ShardedRouting
  let admin: AdminServer
  before(async () => {
    await Classifier.loadParser()
    const node = (name: string, port: number) => ({
      name,
      url: `postgres://app:dbpassword@127.0.0.1:${port}/main`,
    })
    routing = new ShardedRouting(
      validateConfig({
        shards: [
          { name: 'shard_0', primary: node('s0_primary', 1), replicas: [node('s0_replica_1', 2)] },
          { name: 'shard_1', primary: node('s1_primary', 3) },
        ],
        sharding: {
          tables: { orders: { key: 'customer_id' } },
          map: [
            { partition_key_range: '0-511', target_backend: 'shard_0' },
            { partition_key_range: '512-1023', target_backend: 'shard_1' },
          ],
          aggregate: node('federated', 4),
        },
        admin: { listen: '127.0.0.1:0', token: TOKEN },
        telemetry: { log_level: 'silent' },
      }),
    )
    admin = await startAdmin({ engine: routing, logger: createLogger({ log_level: 'silent' }) })
  })
  after(async () => {
    await admin.close()
    await routing.stop()
  })
  const post = (sql: string) =>
    fetch(`${admin.url}/api/v1/explain`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ sql }),
    })

  it('explain reads the key from the text: the shard and its source in the decision and the summary', async () => {
    const one = await json(await post('SELECT * FROM orders WHERE customer_id = 7'))
    const other = await json(await post('SELECT * FROM orders WHERE customer_id = 8'))
    for (const [body, key] of [
      [one, '7'],
      [other, '8'],
    ] as const) {
      assert.equal(body.decision.shard.source, 'statement')
      assert.equal(body.decision.shard.key, key)
      assert.match(body.summary, new RegExp(`shard=${body.decision.shard.shard} \\(statement key ${key}\\)`))
    }
    const cross = await json(await post('SELECT count(*) FROM orders'))
    assert.equal(cross.decision.target, 'federated')
    assert.equal(cross.decision.shard.shard, '@aggregate')
  })

  it('explain answers a refusal with its SQLSTATE instead of failing', async () => {
    const res = await post('DELETE FROM orders')
    assert.equal(res.status, 200)
    const body = await json(res)
    assert.equal(body.refused.sqlstate, 'ZF003')
    assert.match(body.refused.message, /orders\.customer_id/)
  })

  it('topology lists the shards with their primaries and the routing map version; readyz is 503 while no primary is healthy', async () => {
    const topo = await json(
      await fetch(`${admin.url}/api/v1/topology`, { headers: { authorization: `Bearer ${TOKEN}` } }),
    )
    assert.deepEqual(
      topo.shards.map((s: { name: string; primary: string; nodes: string[] }) => [
        s.name,
        s.primary,
        s.nodes,
      ]),
      [
        ['shard_0', 's0_primary', ['s0_primary', 's0_replica_1']],
        ['shard_1', 's1_primary', ['s1_primary']],
        ['@aggregate', 'federated', ['federated']],
      ],
    )
    assert.equal(topo.routing_map_version, 1)
    assert.equal(topo.nodes.find((n: { name: string }) => n.name === 's1_primary').shard, 'shard_1')
    // never started: no primary is healthy, so not ready
    const ready = await fetch(`${admin.url}/readyz`, { headers: { authorization: `Bearer ${TOKEN}` } })
    assert.equal(ready.status, 503)
  })
})
