// Replica discovery against a local HTTP endpoint: good answers in replace and extend mode, garbage,
// invalid payloads and timeouts keep the last good list until fallback_cache_ttl_ms, then it is dropped.

import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { ReplicaDiscovery } from '../../../src/backend/discovery.js'
import { Classifier } from '../../../src/core/classify/classifier.js'
import { validateConfig } from '../../../src/core/config/parse-config.js'
import { RoutingEngine } from '../../../src/routing/routing-engine.js'
import { eventually } from '../../support/eventually.js'

type Mode =
  | { kind: 'json'; body: unknown }
  | { kind: 'raw'; body: string; status?: number }
  | { kind: 'hang' }

describe('replica discovery', () => {
  let server: Server
  let endpoint: string
  let mode: Mode = { kind: 'json', body: { replicas: [] } }
  let requests = 0
  let lastAuthorization: string | undefined

  before(async () => {
    await Classifier.loadParser()
    server = createServer((req, res) => {
      requests++
      lastAuthorization = req.headers.authorization
      if (mode.kind === 'hang') return // never answers: the client must time out
      res.writeHead(mode.kind === 'raw' ? (mode.status ?? 200) : 200, { 'content-type': 'application/json' })
      res.end(mode.kind === 'json' ? JSON.stringify(mode.body) : mode.body)
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/replicas`
  })
  after(() => {
    server.closeAllConnections()
    server.close()
  })

  const engineWith = (discoveryMode: 'replace' | 'extend', ttl = 1000) =>
    new RoutingEngine(
      validateConfig({
        cluster: {
          primary: { name: 'primary', url: 'postgres://127.0.0.1:1/x' },
          replicas: [{ name: 'static_1', url: 'postgres://127.0.0.1:2/x' }],
          discovery: { endpoint, refresh_interval_ms: 200, fallback_cache_ttl_ms: ttl, mode: discoveryMode },
        },
      }),
    )
  const names = (engine: RoutingEngine) => engine.tracker.nodes().map((n) => n.name)
  const good = {
    replicas: [
      { name: 'r_a', url: 'postgres://10.0.0.1/main', zone: 'eu-1' },
      { name: 'r_b', url: 'postgres://10.0.0.2/main', weight: 50 },
    ],
  }

  it('replace mode: garbage, invalid payloads and timeouts keep the last good list until the TTL, then drop it', async () => {
    let now = 1_000_000
    const engine = engineWith('replace', 1000)
    const configEvents: number[] = []
    engine.on('config', (c) => configEvents.push(c.version))
    const discovery = new ReplicaDiscovery(engine, { now: () => now })

    mode = { kind: 'json', body: good }
    let state = await discovery.refresh()
    assert.equal(state.status, 'ok')
    assert.deepEqual(names(engine), ['primary', 'r_a', 'r_b'])
    assert.equal(engine.tracker.nodes().find((n) => n.name === 'r_b')!.weight, 50)
    assert.ok(configEvents.length >= 1, 'pools hear about the new nodes')

    for (const [bad, why] of [
      [{ kind: 'raw', body: '<html>oops' }, /not JSON/],
      [{ kind: 'json', body: { replicas: [{ name: 'x' }] } }, /replicas\[0\]\.url/],
      [{ kind: 'json', body: { replicas: [], extra: 1 } }, /extra/],
      [{ kind: 'json', body: { replicas: [good.replicas[0], good.replicas[0]] } }, /duplicate/],
      [{ kind: 'json', body: { replicas: [{ name: 'primary', url: 'postgres://x/y' }] } }, /primary name/],
      [{ kind: 'raw', body: 'fail', status: 503 }, /HTTP 503/],
    ] as [Mode, RegExp][]) {
      mode = bad
      now += 100
      state = await discovery.refresh()
      assert.equal(state.status, 'stale', `${JSON.stringify(bad)}`)
      assert.match(state.lastError!, why)
      assert.deepEqual(names(engine), ['primary', 'r_a', 'r_b'], 'last good list kept')
    }

    mode = { kind: 'hang' }
    now += 100
    const started = Date.now()
    state = await discovery.refresh()
    assert.ok(Date.now() - started < 2000, 'the timeout is bounded by refresh_interval_ms')
    assert.match(state.lastError!, /no answer within 200 ms/)
    assert.equal(state.status, 'stale')

    now += 1000 // past fallback_cache_ttl_ms since the last success
    state = await discovery.refresh()
    assert.equal(state.status, 'expired')
    assert.deepEqual(
      names(engine),
      ['primary', 'static_1'],
      'discovered replicas dropped; only what the config lists',
    )

    mode = { kind: 'json', body: { replicas: [good.replicas[1]] } }
    state = await discovery.refresh()
    assert.equal(state.status, 'ok')
    assert.deepEqual(names(engine), ['primary', 'r_b'], 'recovered')
    discovery.stop()
  })

  it('extend mode keeps the static replicas; the list survives a reload; polling runs on its timer', async () => {
    const engine = engineWith('extend')
    mode = {
      kind: 'json',
      body: { replicas: [...good.replicas, { name: 'static_1', url: 'postgres://other/x' }] },
    }
    const discovery = new ReplicaDiscovery(engine)
    const before = requests
    discovery.start()
    try {
      await eventually('polled at least twice', () => requests >= before + 2, 5000, 20)
      assert.deepEqual(names(engine), ['primary', 'static_1', 'r_a', 'r_b'])
      assert.equal(engine.tracker.nodes().find((n) => n.name === 'static_1')!.url, 'postgres://127.0.0.1:2/x')
      engine.reload(validateConfig({ ...engine.config, version: 2 }))
      assert.deepEqual(
        names(engine),
        ['primary', 'static_1', 'r_a', 'r_b'],
        'discovered replicas survive a reload',
      )
    } finally {
      discovery.stop()
    }
  })

  it('endpoint credentials go in a Basic header, never in state or errors; stop() aborts a request in flight', async () => {
    const port = (server.address() as AddressInfo).port
    const withCredentials = `http://disco:p%40ss-w0rd@127.0.0.1:${port}/replicas?token=tok-123`
    const engine = new RoutingEngine(
      validateConfig({
        cluster: {
          primary: { name: 'primary', url: 'postgres://127.0.0.1:1/x' },
          discovery: { endpoint: withCredentials, refresh_interval_ms: 1000 },
        },
      }),
    )
    const discovery = new ReplicaDiscovery(engine)
    mode = { kind: 'json', body: good }
    const state = await discovery.refresh()
    assert.equal(state.status, 'ok')
    assert.equal(lastAuthorization, `Basic ${Buffer.from('disco:p@ss-w0rd').toString('base64')}`)
    assert.equal(state.endpoint, `http://disco:***@127.0.0.1:${port}/replicas?token=***`)

    mode = { kind: 'raw', body: 'nope', status: 500 }
    const failed = await discovery.refresh()
    assert.equal(failed.status, 'stale')
    const shown = JSON.stringify(failed)
    assert.ok(!shown.includes('p%40ss-w0rd') && !shown.includes('tok-123'), shown)

    // a hanging endpoint: stop() aborts at once, and the late failure is neither applied nor logged
    mode = { kind: 'hang' }
    const logs: string[] = []
    engine.on('log', (_level, message) => logs.push(message))
    discovery.start()
    const seen = requests
    await eventually('a request in flight', () => requests !== seen, 2000, 10)
    const stopped = Date.now()
    discovery.stop()
    await discovery.refresh().catch(() => {})
    assert.ok(Date.now() - stopped < 500, 'the request in flight was aborted')
    assert.deepEqual(logs, [])
    assert.deepEqual(names(engine), ['primary', 'r_a', 'r_b'], 'the last good list stays')
  })
})
