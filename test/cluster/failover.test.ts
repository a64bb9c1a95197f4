// Promotion and repointing on a real cluster: the promoted replica takes writes, the other follows it.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type LocalCluster, startCluster } from './index.js'

let cluster: LocalCluster

before(async () => {
  cluster = await startCluster({ replicas: 2 })
})
after(async () => {
  await cluster?.stop()
})

test('promote makes a replica the writable primary and repoint makes the other follow it', async () => {
  await cluster.query('primary', 'CREATE TABLE events (id int PRIMARY KEY, at text)')
  await cluster.query('primary', "INSERT INTO events VALUES (1, 'before failover')")
  await cluster.waitForCatchUp(10_000)
  await assert.rejects(
    cluster.query('replica_1', "INSERT INTO events VALUES (99, 'no')"),
    /read-only transaction/,
  )

  await cluster.stop('primary')
  assert.equal(cluster.node('primary').pid, null)
  await cluster.promote('replica_1')
  assert.equal(cluster.primary.name, 'replica_1')
  assert.deepEqual(
    cluster.replicas.map((n) => n.name),
    ['primary', 'replica_2'],
  )
  const { rows: rec } = await cluster.query('replica_1', 'SELECT pg_is_in_recovery() AS r')
  assert.equal(rec[0]?.r, false)
  await cluster.query('replica_1', "INSERT INTO events VALUES (2, 'after failover')")

  await cluster.repoint('replica_2', 'replica_1')
  const lsn = await cluster.currentLsn()
  await cluster.waitForReplay('replica_2', lsn, 15_000)
  // It streams the old timeline up to the switch point first: check once it replayed past it.
  const { rows: wr } = await cluster.query(
    'replica_2',
    'SELECT sender_port, received_tli FROM pg_stat_wal_receiver',
  )
  assert.equal(wr[0]?.sender_port, cluster.node('replica_1').port)
  assert.equal(wr[0]?.received_tli, 2, 'follows the new timeline')
  const { rows } = await cluster.query('replica_2', 'SELECT id, at FROM events ORDER BY id')
  assert.deepEqual(rows, [
    { id: 1, at: 'before failover' },
    { id: 2, at: 'after failover' },
  ])
  // waitForCatchUp now measures against the new primary and ignores the stopped old one.
  await cluster.query('replica_1', "INSERT INTO events VALUES (3, 'later')")
  await cluster.waitForCatchUp(10_000)
  assert.equal(await cluster.lagBytes('replica_2'), 0)
})
