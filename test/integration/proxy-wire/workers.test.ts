// proxy.workers: 2 against a real primary + 2 replicas: clients spread over two worker processes on one
// port, one set of probes per node for the whole proxy, reads routed by freshness in both workers
// (a paused replica is avoided), read-your-writes with every replica paused, one admin API whose
// decisions and metrics cover both workers, a cancel that reaches the other worker, and a clean stop.

import assert from 'node:assert/strict'
import { connect as netConnect } from 'node:net'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { type RunningProxy, startProxy } from '../../../src/cli/proxy.js'
import { validateConfig } from '../../../src/core/config/parse-config.js'
import { RoutingEngine } from '../../../src/routing/routing-engine.js'
import { type LocalCluster, startCluster } from '../../cluster/index.js'
import { configFor, nodeByPort } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'

const PORT = 'SELECT inet_server_port() AS port'

describe('proxy.workers: 2', () => {
  let cluster: LocalCluster
  let running: RunningProxy
  let nodeOf: (port: number) => string
  const clients: pg.Client[] = []

  const connect = async () => {
    const [host, port] = [
      running.address.slice(0, running.address.lastIndexOf(':')),
      running.address.split(':').pop(),
    ]
    const c = new pg.Client({ host, port: Number(port), user: 'postgres', database: 'freshet' })
    await c.connect()
    clients.push(c)
    return c
  }
  const servedBy = async (c: pg.Client, sql: string) => nodeOf(Number((await c.query(sql)).rows[0].port))
  const admin = (path: string) => fetch(running.adminUrl! + path)
  const monitorSessions = async (node: string) =>
    Number(
      (
        await cluster.query<{ n: string }>(
          node,
          "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'freshet-monitor'",
        )
      ).rows[0]!.n,
    )

  before(async () => {
    cluster = await startCluster({ replicas: 2 })
    nodeOf = nodeByPort(cluster)
    await cluster.query('primary', 'CREATE TABLE w (id int PRIMARY KEY)')
    const config = validateConfig(
      configFor(cluster, {
        proxy: { listen: '127.0.0.1:0', auth: { type: 'trust' }, workers: 2 },
        admin: { listen: '127.0.0.1:0' },
        consistency: { max_wait_for_sync_ms: 300 },
        telemetry: { log_level: 'silent', log_sampling_rate: 1 },
      }),
    )
    running = await startProxy({ engine: new RoutingEngine(config), adminListen: '127.0.0.1:0' })
  })

  after(async () => {
    for (const c of clients) await c.end().catch(() => {})
    await cluster?.resumeReplay('replica_1').catch(() => {})
    await cluster?.resumeReplay('replica_2').catch(() => {})
    await running?.stop()
    await cluster?.stop()
  })

  it('runs two worker processes and spreads clients over both', async () => {
    assert.equal(running.proxy, null)
    const pids = running.workers!.pids()
    assert.equal(pids.length, 2)
    assert.equal(new Set(pids).size, 2)
    assert.ok(!pids.includes(process.pid))
    for (let i = 0; i < 6; i++) {
      const c = await connect()
      assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1)
    }
    // node:cluster hands connections out in turn: each worker opened server connections of its own
    await eventually('both workers report server connections', () => {
      const byWorker = running.workers!.poolStatsByWorker()
      return byWorker.length === 2 && byWorker.every((w) => Object.values(w).some((s) => s.total > 0))
    })
  })

  it('probes each node once for the whole proxy, not once per worker', async () => {
    for (const node of ['primary', 'replica_1', 'replica_2'])
      assert.equal(await monitorSessions(node), 1, node)
  })

  it('routes by freshness in every worker: a paused replica gets no near_rt reads', async () => {
    await cluster.pauseReplay('replica_1')
    const writer = setInterval(
      () =>
        void cluster
          .query('primary', 'SELECT pg_logical_emit_message(false, $1, $2)', ['w', 'x'])
          .catch(() => {}),
      20,
    )
    try {
      // replica_1 falls over near_rt's 500 ms bound: from then on no client in either worker reads there
      await eventually(
        'replica_1 lagging',
        async () => {
          const topo = (await (await admin('/api/v1/topology')).json()) as {
            nodes: { name: string; lag_ms: number | null }[]
          }
          return (topo.nodes.find((n) => n.name === 'replica_1')?.lag_ms ?? 0) > 1000
        },
        20_000,
      )
      const served = new Map<string, number>()
      for (let round = 0; round < 5; round++)
        for (const c of clients) {
          const node = await servedBy(c, `/* FRESHNESS: NEAR_RT */ ${PORT}`)
          served.set(node, (served.get(node) ?? 0) + 1)
        }
      assert.equal(served.get('replica_1'), undefined, JSON.stringify([...served]))
      assert.ok((served.get('replica_2') ?? 0) > 0, JSON.stringify([...served]))
    } finally {
      clearInterval(writer)
    }
  })

  it('reads its own writes in both workers while every replica is paused', async () => {
    await cluster.pauseReplay('replica_2')
    for (const [i, c] of clients.entries()) {
      await c.query('INSERT INTO w VALUES ($1)', [i])
      const r = await c.query(
        `/* FRESHNESS: EVENTUAL */ SELECT count(*)::int AS n, ${PORT.slice(7)} FROM w WHERE id = $1`,
        [i],
      )
      assert.equal(r.rows[0].n, 1)
      assert.equal(nodeOf(Number(r.rows[0].port)), 'primary')
    }
    await cluster.resumeReplay('replica_1')
    await cluster.resumeReplay('replica_2')
    // once replicas replay again, a worker asks the primary process for fresh readings and may use them
    for (const [i, c] of clients.entries()) {
      await c.query('INSERT INTO w VALUES ($1)', [100 + i])
      const r = await c.query('/* FRESHNESS: EVENTUAL */ SELECT count(*)::int AS n FROM w WHERE id = $1', [
        100 + i,
      ])
      assert.equal(r.rows[0].n, 1)
    }
  })

  it('has one admin API: decisions and metrics cover both workers', async () => {
    const decisions = (await (await admin('/api/v1/decisions?limit=1000')).json()) as
      | { decisions?: unknown[] }
      | unknown[]
    const list = Array.isArray(decisions) ? decisions : (decisions.decisions ?? [])
    assert.ok(list.length >= clients.length * 5, `decisions: ${list.length}`)
    const text = await (await admin('/metrics')).text()
    const total = text
      .split('\n')
      .filter((l) => l.startsWith('routing_decisions_total{'))
      .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0)
    // every statement above was decided in a worker; the sum is over both
    assert.ok(total >= clients.length * 9, `routing_decisions_total ${total}`)
    // topology metrics once per node, from the process that probes (not summed over workers)
    const healthy = text.split('\n').filter((l) => l.startsWith('freshet_node_healthy{'))
    assert.equal(healthy.length, 3, healthy.join('\n'))
    assert.ok(
      healthy.every((l) => l.endsWith(' 1')),
      healthy.join('\n'),
    )
    assert.match(text, /^config_version 1$/m)
    const idle = text
      .split('\n')
      .filter((l) => l.startsWith('pool_connections{') && l.includes('state="idle"'))
      .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0)
    const byWorker = running.workers!.poolStatsByWorker()
    const reported = byWorker.reduce((sum, w) => sum + Object.values(w).reduce((n, s) => n + s.idle, 0), 0)
    assert.ok(idle > 0 && byWorker.every((w) => Object.values(w).some((s) => s.total > 0)), `idle ${idle}`)
    assert.ok(Math.abs(idle - reported) <= 2, `pool gauges summed over the workers: ${idle} vs ${reported}`)
    // the dashboard's decision counts too
    const stats = (await (await admin('/api/v1/stats')).json()) as { decisions: { count: number }[] }
    assert.equal(
      stats.decisions.reduce((n, d) => n + d.count, 0),
      total,
    )
  })

  it('cancels a statement whose session lives in the other worker', async () => {
    const port = Number(running.address.split(':').pop())
    const tcp = (payload: Buffer | null) =>
      new Promise<void>((resolve, reject) => {
        const s = netConnect(port, '127.0.0.1', () => (payload ? s.end(payload) : s.end()))
        s.on('close', () => resolve()).on('error', reject)
      })
    // Clients alternate over the workers, and so do the cancel connections; one connection in between
    // shifts the pairing, so of clients 0-3 two are cancelled by their own worker and two by the other.
    for (const [i, c] of clients.slice(0, 4).entries()) {
      // the rejection is awaited from the start: the cancel may land before the cancel socket closes
      const slow = assert.rejects(
        c.query(`SELECT pg_sleep(30), ${i}`),
        /canceling statement due to user request/,
      )
      await eventually('the sleep runs', async () => {
        const r = await cluster.query<{ n: string }>(
          'primary',
          "SELECT count(*) AS n FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%' AND state = 'active'",
        )
        return Number(r.rows[0]!.n) === 1
      })
      if (i === 2) await tcp(null)
      const key = c as unknown as { processID: number; secretKey: number }
      const req = Buffer.alloc(16)
      req.writeInt32BE(16, 0)
      req.writeInt32BE(80877102, 4)
      req.writeInt32BE(key.processID, 8)
      req.writeInt32BE(key.secretKey, 12)
      await tcp(req)
      await slow
    }
  })

  it('passes emergency controls set on the admin API to every worker', async () => {
    const post = (body: object) =>
      fetch(`${running.adminUrl}/api/v1/controls`, { method: 'POST', body: JSON.stringify(body) })
    assert.equal((await post({ route_all_to_primary: true })).status, 200)
    try {
      await eventually('every client reads from the primary', async () => {
        for (const c of clients)
          if ((await servedBy(c, `/* FRESHNESS: EVENTUAL */ ${PORT}`)) !== 'primary') return false
        return true
      })
    } finally {
      assert.equal((await post({ route_all_to_primary: false })).status, 200)
    }
    await eventually('replicas serve again', async () => {
      for (const c of clients)
        if ((await servedBy(c, `/* FRESHNESS: EVENTUAL */ ${PORT}`)) !== 'primary') return true
      return false
    })
  })

  it('stops every worker', async () => {
    const pids = running.workers!.pids()
    for (const c of clients.splice(0)) await c.end().catch(() => {})
    await running.stop()
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/)
    running = undefined as unknown as RunningProxy
  })
})
