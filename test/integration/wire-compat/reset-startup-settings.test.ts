// A setting given at startup after RESET, RESET ALL and DISCARD ALL: what SHOW says for the client that
// reset it and for the next client the same server connection serves (one connection per node here),
// directly and through the proxy in transaction mode.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { query } from '../../../src/protocol/index.js'
import { type CompatFixture, onBothSides, type Side, startCompatFixture } from './compat-fixture.js'
import { RawClient } from './raw-client.js'

const TOKYO = { TimeZone: 'Asia/Tokyo' }

describe('wire compat: startup settings after RESET, RESET ALL and DISCARD ALL (transaction mode)', () => {
  let f: CompatFixture

  before(async () => {
    f = await startCompatFixture('transaction', {
      patch: {
        proxy: { auth: { type: 'trust', users: { postgres: { password: 'postgres' } } } },
        pools: { primary: { min_idle: 0, max_active: 1, connection_timeout_ms: 5000 }, slow_start_ms: 0 },
      },
    })
  })

  after(async () => {
    await f?.stop()
  })

  function open(side: Side, params: Record<string, string> = {}): Promise<RawClient> {
    const { host, port } = f.addressOf(side)
    return RawClient.open(host, port, 'postgres', 'freshet', params)
  }

  async function shown(c: RawClient): Promise<string> {
    const row = (await c.roundTrip([query('SHOW TimeZone')])).find((m) => m.type === 'D')!
    return row.body.subarray(6).toString('utf8')
  }

  for (const reset of ['RESET TimeZone', 'SET TimeZone TO DEFAULT', 'RESET ALL', 'DISCARD ALL']) {
    it(`${reset}: the client is back at its startup value, and the next client on that connection has its own`, async () => {
      const got = await onBothSides(async (side) => {
        const a = await open(side, TOKYO)
        try {
          const before = await shown(a)
          await a.roundTrip([query("SET TimeZone = 'Europe/Paris'")])
          const set = await shown(a)
          const tag = (await a.roundTrip([query(reset)])).find((m) => m.type === 'C')!.body.toString('latin1')
          const afterReset = await shown(a)
          a.end()
          // the proxy's one server connection now serves another client with the same startup TimeZone
          const b = await open(side, TOKYO)
          try {
            return { before, set, tag, afterReset, next: await shown(b) }
          } finally {
            b.end()
          }
        } catch (err) {
          a.end()
          throw err
        }
      })
      assert.deepEqual(got.direct, {
        before: 'Asia/Tokyo',
        set: 'Europe/Paris',
        tag: `${reset.startsWith('SET') ? 'SET' : reset.split(' ')[0]}${reset === 'DISCARD ALL' ? ' ALL' : ''}\0`,
        afterReset: 'Asia/Tokyo',
        next: 'Asia/Tokyo',
      })
      assert.deepEqual(got.proxy, got.direct)
    })
  }

  it('RESET inside a multi-statement Query (sent as is): the client and the next client on that connection have their startup value', async () => {
    const got = await onBothSides(async (side) => {
      const a = await open(side, TOKYO)
      await shown(a)
      const answer = await a.roundTrip([query('RESET TimeZone; SELECT 1')])
      const afterReset = await shown(a)
      a.end()
      const b = await open(side, TOKYO)
      try {
        return { tags: answer.filter((m) => m.type === 'C').length, afterReset, next: await shown(b) }
      } finally {
        b.end()
      }
    })
    assert.deepEqual(got.direct, { tags: 2, afterReset: 'Asia/Tokyo', next: 'Asia/Tokyo' })
    assert.deepEqual(got.proxy, got.direct)
  })

  for (const reset of ['RESET TimeZone', 'RESET ALL', 'DISCARD ALL']) {
    it(`${reset} without a SET before: the client and the next client on that connection keep their startup value`, async () => {
      const got = await onBothSides(async (side) => {
        const a = await open(side, TOKYO)
        await shown(a)
        await a.roundTrip([query(reset)])
        const afterReset = await shown(a)
        a.end()
        const b = await open(side, TOKYO)
        try {
          return { afterReset, next: await shown(b) }
        } finally {
          b.end()
        }
      })
      assert.deepEqual(got.direct, { afterReset: 'Asia/Tokyo', next: 'Asia/Tokyo' })
      assert.deepEqual(got.proxy, got.direct)
    })
  }
})
