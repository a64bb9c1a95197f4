// freshet/http with Fastify on a real cluster: the token from one instance's POST makes another
// instance's GET see the row while every replica is paused; without it a replica misses the row.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildApp, main, SCHEMA } from '../../../examples/fastify/index.js'
import type { FreshetPool } from '../../../src/index.js'
import type { LocalCluster } from '../../cluster/index.js'
import { configFor } from '../../support/cluster-config.js'
import { startTwoInstances, type TwoInstances, withReplicasPaused } from '../../support/two-instances.js'

describe('freshet/http: Fastify across two instances', () => {
  let cluster: LocalCluster
  let poolA: FreshetPool
  let poolB: FreshetPool
  let a: FastifyInstance
  let b: FastifyInstance
  let urlA: string
  let urlB: string
  let nodeOf: (port: number) => string

  async function getOrder(id: number, headers: Record<string, string>) {
    const res = await fetch(`${urlB}/orders/${id}`, { headers })
    assert.equal(res.status, 200)
    const body = (await res.json()) as { item: string | null; port: number }
    return { item: body.item, node: nodeOf(body.port) }
  }

  let env: TwoInstances

  before(async () => {
    env = await startTwoInstances([SCHEMA])
    ;({ cluster, poolA, poolB, nodeOf } = env)
    a = await buildApp(poolA)
    b = await buildApp(poolB)
    urlA = await a.listen({ port: 0, host: '127.0.0.1' })
    urlB = await b.listen({ port: 0, host: '127.0.0.1' })
  })

  after(async () => {
    await a?.close()
    await b?.close()
    await env?.stop()
  })

  it('reads its own write across instances by X-Primary-LSN with replicas paused (and a replica misses it without)', async () => {
    await withReplicasPaused(cluster, async () => {
      // A JSON body: the scope must survive Fastify's body parsing to see the handler's write.
      const created = await fetch(`${urlA}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ item: 'scale' }),
      })
      assert.equal(created.status, 201)
      const { id } = (await created.json()) as { id: number }
      const token = created.headers.get('x-primary-lsn')
      assert.match(token ?? '', /^[0-9A-F]+\/[0-9A-F]+$/)

      const stale = await getOrder(id, { 'x-db-route-hint': 'eventual' })
      assert.match(stale.node, /^replica_/)
      assert.equal(stale.item, null)

      const fresh = await getOrder(id, { 'x-db-route-hint': 'eventual', 'x-primary-lsn': token! })
      assert.equal(fresh.item, 'scale')
      assert.equal(fresh.node, 'primary')
    })
  })

  it('per-route tiers and bad headers: eventual stats on a replica, invoice on the primary, a bad hint ignored', async () => {
    const stats = (await (await fetch(`${urlB}/stats`)).json()) as { port: number }
    assert.match(nodeOf(stats.port), /^replica_/)
    const invoice = (await (
      await fetch(`${urlB}/orders/1/invoice`, { headers: { 'x-db-route-hint': 'eventual' } })
    ).json()) as { port: number }
    assert.equal(nodeOf(invoice.port), 'primary')
    const bad = await fetch(`${urlB}/orders/1`, {
      headers: { 'x-db-route-hint': '../../etc', 'x-primary-lsn': '1/2/3' },
    })
    assert.equal(bad.status, 200)
    assert.equal(nodeOf(((await bad.json()) as { port: number }).port), 'primary')
  })

  it('the example runs', async () => {
    const result = await main(configFor(cluster), () => {})
    assert.equal(result.order.item, 'grinder')
    assert.ok(result.token)
  })
})
