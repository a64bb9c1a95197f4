// Fastify on freshet: tiers per route, and read-your-writes across two requests served by two app instances.
//
// Run (beside a running `npx freshet sandbox`, which writes freshet.yaml):
//   FRESHET_CONFIG=freshet.yaml npx tsx examples/fastify/index.ts
// Each request prints the node and port its statement ran on, read from the server. The lines that matter are marked "freshet (n)".

import { pathToFileURL } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import {
  createPool,
  type FreshetConfigInput,
  type FreshetPool,
  freshness,
  withPrimary,
} from '../../src/index.js'
// freshet (1): in your app, `from 'freshet/http'`.
import { freshetFastify } from '../../src/library/http/index.js'
import { SERVED_BY, servedBy } from '../served-by.js'

export const SCHEMA =
  'CREATE TABLE IF NOT EXISTS shop_orders (id serial PRIMARY KEY, item text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())'

const READ_ORDER = `SELECT ${SERVED_BY}, (SELECT item FROM shop_orders WHERE id = $1) AS item`

/** The order service on Fastify: the same routes as the Express example. */
export async function buildApp(pool: FreshetPool): Promise<FastifyInstance> {
  const app = Fastify()
  // freshet (2): one scope per request; X-DB-Route-Hint and X-Primary-LSN in, X-Primary-LSN out after writes.
  await app.register(freshetFastify, { pool })

  // A write: the reply carries X-Primary-LSN (set in onSend, after the handler wrote).
  app.post<{ Body: { item?: string } }>('/orders', async (req, reply) => {
    const { rows } = await pool.query<{ id: number }>(
      `INSERT INTO shop_orders (item) VALUES ($1) RETURNING id, ${SERVED_BY}`,
      [String(req.body?.item ?? 'unnamed')],
    )
    return reply.code(201).send(rows[0])
  })

  // The request decides: X-DB-Route-Hint picks the tier, X-Primary-LSN makes it see that write.
  app.get<{ Params: { id: string } }>('/orders/:id', async (req) => {
    const { rows } = await pool.query(READ_ORDER, [Number(req.params.id)])
    return rows[0]
  })

  // freshet (3): a dashboard count may be a minute old: EVENTUAL, from a replica.
  app.get('/stats', async () => {
    const { rows } = await freshness('eventual', () =>
      pool.query(`SELECT ${SERVED_BY}, count(*)::int AS orders FROM shop_orders`),
    )
    return rows[0]
  })

  // Money moves on what the primary says.
  app.get<{ Params: { id: string } }>('/orders/:id/invoice', async (req) => {
    const { rows } = await withPrimary(() => pool.query(READ_ORDER, [Number(req.params.id)]))
    return rows[0]
  })
  return app
}

/** Two instances (two pools): a POST to one, then a GET to the other with the POST's token. */
export async function main(config: FreshetConfigInput | string, log: (line: string) => void = console.log) {
  const poolA = createPool(config)
  const poolB = createPool(config)
  const a = await buildApp(poolA)
  const b = await buildApp(poolB)
  try {
    const urlA = await a.listen({ port: 0, host: '127.0.0.1' })
    const urlB = await b.listen({ port: 0, host: '127.0.0.1' })
    await poolA.query(SCHEMA)
    const created = await fetch(`${urlA}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ item: 'grinder' }),
    })
    const written = (await created.json()) as { id: number; node: string; port: number }
    const id = written.id
    const token = created.headers.get('x-primary-lsn')
    log(servedBy(`write POST /orders on instance A (id ${id}, X-Primary-LSN ${token})`, written))
    // freshet (4): hand the token back to whichever instance serves the next request.
    const read = await fetch(`${urlB}/orders/${id}`, {
      headers: { 'x-db-route-hint': 'eventual', ...(token ? { 'x-primary-lsn': token } : {}) },
    })
    const order = (await read.json()) as { item: string | null; node: string; port: number }
    log(servedBy(`read (eventual, own write) GET /orders/${id} on instance B -> ${order.item}`, order))
    const stats = (await (await fetch(`${urlB}/stats`)).json()) as {
      orders: number
      node: string
      port: number
    }
    log(servedBy(`read (eventual) GET /stats -> ${stats.orders} orders`, stats))
    return { id, token, order, stats }
  } finally {
    await a.close()
    await b.close()
    await poolA.end()
    await poolB.end()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(await main(process.env.FRESHET_CONFIG ?? 'freshet.yaml'))
}
