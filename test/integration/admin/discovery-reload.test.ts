// Replica discovery and config reloads on a real primary + 2 replicas: the config lists replica_1 only,
// a local HTTP discovery endpoint lists replica_2. createPool and startProxy both pick replica_2 up (it
// serves a ROUTE_TO read) and show discovery in GET /api/v1/topology; the proxy reloads its config file
// on change and on SIGHUP, refuses an invalid one (counted by source), and follows discovery through
// reloads.

import assert from 'node:assert/strict'
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { startAdmin } from '../../../src/admin/admin-server.js'
import { type RunningProxy, startProxy } from '../../../src/cli/proxy.js'
import { createPool } from '../../../src/index.js'
import { createLogger } from '../../../src/telemetry/logger.js'
import { type LocalCluster, startCluster } from '../../cluster/index.js'
import { configFor } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'

const WHERE = 'SELECT inet_server_port() AS port'
const ON_REPLICA_2 = `/*+ ROUTE_TO: replica_2 */ ${WHERE}`

// biome-ignore lint/suspicious/noExplicitAny: topology JSON
type Json = any

describe('replica discovery and config reloads against a real cluster', { timeout: 120_000 }, () => {
  let cluster: LocalCluster
  let discoveryServer: Server
  let endpoint: string
  let discoveryRequests = 0
  let dir: string

  before(async () => {
    cluster = await startCluster({ replicas: 2 })
    await cluster.waitForCatchUp()
    const replica2 = cluster.replicas[1]!
    discoveryServer = createServer((_req, res) => {
      discoveryRequests++
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ replicas: [{ name: replica2.name, url: replica2.url() }] }))
    })
    await new Promise<void>((r) => discoveryServer.listen(0, '127.0.0.1', r))
    endpoint = `http://127.0.0.1:${(discoveryServer.address() as AddressInfo).port}/replicas`
    dir = mkdtempSync(join(tmpdir(), 'freshet-discovery-reload-'))
  })

  after(async () => {
    discoveryServer?.closeAllConnections()
    discoveryServer?.close()
    await cluster?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  /** Static replica_1, replica_2 only from discovery (extend mode); `discovery: false` leaves it out. */
  const configAt = (version: number, options: { discovery?: boolean; controls?: object } = {}) =>
    configFor(cluster, {
      version,
      cluster: {
        primary: { name: cluster.primary.name, url: cluster.primary.url() },
        replicas: [{ name: cluster.replicas[0]!.name, url: cluster.replicas[0]!.url() }],
        ...(options.discovery === false
          ? {}
          : { discovery: { endpoint, refresh_interval_ms: 200, mode: 'extend' } }),
      },
      proxy: { listen: '127.0.0.1:0', auth: { type: 'scram-sha-256', users: { app: { password: 'app' } } } },
      admin: { listen: '127.0.0.1:0' },
      controls: options.controls ?? {},
    })
  const replica2Port = () => cluster.replicas[1]!.port
  const hasHealthy = (nodes: readonly { name: string; healthy: boolean }[], name: string) =>
    nodes.some((n) => n.name === name && n.healthy)

  it('createPool: a replica only the discovery endpoint lists serves reads; the topology shows discovery', async () => {
    const pool = createPool(configAt(1))
    try {
      await pool.ready()
      await eventually('replica_2 discovered and healthy', () => hasHealthy(pool.snapshot(), 'replica_2'))
      const { rows } = await pool.query(ON_REPLICA_2)
      assert.equal(Number(rows[0].port), replica2Port())
      assert.equal(pool.discoveryState().status, 'ok')

      const admin = await startAdmin({ pool, logger: createLogger({ log_level: 'silent' }) })
      try {
        const topology = (await (await fetch(`${admin.url}/api/v1/topology`)).json()) as Json
        assert.equal(topology.discovery.status, 'ok')
        assert.deepEqual(topology.discovery.replicas, ['replica_2'])
        assert.ok(topology.nodes.some((n: { name: string }) => n.name === 'replica_2'))
      } finally {
        await admin.close()
      }
    } finally {
      await pool.end()
    }
    // end() stopped the polling
    const after = discoveryRequests
    await new Promise((r) => setTimeout(r, 500))
    assert.equal(discoveryRequests, after, 'no polls after pool.end()')
  })

  it('createPool without cluster.discovery polls nothing', async () => {
    const before = discoveryRequests
    const pool = createPool(configAt(1, { discovery: false }))
    try {
      await pool.ready()
      assert.equal(pool.discoveryState().status, 'disabled')
      assert.ok(!pool.snapshot().some((n) => n.name === 'replica_2'))
      assert.equal(discoveryRequests, before)
    } finally {
      await pool.end()
    }
  })

  describe('startProxy from a config file', () => {
    let running: RunningProxy
    const file = () => join(dir, 'freshet.yaml')
    /** Replaces the file the way editors do (temp file, rename). */
    const writeFile = (text: string) => {
      const tmp = join(dir, `.freshet.yaml.${process.hrtime.bigint()}`)
      writeFileSync(tmp, text)
      renameSync(tmp, file())
    }
    const metrics = async () => (await fetch(`${running.adminUrl}/metrics`)).text()
    const counter = (text: string, source: string, result: string) =>
      Number(
        new RegExp(
          `^freshet_config_reloads_total\\{source="${source}",result="${result}"\\} (\\d+)$`,
          'm',
        ).exec(text)?.[1] ?? 0,
      )
    const topology = async (): Promise<Json> => (await fetch(`${running.adminUrl}/api/v1/topology`)).json()

    before(async () => {
      writeFile(JSON.stringify(configAt(1)))
      running = await startProxy({
        configPath: file(),
        listen: '127.0.0.1:0',
        adminListen: '127.0.0.1:0',
        watchDebounceMs: 50,
      })
    })
    after(async () => {
      await running?.stop()
    })

    it('picks up the discovered replica: engine snapshot, a ROUTE_TO read through the proxy, the topology', async () => {
      await eventually('replica_2 discovered and healthy', () =>
        hasHealthy(running.engine.snapshot(), 'replica_2'),
      )
      const client = new pg.Client({ connectionString: `postgres://app:app@${running.address}/freshet` })
      await client.connect()
      try {
        const { rows } = await client.query(ON_REPLICA_2)
        assert.equal(Number(rows[0].port), replica2Port())
      } finally {
        await client.end()
      }
      const t = await topology()
      assert.equal(t.discovery.status, 'ok')
      assert.equal(t.discovery.endpoint, endpoint)
      assert.deepEqual(t.discovery.replicas, ['replica_2'])
    })

    it('a changed file is applied (controls counted); an invalid one is refused by file and by SIGHUP, and counted', async () => {
      writeFile(JSON.stringify(configAt(2, { controls: { route_all_to_primary: true } })))
      await eventually('version 2 from the file', () => running.engine.config.version === 2)
      assert.equal(running.engine.config.controls.route_all_to_primary, true)
      let text = await metrics()
      assert.equal(counter(text, 'file', 'applied'), 1)
      assert.match(text, /^freshet_controls_changes_total\{control="route_all_to_primary"\} 1$/m)
      assert.ok(hasHealthy(running.engine.snapshot(), 'replica_2'), 'discovered replicas survive the reload')

      writeFile('version: 3\ncluster: [this is not a cluster\n')
      await eventually(
        'the invalid file is refused',
        async () => counter(await metrics(), 'file', 'invalid') === 1,
      )
      assert.equal(running.engine.config.version, 2)

      process.kill(process.pid, 'SIGHUP')
      await eventually(
        'SIGHUP re-reads and refuses the invalid file',
        async () => counter(await metrics(), 'sighup', 'invalid') === 1,
      )
      assert.equal(running.engine.config.version, 2)

      // an older version, asked for in code
      writeFile(JSON.stringify(configAt(1)))
      await eventually(
        'the older file is refused',
        async () => counter(await metrics(), 'file', 'version') === 1,
      )
      await assert.rejects(running.reload(), { code: 'FRESHET_CONFIG_VERSION' })
      text = await metrics()
      assert.equal(counter(text, 'file', 'version'), 2)
      assert.match(text, /^config_version 2$/m)
    })

    it('discovery follows reloads: removed from the config, its replica goes; added back, it returns', async () => {
      writeFile(JSON.stringify(configAt(3, { discovery: false })))
      await eventually('version 3 applied', () => running.engine.config.version === 3)
      await eventually(
        'replica_2 is gone',
        () => !running.engine.snapshot().some((n) => n.name === 'replica_2'),
      )
      assert.equal((await topology()).discovery.status, 'disabled')

      writeFile(JSON.stringify(configAt(4)))
      await eventually('version 4 applied', () => running.engine.config.version === 4)
      await eventually('replica_2 is back', () => hasHealthy(running.engine.snapshot(), 'replica_2'))
      assert.equal((await topology()).discovery.status, 'ok')
    })
  })
})
