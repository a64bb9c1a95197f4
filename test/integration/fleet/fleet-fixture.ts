// A fleet for the fleet tests: a real PostgreSQL primary + replica, a real 3-member etcd cluster and
// three freshet instances (two proxies started from config files, one library pool), each with its
// own config state. proxy_b reaches etcd only through fault relays, so a test can cut it off.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { type RunningProxy, startProxy } from '../../../src/cli/proxy.js'
import { FleetSchema } from '../../../src/core/config/fleet-schema.js'
import type { FreshetConfigInput } from '../../../src/core/config/schema.js'
import { openFleetEtcd } from '../../../src/fleet/etcd-client.js'
import type { FleetMember } from '../../../src/fleet/fleet-member.js'
import { FleetStore } from '../../../src/fleet/fleet-store.js'
import { createPool, type FreshetPool } from '../../../src/index.js'
import {
  type EtcdCluster,
  type FaultRelay,
  type LocalCluster,
  startCluster,
  startEtcdCluster,
  startFaultRelay,
} from '../../cluster/index.js'
import { configFor } from '../../support/cluster-config.js'

/** How often each instance reads the fleet (flags, proposals, commits) in these tests. */
export const EVAL_INTERVAL_MS = 300

export interface FleetFixture {
  readonly cluster: LocalCluster
  readonly etcd: EtcdCluster
  readonly dir: string
  readonly prefix: string
  readonly a: RunningProxy
  readonly b: RunningProxy
  readonly c: FreshetPool
  /** proxy_b's relays to the etcd members (one each). */
  readonly relays: readonly FaultRelay[]
  /** A client of the test's own, for proposals and assertions. */
  readonly store: FleetStore
  /** Log lines each instance emitted, by instance id. */
  readonly logs: Record<string, { level: string; message: string; fields?: Record<string, unknown> }[]>
  /** The members of proxy_a, proxy_b and library_c. */
  members(): FleetMember[]
  /** Running config versions of proxy_a, proxy_b, library_c. */
  versions(): number[]
  /** The fleet-wide config document at `version` (what `config push` sends), merged with `patch`. */
  documentAt(version: number, patch?: Record<string, unknown>): Record<string, unknown>
  /** A `fleet` section for this fleet (endpoints: the etcd members directly). */
  fleetSection(instance: string, extra?: Record<string, unknown>): Record<string, unknown>
  /** inet_server_port() of a statement run through an instance. */
  serverPort(face: 'a' | 'b' | 'c', sql?: string): Promise<number>
  stop(): Promise<void>
}

/** Starts the servers and the three instances; each joins the fleet before its engine starts. */
export async function startFleet(): Promise<FleetFixture> {
  const [cluster, etcd] = await Promise.all([startCluster({ replicas: 1 }), startEtcdCluster({ members: 3 })])
  await cluster.waitForCatchUp()
  const dir = mkdtempSync(join(tmpdir(), 'freshet-fleet-test-'))
  const prefix = `/freshet/test-${process.pid}-${Date.now()}`
  const relays = await Promise.all(etcd.members.map((m) => startFaultRelay({ target: () => m.clientPort })))
  const fleetSection = (instance: string, extra: Record<string, unknown> = {}) => ({
    etcd: { endpoints: etcd.endpoints, prefix, request_timeout_ms: 500, dial_timeout_ms: 1000 },
    instance,
    quorum: 'majority',
    ack_timeout_ms: 5000,
    lease_ttl_s: 3,
    cache_file: join(dir, `${instance}.cache.json`),
    flags: { eval_interval_ms: EVAL_INTERVAL_MS },
    ...extra,
  })
  const documentAt = (version: number, patch: Record<string, unknown> = {}) =>
    configFor(cluster, {
      version,
      proxy: { listen: '127.0.0.1:0', auth: { type: 'scram-sha-256', users: { app: { password: 'app' } } } },
      admin: { listen: '127.0.0.1:0' },
      // the instances read eventual reads from the replica: a config change is observable in routing
      routing: { unannotated: 'eventual' },
      ...patch,
    }) as Record<string, unknown>
  const logs: FleetFixture['logs'] = { proxy_a: [], proxy_b: [], library_c: [] }
  const file = (name: string, config: FreshetConfigInput) => {
    const path = join(dir, `${name}.json`)
    writeFileSync(path, JSON.stringify(config))
    return path
  }
  const a = await startProxy({
    configPath: file('proxy_a', { ...documentAt(1), fleet: fleetSection('proxy_a') } as FreshetConfigInput),
  })
  const b = await startProxy({
    configPath: file('proxy_b', {
      ...documentAt(1),
      fleet: fleetSection('proxy_b', {
        etcd: {
          endpoints: relays.map((r) => `http://127.0.0.1:${r.port}`),
          prefix,
          request_timeout_ms: 500,
          dial_timeout_ms: 1000,
        },
      }),
    } as FreshetConfigInput),
  })
  // the library instance runs without FLEET_TEST_SECRET in its environment (a test makes it refuse)
  const env = { ...process.env }
  delete env.FLEET_TEST_SECRET
  const c = createPool({ ...documentAt(1), fleet: fleetSection('library_c') } as FreshetConfigInput, { env })
  await c.ready()
  a.engine.on('log', (level, message, fields) =>
    logs.proxy_a!.push({ level, message, ...(fields ? { fields } : {}) }),
  )
  b.engine.on('log', (level, message, fields) =>
    logs.proxy_b!.push({ level, message, ...(fields ? { fields } : {}) }),
  )
  c.on('log', (level: string, message: string, fields?: Record<string, unknown>) =>
    logs.library_c!.push({ level, message, ...(fields ? { fields } : {}) }),
  )
  const store = new FleetStore(
    openFleetEtcd(FleetSchema.parse({ etcd: { endpoints: etcd.endpoints, prefix } })),
  )
  const clients = new Map<string, pg.Client>()
  const proxyClient = async (p: RunningProxy) => {
    let client = clients.get(p.address)
    if (!client) {
      client = new pg.Client({ connectionString: `postgres://app:app@${p.address}/freshet` })
      await client.connect()
      clients.set(p.address, client)
    }
    return client
  }
  return {
    cluster,
    etcd,
    dir,
    prefix,
    a,
    b,
    c,
    relays,
    store,
    logs,
    members: () => [a.fleet!, b.fleet!, c.fleet!],
    versions: () => [a.engine.config.version, b.engine.config.version, c.engine.config.version],
    documentAt,
    fleetSection,
    serverPort: async (face, sql = 'SELECT inet_server_port() AS port') => {
      const run = face === 'c' ? c : await proxyClient(face === 'a' ? a : b)
      const { rows } = await run.query(sql)
      return Number((rows[0] as { port: number }).port)
    },
    stop: async () => {
      for (const client of clients.values()) await client.end().catch(() => {})
      await Promise.allSettled([a.stop(), b.stop(), c.end()])
      store.etcd.close()
      await Promise.allSettled(relays.map((r) => r.close()))
      await Promise.allSettled([etcd.stop(), cluster.stop()])
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
