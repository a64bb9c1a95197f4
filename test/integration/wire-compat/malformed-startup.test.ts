// Regression: bytes that are no startup packet (node-postgres' quick-disconnect test sends Terminate
// before its StartupMessage) got a freshet ErrorResponse; PostgreSQL logs and closes without a word.

import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { type CompatFixture, onBothSides, type Side, startCompatFixture } from './compat-fixture.js'

describe('wire compat: malformed startup', () => {
  let f: CompatFixture

  before(async () => {
    f = await startCompatFixture('transaction')
  })

  after(async () => {
    await f?.stop()
  })

  /** Sends `bytes` as the first thing on a new connection; resolves with all the peer sent until it closed. */
  function firstBytes(side: Side, bytes: Buffer): Promise<Buffer> {
    const { host, port } = f.addressOf(side)
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port }, () => socket.write(bytes))
      const got: Buffer[] = []
      socket.on('data', (d) => got.push(d))
      socket.on('error', reject)
      socket.on('close', () => resolve(Buffer.concat(got)))
      socket.setTimeout(10_000, () => reject(new Error(`${side}: the peer kept the connection open`)))
    })
  }

  it('Terminate before the StartupMessage: closed silently, as directly', async () => {
    const terminate = Buffer.from([0x58, 0, 0, 0, 4])
    const got = await onBothSides((side) => firstBytes(side, terminate))
    assert.equal(got.direct.length, 0)
    assert.deepEqual(got.proxy, got.direct)
  })

  it('a length below the minimum: closed silently, as directly', async () => {
    const got = await onBothSides((side) => firstBytes(side, Buffer.from([0, 0, 0, 3, 0, 0, 0, 0])))
    assert.equal(got.direct.length, 0)
    assert.deepEqual(got.proxy, got.direct)
  })

  it('a well-framed StartupMessage of protocol 2.0 still gets a FATAL ErrorResponse, as directly', async () => {
    const v2 = Buffer.from([0, 0, 0, 9, 0, 2, 0, 0, 0])
    const got = await onBothSides((side) => firstBytes(side, v2))
    for (const side of ['direct', 'proxy'] as const) {
      assert.equal(String.fromCharCode(got[side][0]!), 'E', `${side}: an ErrorResponse`)
      assert.match(got[side].toString('latin1'), /FATAL/, side)
    }
  })
})
