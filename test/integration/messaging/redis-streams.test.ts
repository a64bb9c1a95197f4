// freshet/messaging through a real broker (Redis streams, via ioredis) and a real cluster: a producer
// writes with one pool and publishes; a consumer with another pool reads the row while every replica is
// paused, because the message carried the token. Skipped when no Redis answers on 127.0.0.1:6379.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Redis } from 'ioredis'
import { type FreshetPool, freshness, withScope } from '../../../src/index.js'
import { injectContext, withMessageContext } from '../../../src/library/messaging/index.js'
import type { LocalCluster } from '../../cluster/index.js'
import { startTwoInstances, type TwoInstances, withReplicasPaused } from '../../support/two-instances.js'

const REDIS_URL = process.env.FRESHET_TEST_REDIS ?? 'redis://127.0.0.1:6379'

async function connectRedis(): Promise<Redis | null> {
  const redis = new Redis(REDIS_URL, {
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  })
  redis.on('error', () => {})
  try {
    await redis.connect()
    await redis.ping()
    return redis
  } catch {
    redis.disconnect()
    return null
  }
}

const redis = await connectRedis()
const skip = redis
  ? false
  : `no Redis at ${REDIS_URL}: start one (or set FRESHET_TEST_REDIS) to run this test`

describe('freshet/messaging over Redis streams', { skip }, () => {
  let cluster: LocalCluster
  let producerPool: FreshetPool
  let consumerPool: FreshetPool
  let nodeOf: (port: number) => string
  const stream = `freshet-test-${process.pid}-${Date.now()}`

  /** Stream entries are flat [field, value, ...] lists: the payload plus the propagation headers. */
  async function publish(payload: Record<string, string>, headers: Record<string, string>) {
    await redis!.xadd(stream, '*', ...Object.entries({ ...headers, ...payload }).flat())
  }

  async function consumeOne(lastId: string): Promise<{ id: string; fields: Record<string, string> }> {
    const res = await redis!.xread('COUNT', 1, 'BLOCK', 5000, 'STREAMS', stream, lastId)
    assert.ok(res, 'a message arrived')
    const [id, flat] = res[0]![1][0]!
    const fields: Record<string, string> = {}
    for (let i = 0; i < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!
    return { id, fields }
  }

  let env: TwoInstances

  before(async () => {
    env = await startTwoInstances(['CREATE TABLE shipments (id serial PRIMARY KEY, address text)'])
    ;({ cluster, poolA: producerPool, poolB: consumerPool, nodeOf } = env)
  })

  after(async () => {
    await redis?.del(stream).catch(() => {})
    redis?.disconnect()
    await env?.stop()
  })

  it('the consumer sees the producer write with replicas paused; the same read without headers does not', async () => {
    const read = (id: string) =>
      consumerPool.query(
        'SELECT inet_server_port() AS port, (SELECT address FROM shipments WHERE id = $1) AS address',
        [Number(id)],
      )
    await withReplicasPaused(cluster, async () => {
      await withScope(() =>
        freshness('eventual', async () => {
          const { rows } = await producerPool.query<{ id: number }>(
            "INSERT INTO shipments (address) VALUES ('1 Quay St') RETURNING id",
          )
          await publish({ shipment: String(rows[0]!.id) }, injectContext())
        }),
      )
      const { fields } = await consumeOne('0')
      assert.equal(fields['x-db-route-hint'], 'eventual')
      assert.match(fields['x-primary-lsn'] ?? '', /^[0-9A-F]+\/[0-9A-F]+$/)

      // Control: the producer's tier without its token lands on a paused replica that lacks the row.
      const stale = await withMessageContext({ 'x-db-route-hint': fields['x-db-route-hint'] }, () =>
        read(fields.shipment!),
      )
      assert.match(nodeOf(stale.rows[0].port), /^replica_/)
      assert.equal(stale.rows[0].address, null)

      const fresh = await withMessageContext(fields, () => read(fields.shipment!), { pool: consumerPool })
      assert.equal(fresh.rows[0].address, '1 Quay St')
      assert.equal(nodeOf(fresh.rows[0].port), 'primary')
    })
  })
})
