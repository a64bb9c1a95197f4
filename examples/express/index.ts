// Express on freshet: tiers per route, and read-your-writes across two requests served by two app instances.
//
// Run (beside a running `npx freshet sandbox`, which writes freshet.yaml):
//   FRESHET_CONFIG=freshet.yaml npx tsx examples/express/index.ts
// Each request prints the node and port its statement ran on, read from the server. The lines that matter are marked "freshet (n)".

import type { AddressInfo } from 'node:net'
import { pathToFileURL } from 'node:url'
import express, { type Express } from 'express'
import {
  createPool,
  type FreshetConfigInput,
  type FreshetPool,
  freshness,
  withPrimary,
} from '../../src/index.js'
// freshet (1): in your app, `from 'freshet/http'`.
import { freshetMiddleware } from '../../src/library/http/index.js'
import { SERVED_BY, servedBy } from '../served-by.js'

export const SCHEMA =
  'CREATE TABLE IF NOT EXISTS shop_orders (id serial PRIMARY KEY, item text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())'

/** The order service. Each route says how fresh its reads must be; the port tells which node served. */
export function createApp(pool: FreshetPool): Express {
  const app = express()
  app.use(express.json())
  // freshet (2): one scope per request; X-DB-Route-Hint and X-Primary-LSN in, X-Primary-LSN out after writes.
  app.use(freshetMiddleware({ pool, cookie: 'freshet_lsn' }))

  // A write: the response carries X-Primary-LSN, the token a later request hands back.
  app.post('/orders', async (req, res) => {
    const { rows } = await pool.query<{ id: number }>(
      `INSERT INTO shop_orders (item) VALUES ($1) RETURNING id, ${SERVED_BY}`,
      [String(req.body?.item ?? 'unnamed')],
    )
    res.status(201).json(rows[0])
  })

  // The request decides: X-DB-Route-Hint picks the tier, X-Primary-LSN makes it see that write.
  // Without either, routing.unannotated applies (default: the primary).
  app.get('/orders/:id', async (req, res) => {
    const { rows } = await pool.query(
      `SELECT ${SERVED_BY}, (SELECT item FROM shop_orders WHERE id = $1) AS item`,
      [Number(req.params.id)],
    )
    res.json(rows[0])
  })

  // freshet (3): a dashboard count may be a minute old: EVENTUAL, from a replica.
  app.get('/stats', async (_req, res) => {
    const { rows } = await freshness('eventual', () =>
      pool.query(`SELECT ${SERVED_BY}, count(*)::int AS orders FROM shop_orders`),
    )
    res.json(rows[0])
  })

  // Money moves on what the primary says, whatever the request asked for.
  app.get('/orders/:id/invoice', async (req, res) => {
    const { rows } = await withPrimary(() =>
      pool.query(`SELECT ${SERVED_BY}, (SELECT item FROM shop_orders WHERE id = $1) AS item`, [
        Number(req.params.id),
      ]),
    )
    res.json(rows[0])
  })
  return app
}

/** Starts `app` on a free loopback port; returns its base URL and a close function. */
export async function listen(app: Express): Promise<{ url: string; close: () => Promise<void> }> {
  const server = app.listen(0, '127.0.0.1')
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve)
    server.once('error', reject)
  })
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections() // fetch keeps connections alive
      }),
  }
}

/**
 * Two instances of the service (two pools, as behind a load balancer): a POST to one, then a GET to the
 * other with the token from the POST's response. Returns what the GET read.
 */
export async function main(config: FreshetConfigInput | string, log: (line: string) => void = console.log) {
  const poolA = createPool(config)
  const poolB = createPool(config)
  const a = await listen(createApp(poolA))
  const b = await listen(createApp(poolB))
  try {
    await poolA.query(SCHEMA)
    const created = await fetch(`${a.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ item: 'espresso machine' }),
    })
    const written = (await created.json()) as { id: number; node: string; port: number }
    const id = written.id
    const token = created.headers.get('x-primary-lsn')
    log(servedBy(`write POST /orders on instance A (id ${id}, X-Primary-LSN ${token})`, written))
    // freshet (4): hand the token back; the other instance reads from a replica only once it has replayed it.
    const read = await fetch(`${b.url}/orders/${id}`, {
      headers: { 'x-db-route-hint': 'eventual', ...(token ? { 'x-primary-lsn': token } : {}) },
    })
    const order = (await read.json()) as { item: string | null; node: string; port: number }
    log(servedBy(`read (eventual, own write) GET /orders/${id} on instance B -> ${order.item}`, order))
    const stats = (await (await fetch(`${b.url}/stats`)).json()) as {
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
