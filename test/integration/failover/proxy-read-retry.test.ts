// The proxy (started as the CLI starts it, with its admin API) when a replica's server connection dies
// under a running read: the read moves to the primary before any of its answer reached the client, the
// client sees a normal result, and /metrics counts the backend error and the failover.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { type RunningProxy, startProxy } from '../../../src/cli/proxy.js'
import { parseConfig } from '../../../src/core/config/parse-config.js'
import { createPool } from '../../../src/index.js'
import { RoutingEngine } from '../../../src/routing/routing-engine.js'
import { type LocalCluster, startCluster } from '../../cluster/index.js'
import { configFor, nodeByPort, poolReady } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'

const SLOW_READ =
  '/* FRESHNESS: EVENTUAL */ SELECT inet_server_port() AS port, true AS slept FROM pg_sleep(0.8)'

describe('proxy: a read whose replica dies moves to the primary', () => {
  let cluster: LocalCluster
  let running: RunningProxy
  let nodeOf: (port: number) => string

  /** One sample of a metric from the proxy's /metrics, or 0 when absent. */
  async function metric(name: string): Promise<number> {
    const text = await (await fetch(`${running.adminUrl}/metrics`)).text()
    const line = text.split('\n').find((l) => l.startsWith(name))
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0
  }

  /** Runs `fn` once the slow read is executing on replica_1, and returns what the client got. */
  async function readWhile(
    fn: () => Promise<void>,
    sql = SLOW_READ,
    run?: (sql: string) => Promise<{ port: number; slept: boolean }[]>,
  ): Promise<{ node: string; slept: boolean }> {
    const client = new pg.Client({ connectionString: `postgres://app:app@${running.address}/freshet` })
    await client.connect()
    try {
      const read = run ? run(sql) : client.query(sql).then((r) => r.rows)
      await eventually('the read runs on replica_1', async () => {
        const res = await cluster.query(
          'replica_1',
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE '%pg_sleep(0.8)%' AND state = 'active' AND pid <> pg_backend_pid()",
        )
        return res.rows[0]?.n === 1
      })
      await fn()
      const rows = await read
      return { node: nodeOf(Number(rows[0]!.port)), slept: rows[0]!.slept }
    } finally {
      await client.end()
    }
  }

  before(async () => {
    cluster = await startCluster({ replicas: 1 })
    nodeOf = nodeByPort(cluster)
    const config = configFor(cluster, {
      proxy: { listen: '127.0.0.1:0', auth: { type: 'scram-sha-256', users: { app: { password: 'app' } } } },
      admin: { listen: '127.0.0.1:0' },
      // pg_sleep is volatile: without this the slow read would go to the primary
      routing: { read_only_functions: ['pg_sleep'] },
    })
    const engine = new RoutingEngine(parseConfig(JSON.stringify(config)))
    running = await startProxy({ engine, listen: '127.0.0.1:0', adminListen: '127.0.0.1:0' })
    await eventually('the replica has a lag reading', () =>
      engine.snapshot().every((n) => n.role === 'primary' || (n.healthy && n.lag_ms !== null)),
    )
  })

  after(async () => {
    await running?.stop()
    await cluster?.stop()
  })

  it('reports the routing latency of every statement', async () => {
    const before = await metric('proxy_routing_latency_seconds_count')
    const client = new pg.Client({ connectionString: `postgres://app:app@${running.address}/freshet` })
    await client.connect()
    for (let i = 0; i < 5; i++) await client.query('SELECT 1')
    await client.end()
    assert.ok((await metric('proxy_routing_latency_seconds_count')) >= before + 5)
  })

  it('when the replica terminates the backend (FATAL 57P01 then close)', async () => {
    const [errors, failovers] = await Promise.all([
      metric('proxy_backend_errors_total{backend="replica_1"}'),
      metric('proxy_backend_failover_total'),
    ])
    const got = await readWhile(async () => {
      await cluster.query(
        'replica_1',
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(0.8)%' AND pid <> pg_backend_pid()",
      )
    })
    assert.deepEqual(got, { node: 'primary', slept: true })
    assert.equal(await metric('proxy_backend_errors_total{backend="replica_1"}'), errors + 1)
    assert.equal(await metric('proxy_backend_failover_total'), failovers + 1)
  })

  it('when the replica cancels it for a recovery conflict (40001), through the proxy and the library', async () => {
    // the replica cancels a conflicting query at once instead of delaying replay
    await cluster.query('replica_1', 'ALTER SYSTEM SET max_standby_streaming_delay = 0')
    await cluster.query('replica_1', 'SELECT pg_reload_conf()')
    await cluster.query('primary', 'CREATE TABLE IF NOT EXISTS conflicted (id int)')
    await cluster.query('primary', 'INSERT INTO conflicted VALUES (1)')
    await cluster.waitForCatchUp()
    const conflict = async () => {
      // an ACCESS EXCLUSIVE lock replayed on the replica conflicts with the read holding ACCESS SHARE
      await cluster.query('primary', 'BEGIN; LOCK TABLE conflicted IN ACCESS EXCLUSIVE MODE; COMMIT')
    }
    const read = `${SLOW_READ}, conflicted`
    const failovers = await metric('proxy_backend_failover_total')
    const viaProxy = await readWhile(conflict, read)
    assert.deepEqual(viaProxy, { node: 'primary', slept: true })
    assert.equal(await metric('proxy_backend_failover_total'), failovers + 1)

    const pool = createPool(configFor(cluster, { routing: { read_only_functions: ['pg_sleep'] } }))
    try {
      await poolReady(pool)
      const viaLibrary = await readWhile(conflict, read, async (sql) => (await pool.query(sql)).rows)
      assert.deepEqual(viaLibrary, { node: 'primary', slept: true })
    } finally {
      await pool.end()
    }
  })

  it('when the replica is killed with SIGKILL (the socket just closes)', async () => {
    const failovers = await metric('proxy_backend_failover_total')
    const got = await readWhile(() => cluster.kill('replica_1'))
    assert.deepEqual(got, { node: 'primary', slept: true })
    assert.equal(await metric('proxy_backend_failover_total'), failovers + 1)
    await cluster.start('replica_1')
  })
})
