// freshet/http with Express on a real cluster: two app instances (two pools sharing nothing but headers)
// hand the read-your-writes token from a POST on one to a GET on the other, with every replica paused.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createApp, listen, main, SCHEMA } from '../../../examples/express/index.js'
import type { FreshetPool } from '../../../src/index.js'
import type { LocalCluster } from '../../cluster/index.js'
import { configFor } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'
import { startTwoInstances, type TwoInstances, withReplicasPaused } from '../../support/two-instances.js'

const LSN = /^[0-9A-F]+\/[0-9A-F]+$/

describe('freshet/http: Express across two instances', () => {
  let cluster: LocalCluster
  let poolA: FreshetPool
  let poolB: FreshetPool
  let a: { url: string; close: () => Promise<void> }
  let b: { url: string; close: () => Promise<void> }
  let nodeOf: (port: number) => string

  async function getOrder(base: string, id: number, headers: Record<string, string>) {
    const res = await fetch(`${base}/orders/${id}`, { headers })
    assert.equal(res.status, 200)
    const body = (await res.json()) as { item: string | null; port: number }
    return { item: body.item, node: nodeOf(body.port), headers: res.headers }
  }

  async function postOrder(base: string, item: string) {
    const res = await fetch(`${base}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ item }),
    })
    assert.equal(res.status, 201)
    const { id } = (await res.json()) as { id: number }
    return { id, token: res.headers.get('x-primary-lsn'), cookie: res.headers.getSetCookie() }
  }

  let env: TwoInstances

  before(async () => {
    env = await startTwoInstances([SCHEMA])
    ;({ cluster, poolA, poolB, nodeOf } = env)
    a = await listen(createApp(poolA))
    b = await listen(createApp(poolB))
  })

  after(async () => {
    await a?.close()
    await b?.close()
    await env?.stop()
  })

  it('a GET on instance B reads the POST from instance A with its X-Primary-LSN, replicas paused; without it a replica misses the row', async () => {
    await withReplicasPaused(cluster, async () => {
      const { id, token, cookie } = await postOrder(a.url, 'kettle')
      assert.match(token ?? '', LSN)
      assert.ok(
        cookie.some((c) => c.startsWith(`freshet_lsn=${token};`) && /Max-Age=30/.test(c)),
        `cookie: ${cookie}`,
      )

      // Without the token, EVENTUAL accepts a paused replica (its lag is far under 60 s): the row is not there.
      const stale = await getOrder(b.url, id, { 'x-db-route-hint': 'eventual' })
      assert.match(stale.node, /^replica_/)
      assert.equal(stale.item, null)

      // With it, no paused replica qualifies: instance B reads on the primary and sees the order.
      const fresh = await getOrder(b.url, id, { 'x-db-route-hint': 'eventual', 'x-primary-lsn': token! })
      assert.equal(fresh.item, 'kettle')
      assert.equal(fresh.node, 'primary')
      assert.equal(fresh.headers.get('x-primary-lsn'), null, 'a request that did not write sends no token')

      // The cookie variant carries the same token.
      const byCookie = await getOrder(b.url, id, {
        'x-db-route-hint': 'eventual',
        cookie: `theme=dark; freshet_lsn=${token}`,
      })
      assert.equal(byCookie.item, 'kettle')
    })
  })

  it('once a replica has replayed the token, the same GET is served by a replica and sees the row', async () => {
    const { id, token } = await postOrder(a.url, 'teapot')
    await eventually('a replica serves the token', async () => {
      const r = await getOrder(b.url, id, { 'x-db-route-hint': 'eventual', 'x-primary-lsn': token! })
      assert.equal(r.item, 'teapot')
      return r.node.startsWith('replica_')
    })
  })

  it('routes per route: /stats eventual on a replica, /invoice on the primary, unannotated on the primary', async () => {
    const { id } = await postOrder(a.url, 'mug')
    const stats = (await (await fetch(`${b.url}/stats`)).json()) as { port: number }
    assert.match(nodeOf(stats.port), /^replica_/)
    const invoice = (await await fetch(`${b.url}/orders/${id}/invoice`, {
      headers: { 'x-db-route-hint': 'eventual' },
    }).then((r) => r.json())) as { port: number; item: string }
    assert.equal(nodeOf(invoice.port), 'primary')
    assert.equal(invoice.item, 'mug')
    assert.equal((await getOrder(b.url, id, {})).node, 'primary')
    assert.equal((await getOrder(b.url, id, { 'x-db-route-hint': 'PRIMARY' })).node, 'primary')
  })

  it('ignores a malformed token and an unknown tier: 200, routed as if absent', async () => {
    const { id } = await postOrder(a.url, 'spoon')
    const badTier = await getOrder(b.url, id, { 'x-db-route-hint': 'warp_speed' })
    assert.equal(badTier.node, 'primary', 'unknown tier ignored: routing.unannotated (primary)')
    const badToken = await getOrder(b.url, id, {
      'x-db-route-hint': 'eventual',
      'x-primary-lsn': 'DROP TABLE orders',
    })
    assert.match(badToken.node, /^replica_/, 'malformed token ignored: the tier alone routes')
    const badCookie = await getOrder(b.url, id, { 'x-db-route-hint': 'eventual', cookie: 'freshet_lsn=%zz' })
    assert.match(badCookie.node, /^replica_/)
  })

  it('the example runs: POST on one instance, GET on the other reads the order', async () => {
    const lines: string[] = []
    const result = await main(configFor(cluster), (l) => lines.push(l))
    assert.equal(result.order.item, 'espresso machine')
    assert.match(result.token ?? '', LSN)
    assert.match(nodeOf(result.stats.port), /^replica_/)
    assert.equal(lines.length, 3)
  })
})
