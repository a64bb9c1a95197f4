// The harness against real servers: streaming, paused replay, apply delay, lag readings, kill -9.

import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { eventually } from '../support/eventually.js'
import { exists, processesUnder } from '../support/processes.js'
import { type LocalCluster, startCluster } from './index.js'

describe('local cluster: replication', () => {
  let cluster: LocalCluster

  before(async () => {
    cluster = await startCluster({ replicas: 2 })
    await cluster.query('primary', 'CREATE TABLE items (id int PRIMARY KEY, label text)')
  })
  after(async () => {
    await cluster?.stop()
  })

  test('names, ports and urls follow the contract', () => {
    assert.deepEqual(
      cluster.nodes.map((n) => n.name),
      ['primary', 'replica_1', 'replica_2'],
    )
    assert.equal(cluster.primary.name, 'primary')
    assert.deepEqual(
      cluster.replicas.map((n) => n.name),
      ['replica_1', 'replica_2'],
    )
    const ports = new Set(cluster.nodes.map((n) => n.port))
    assert.equal(ports.size, 3)
    for (const node of cluster.nodes) {
      assert.equal(node.host, '127.0.0.1')
      assert.ok(node.pid && exists(node.pid), `${node.name} runs`)
      assert.ok(node.dataDir.startsWith(cluster.root))
    }
    const r1 = cluster.node('replica_1')
    assert.equal(r1.url(), `postgres://postgres@127.0.0.1:${r1.port}/freshet`)
    assert.equal(r1.url('app', 'postgres'), `postgres://app:app@127.0.0.1:${r1.port}/postgres`)
    assert.throws(() => cluster.node('replica_9'), /no node 'replica_9'/)
  })

  test('a row written on the primary is read on each replica', async () => {
    await cluster.query('primary', "INSERT INTO items VALUES (1, 'streamed')")
    await cluster.waitForCatchUp(10_000)
    for (const replica of cluster.replicas) {
      const { rows } = await cluster.query(replica.name, 'SELECT label FROM items WHERE id = 1')
      assert.deepEqual(rows, [{ label: 'streamed' }], replica.name)
      const { rows: rec } = await cluster.query(replica.name, 'SELECT pg_is_in_recovery() AS r')
      assert.equal(rec[0]?.r, true)
      assert.equal(await cluster.lagBytes(replica.name), 0)
    }
  })

  test('paused replay keeps a replica behind until resumed', async () => {
    await cluster.pauseReplay('replica_1')
    try {
      await cluster.query('primary', "INSERT INTO items SELECT g, 'paused' FROM generate_series(100, 1099) g")
      const lsn = await cluster.currentLsn()
      await cluster.waitForReplay('replica_2', lsn, 10_000)
      await assert.rejects(cluster.waitForReplay('replica_1', lsn, 300), /timed out/)
      assert.ok((await cluster.lagBytes('replica_1')) > 0, 'replica_1 reports lag in bytes')
      const { rows } = await cluster.query(
        'replica_1',
        'SELECT count(*)::int AS n FROM items WHERE id >= 100',
      )
      assert.equal(rows[0]?.n, 0)
    } finally {
      await cluster.resumeReplay('replica_1')
    }
    await cluster.waitForCatchUp(10_000)
    const { rows } = await cluster.query('replica_1', 'SELECT count(*)::int AS n FROM items WHERE id >= 100')
    assert.equal(rows[0]?.n, 1000)
    assert.equal(await cluster.lagBytes('replica_1'), 0)
  })

  test('an apply delay makes a replica lag by about that long', async () => {
    await cluster.setApplyDelay('replica_2', 1500)
    try {
      const started = Date.now()
      await cluster.query('primary', "INSERT INTO items VALUES (2, 'delayed')")
      const lsn = await cluster.currentLsn()
      await cluster.waitForReplay('replica_1', lsn, 10_000)
      const { rows } = await cluster.query('replica_2', 'SELECT count(*)::int AS n FROM items WHERE id = 2')
      assert.equal(rows[0]?.n, 0, 'not visible before the delay')
      await cluster.waitForReplay('replica_2', lsn, 10_000)
      assert.ok(Date.now() - started >= 1400, `replayed after ${Date.now() - started} ms`)
    } finally {
      await cluster.setApplyDelay('replica_2', 0)
    }
  })

  test('kill -9 of a replica leaves no process of that node, and it starts again', async () => {
    const node = cluster.node('replica_2')
    const pid = node.pid!
    assert.ok(processesUnder(node.dataDir).length > 1, 'postmaster and its children run in the data dir')
    await cluster.kill('replica_2')
    assert.equal(node.pid, null)
    assert.equal(exists(pid), false)
    assert.equal(exists(-pid), false, 'its process group is gone')
    assert.deepEqual(processesUnder(node.dataDir), [])
    assert.ok(existsSync(node.dataDir), 'the data dir stays for a restart')

    await cluster.query('primary', "INSERT INTO items VALUES (3, 'after crash')")
    await cluster.start('replica_2')
    assert.ok(node.pid && node.pid !== pid)
    await cluster.waitForCatchUp(15_000)
    const { rows } = await cluster.query('replica_2', 'SELECT label FROM items WHERE id = 3')
    assert.deepEqual(rows, [{ label: 'after crash' }])
  })

  test('the password roles authenticate with their own methods', async () => {
    const pg = (await import('pg')).default
    for (const user of ['app', 'app_md5', 'app_pw']) {
      const client = new pg.Client({ connectionString: cluster.node('replica_1').url(user) })
      await client.connect()
      const { rows } = await client.query('SELECT current_user AS u')
      await client.end()
      assert.equal(rows[0]?.u, user)
      const wrong = new pg.Client({
        connectionString: cluster.primary.url(user).replace(`:${user}@`, ':nope@'),
      })
      await assert.rejects(wrong.connect(), /password authentication failed/)
    }
    const { rows } = await cluster.query<{ rolname: string; scram: boolean; md5: boolean }>(
      'primary',
      "SELECT rolname, rolpassword LIKE 'SCRAM-SHA-256$%' AS scram, rolpassword LIKE 'md5%' AS md5 FROM pg_authid WHERE rolname IN ('app', 'app_md5') ORDER BY 1",
    )
    assert.deepEqual(rows, [
      { rolname: 'app', scram: true, md5: false },
      { rolname: 'app_md5', scram: false, md5: true },
    ])
  })

  test('stop() removes everything and is idempotent', async () => {
    const extra = await startCluster({ replicas: 0 })
    const root = extra.root
    assert.ok(existsSync(root))
    await Promise.all([extra.stop(), extra.stop()])
    await extra.stop()
    assert.equal(existsSync(root), false)
    await eventually('no process left under the cluster root', () => processesUnder(root).length === 0, 5000)
  })
})
