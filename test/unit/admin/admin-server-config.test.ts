// GET /api/v1/config, edit, PUT back: the redacted secrets (***) keep their running values instead of
// becoming the literal '***'; a placeholder with nothing to keep is refused with its key path. Controls
// changed by a reload are logged and counted like POST /api/v1/controls.

import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { type AdminServer, startAdmin } from '../../../src/admin/admin-server.js'
import { Classifier } from '../../../src/core/classify/classifier.js'
import { validateConfig } from '../../../src/core/config/parse-config.js'
import { REDACTED, redactConfig, restoreRedacted } from '../../../src/core/config/redact.js'
import { RoutingEngine } from '../../../src/routing/routing-engine.js'
import { createLogger } from '../../../src/telemetry/logger.js'

const TOKEN = 'roundtrip-admin-token'

// biome-ignore lint/suspicious/noExplicitAny: the test edits arbitrary JSON
type Json = any

function configInput() {
  return {
    version: 1,
    cluster: {
      primary: { name: 'primary', url: 'postgres://app:primary-pw@127.0.0.1:1/main' },
      replicas: [
        { name: 'replica_1', url: 'postgres://app:r1-pw@127.0.0.1:2/main' },
        { name: 'replica_2', url: 'host=127.0.0.1 port=3 user=app password=r2-pw dbname=main' },
      ],
      discovery: {
        endpoint: 'https://disco:disco-pw@127.0.0.1:4/replicas?token=disco-token',
        refresh_interval_ms: 60000,
      },
    },
    proxy: { auth: { users: { app: { password: 'app-pw' } } } },
    admin: { listen: '127.0.0.1:0', token: TOKEN },
    telemetry: { log_level: 'info' },
  }
}

const SECRETS = ['primary-pw', 'r1-pw', 'r2-pw', 'disco-pw', 'disco-token', 'app-pw', TOKEN]

