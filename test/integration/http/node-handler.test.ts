// freshet/http on a plain node:http server, without a database: the scope a request runs in, and the
// token headers and cookie written after the handler "wrote" (a write records the scope's token).

import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { currentContext } from '../../../src/index.js'
import { type PoolLike, requestContext, withRequestContext } from '../../../src/library/http/index.js'

describe('freshet/http: withRequestContext on node:http', () => {
  let server: Server
  let base: string
  const debug: string[] = []

  before(async () => {
    server = createServer(
      withRequestContext(
        async (req, res) => {
          await new Promise((r) => setImmediate(r)) // the scope survives awaits
          const store = currentContext()!
          if (req.method === 'POST') store.writes.tokens.record('0/3000148') // what pool.query() records after a write
          res.setHeader('set-cookie', 'session=abc; Path=/')
          res.end(
            JSON.stringify({
              tier: store.tier ?? null,
              primary: store.primary ?? false,
              minLsn: store.minLsn ?? null,
            }),
          )
        },
        { tiers: ['strict', 'near_rt', 'eventual'], cookie: 'freshet_lsn', debug: (m) => debug.push(m) },
      ),
    )
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })

  after(async () => {
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
  })

  it('puts the hint and the later of header and cookie token into the scope', async () => {
    const res = await fetch(base, {
      headers: { 'x-db-route-hint': 'Near_RT', 'x-primary-lsn': '0/10', cookie: 'freshet_lsn=0/20; a=b' },
    })
    assert.deepEqual(await res.json(), { tier: 'near_rt', primary: false, minLsn: '0/20' })
    assert.equal(res.headers.get('x-primary-lsn'), null, 'no write, no token')
    const primary = await fetch(base, { headers: { 'x-db-route-hint': 'primary' } })
    assert.equal(((await primary.json()) as { primary: boolean }).primary, true)
  })

  it('sets X-Primary-LSN and the cookie after a write, keeping the app cookies', async () => {
    const res = await fetch(base, { method: 'POST' })
    assert.equal(res.headers.get('x-primary-lsn'), '0/3000148')
    const cookies = res.headers.getSetCookie()
    assert.deepEqual(cookies, [
      'session=abc; Path=/',
      'freshet_lsn=0/3000148; Max-Age=30; Path=/; HttpOnly; SameSite=Lax',
    ])
  })

  it('ignores bad values with a debug message: 200, empty scope', async () => {
    debug.length = 0
    const res = await fetch(base, { headers: { 'x-db-route-hint': 'ludicrous', 'x-primary-lsn': '0/xyz' } })
    assert.equal(res.status, 200)
    assert.deepEqual(await res.json(), { tier: null, primary: false, minLsn: null })
    assert.equal(debug.length, 2)
  })

  it('requestContext reports ignored values on the pool log at debug level', () => {
    const logged: unknown[][] = []
    const pool = {
      config: { routing: { tiers: { eventual: {} } } },
      emit: (...args: unknown[]) => logged.push(args) > 0,
    } as unknown as PoolLike
    assert.deepEqual(requestContext({ 'x-db-route-hint': 'eventual' }, { pool }), { tier: 'eventual' })
    assert.deepEqual(requestContext({ 'x-db-route-hint': 'near_rt' }, { pool }), {})
    assert.equal(logged[0]?.[0], 'log')
    assert.equal(logged[0]?.[1], 'debug')
    // hints: false keeps untrusted clients from choosing tiers; tokens still count.
    assert.deepEqual(
      requestContext({ 'x-db-route-hint': 'eventual', 'x-primary-lsn': '0/1' }, { hints: false }),
      {
        minLsn: '0/1',
      },
    )
  })
})
