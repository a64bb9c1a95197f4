// Regression: a connection reset while a library query runs crashed the process with an uncaught
// 'error' event (pg emits it on the checked-out client, which pg.Pool does not listen to).

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createPool, type FreshetPool } from '../../../src/index.js'
import { type FaultRelay, type LocalCluster, startCluster, startFaultRelay } from '../../cluster/index.js'
import { configFor } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'

describe('a replica connection reset during a query', () => {
  let cluster: LocalCluster
  let relay: FaultRelay
  let pool: FreshetPool
  const uncaught: unknown[] = []
  const onUncaught = (err: unknown) => uncaught.push(err)

  before(async () => {
    cluster = await startCluster({ replicas: 1 })
    relay = await startFaultRelay({ target: () => cluster.node('replica_1').port })
    pool = createPool(
      configFor(cluster, {
        cluster: {
          primary: { name: 'primary', url: cluster.primary.url() },
          replicas: [{ name: 'replica_1', url: `postgres://postgres@127.0.0.1:${relay.port}/freshet` }],
        },
      }),
    )
    await pool.ready()
    await eventually('replica healthy', () => pool.snapshot().every((n) => n.healthy))
    process.on('uncaughtException', onUncaught)
  })

  after(async () => {
    process.off('uncaughtException', onUncaught)
    await pool?.end()
    await relay?.close()
    await cluster?.stop()
  })

  it('fails or retries the query and does not emit an unhandled error', async () => {
    const running = pool
      .query('/*+ ROUTE_TO: replica */ SELECT pg_sleep(1.5), inet_server_port() AS port')
      .then(
        () => 'ok',
        (err: Error) => `rejected: ${err.message}`,
      )
    await eventually('the query is on the wire', async () => {
      const { rows } = await cluster.query<{ n: number }>(
        'replica_1',
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE '%pg_sleep(1.5)%' AND pid <> pg_backend_pid()",
      )
      return rows[0]!.n > 0
    })
    relay.reset()
    const outcome = await running
    assert.ok(outcome === 'ok' || outcome.startsWith('rejected'), outcome)
    // A later query still works (the dead client was discarded, not reused).
    await eventually('queries work again', async () => {
      try {
        await pool.query('SELECT 1')
        return true
      } catch {
        return false
      }
    })
    assert.deepEqual(uncaught, [])
  })
})