describe('admin config round trip', () => {
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
    engine = new RoutingEngine(validateConfig(configInput()))
    admin = await startAdmin({
      engine,
      logger: createLogger({ log_level: 'debug' }, sink),
      extraTopology: () => ({ discovery: { endpoint: 'from-extra' } }),
    })
  })
  after(async () => {
    await admin.close()
    await engine.stop()
  })

  const call = (path: string, init: RequestInit = {}) =>
    fetch(admin.url + path, { ...init, headers: { authorization: `Bearer ${TOKEN}` } })
  const getConfig = async (): Promise<Json> => {
    const res = await call('/api/v1/config')
    assert.equal(res.status, 200)
    const text = await res.text()
    for (const secret of SECRETS) assert.ok(!text.includes(secret), `GET shows ${secret}`)
    return JSON.parse(text)
  }
  const put = (body: unknown) => call('/api/v1/config', { method: 'PUT', body: JSON.stringify(body) })

  it('GET redacts the discovery endpoint credentials too', async () => {
    const config = await getConfig()
    assert.equal(config.cluster.discovery.endpoint, 'https://disco:***@127.0.0.1:4/replicas?token=***')
    assert.equal(config.cluster.replicas[1].url, 'host=127.0.0.1 port=3 user=app password=*** dbname=main')
    assert.equal(config.admin.token, REDACTED)
    const topology = (await (await call('/api/v1/topology')).json()) as Json
    assert.equal(topology.discovery.endpoint, 'from-extra', 'extraTopology is merged')
  })

  it('a GET config edited and PUT back keeps every running secret; controls changed by it are logged and counted', async () => {
    const controls: unknown[] = []
    engine.on('controls', (c) => controls.push(c))
    const engineLogs: { message: string; fields?: Record<string, unknown> }[] = []
    engine.on('log', (_level, message, fields) => engineLogs.push({ message, ...(fields ? { fields } : {}) }))
    const config = await getConfig()
    config.version = 2
    config.controls.route_all_to_primary = true
    // edits around the placeholders: another host for replica_1, the replicas reordered
    config.cluster.replicas[0].url = 'postgres://app:***@127.0.0.9:2/main'
    config.cluster.replicas.reverse()
    const res = await put(config)
    assert.equal(res.status, 200, await res.clone().text())
    const running = engine.config
    assert.equal(running.version, 2)
    assert.equal(running.admin.token, TOKEN)
    assert.equal(running.proxy.auth.users.app!.password, 'app-pw')
    assert.equal(running.cluster.primary.url, 'postgres://app:primary-pw@127.0.0.1:1/main')
    const byName = Object.fromEntries(running.cluster.replicas.map((r) => [r.name, r.url]))
    assert.equal(byName.replica_1, 'postgres://app:r1-pw@127.0.0.9:2/main')
    assert.equal(byName.replica_2, 'host=127.0.0.1 port=3 user=app password=r2-pw dbname=main')
    assert.equal(
      running.cluster.discovery!.endpoint,
      'https://disco:disco-pw@127.0.0.1:4/replicas?token=disco-token',
    )

    assert.equal(running.controls.route_all_to_primary, true)
    assert.equal(controls.length, 1, 'the reload emitted controls once')
    const logged = engineLogs.find((l) => l.message === 'emergency controls changed')
    assert.deepEqual(logged?.fields?.changed, ['route_all_to_primary'])
    assert.equal(logged?.fields?.route_all_to_primary, true)
    const metrics = await (await call('/metrics')).text()
    assert.match(metrics, /freshet_controls_changes_total\{control="route_all_to_primary"\} 1/)
    assert.match(metrics, /freshet_config_reloads_total\{source="api",result="applied"\} 1/)
    assert.ok(!logLines.join('').includes('r1-pw'))

    // a reload that leaves the controls alone says nothing about them
    const same = await getConfig()
    same.version = 3
    assert.equal((await put(same)).status, 200)
    assert.equal(controls.length, 1)
  })

  it('a placeholder with no running value is refused with 422 (invalid, CONTRACT section 7) naming its key path; nothing applied', async () => {
    const config = await getConfig()
    config.version = 10
    config.proxy.auth.users.bob = { password: REDACTED }
    config.cluster.replicas.push({ name: 'replica_3', url: 'postgres://app:***@127.0.0.1:5/main' })
    const res = await put(config)
    assert.equal(res.status, 422)
    const body = (await res.json()) as { issues: { path: string }[] }
    assert.deepEqual(body.issues.map((i) => i.path).sort(), [
      'cluster.replicas[2].url',
      'proxy.auth.users.bob.password',
    ])
    assert.equal(engine.config.version, 3)
    assert.equal(engine.config.proxy.auth.users.bob, undefined)
    const metrics = await (await call('/metrics')).text()
    assert.match(metrics, /freshet_config_reloads_total\{source="api",result="invalid"\} 1/)
  })

  it('YAML bodies and refusals still go through the usual validation', async () => {
    const notYaml = await call('/api/v1/config', { method: 'PUT', body: '{ nope: [' })
    assert.equal(notYaml.status, 422)
    const older = await getConfig()
    older.version = 1
    assert.equal((await put(older)).status, 409)
  })
})

describe('restoreRedacted', () => {
  const running = validateConfig(configInput())

  it('restores exactly the placeholders redactConfig() wrote', () => {
    const r = restoreRedacted(redactConfig(running), running)
    assert.ok(r.ok)
    assert.deepEqual(validateConfig(r.document), running)
  })

  it('leaves values that merely contain *** alone, and real new values win', () => {
    const doc = structuredClone(redactConfig(running)) as Json
    doc.admin.token = 'new***token'
    doc.proxy.auth.users.app.password = 'brand-new'
    doc.cluster.primary.url = 'postgres://app:other@127.0.0.1:1/main'
    const r = restoreRedacted(doc, running)
    assert.ok(r.ok)
    const restored = r.document as Json
    assert.equal(restored.admin.token, 'new***token')
    assert.equal(restored.proxy.auth.users.app.password, 'brand-new')
    assert.equal(restored.cluster.primary.url, 'postgres://app:other@127.0.0.1:1/main')
  })

  it('refuses a URL placeholder when the running URL has no password', () => {
    const plain = validateConfig({
      cluster: { primary: { name: 'primary', url: 'postgres://app@127.0.0.1:1/main' } },
    })
    const r = restoreRedacted(
      { cluster: { primary: { name: 'primary', url: 'postgres://app:***@127.0.0.1:1/main' } } },
      plain,
    )
    assert.ok(!r.ok)
    assert.equal(r.issues[0]!.path, 'cluster.primary.url')
  })
})
