// A client that stops reading while a large result streams: the proxy forwards the server's answers as
// views of its read buffer, and a write the socket queues must keep those bytes (the next read goes to
// a new buffer). Compared byte for byte with the same client directly on the primary.

import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { query } from '../../../src/protocol/index.js'
import { eventually } from '../../support/eventually.js'
import { type CompatFixture, onBothSides, startCompatFixture } from './compat-fixture.js'
import { type Message, RawClient } from './raw-client.js'

// 300,000 rows of ~100 bytes (the server sends 8 KiB at a time): far more than the kernel buffers between the server and the client hold
const ROWS = 300_000
const MARK = 'slow_reader_result'
const STALLS = 4

describe('wire compat: a client that reads a large result slowly', () => {
  let f: CompatFixture

  before(async () => {
    f = await startCompatFixture('transaction', {
      patch: { proxy: { auth: { type: 'trust', users: { postgres: { password: 'postgres' } } } } },
    })
  })

  after(async () => {
    await f?.stop()
  })

  /** The server's backend for the result waits on its socket: everything on the way is full. */
  async function serverBlocked(): Promise<boolean> {
    const { rows } = await f.cluster.query(
      'primary',
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE wait_event = 'ClientWrite' AND query LIKE '%${MARK}%' AND pid <> pg_backend_pid()`,
    )
    return rows[0]?.n === 1
  }

  it('stalls several times mid-result: the same messages as directly, byte for byte', async () => {
    const got = await onBothSides(async (side) => {
      const { host, port } = f.addressOf(side)
      const c = await RawClient.open(host, port)
      try {
        c.pause()
        c.send(query(`SELECT g, repeat(md5(g::text), 3) AS ${MARK} FROM generate_series(1, ${ROWS}) g`))
        // read in bursts: stop until the server itself is blocked, read some, stop again ...
        const hash = createHash('sha1')
        let messages = 0
        const take = (got: Message[]) => {
          for (const m of got) hash.update(m.type).update(m.body)
          messages += got.length
        }
        for (let stall = 0; stall < STALLS; stall++) {
          await eventually(
            `the ${side} side's server blocked on the client (stall ${stall + 1})`,
            serverBlocked,
          )
          c.resume()
          take(await c.until((m) => m.type === 'D', 20_000))
          c.pause()
        }
        c.resume()
        take(await c.until((m) => m.type === 'Z'))
        return { messages, hash: hash.digest('hex') }
      } finally {
        c.end()
      }
    })
    assert.equal(got.direct.messages, ROWS + 3) // RowDescription, a DataRow per row, CommandComplete, ReadyForQuery
    assert.deepEqual(got.proxy, got.direct)
  })
})
