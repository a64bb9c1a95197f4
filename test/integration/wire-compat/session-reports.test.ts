// What the server reports to a client outside the rows it asked for: ParameterStatus (at login, after
// SET, SET LOCAL and RESET, and in transaction mode across statements that run on different server
// connections) and the notifying process of a NotificationResponse (a client's own NOTIFY carries its
// own pid, the one BackendKeyData gave it). Exact bytes, directly and through the proxy, both modes.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { query } from '../../../src/protocol/index.js'
import { type CompatFixture, onBothSides, type Side, startCompatFixture } from './compat-fixture.js'
import { type Message, RawClient, transcript } from './raw-client.js'

/** The value a ParameterStatus message sets for `name`, in order. */
function reported(messages: readonly Message[], name: string): string[] {
  const out: string[] = []
  for (const m of messages) {
    if (m.type !== 'S') continue
    const [key, value] = m.body.toString('utf8').split('\0')
    if (key === name) out.push(value!)
  }
  return out
}

/** The server process id a client's statement ran in: the row of SELECT pg_backend_pid(). */
function pidOf(messages: readonly Message[]): number {
  const row = messages.find((m) => m.type === 'D')!
  // int16 column count, int32 length, the text
  return Number(row.body.subarray(6).toString('latin1'))
}

for (const mode of ['transaction', 'session'] as const) {
  describe(`wire compat: ParameterStatus and the notifying pid (${mode} mode)`, () => {
    let f: CompatFixture

    before(async () => {
      f = await startCompatFixture(mode, {
        patch: { proxy: { auth: { type: 'trust', users: { postgres: { password: 'postgres' } } } } },
      })
    })

    after(async () => {
      await f?.stop()
    })

    function open(side: Side, params: Record<string, string> = {}): Promise<RawClient> {
      const { host, port } = f.addressOf(side)
      return RawClient.open(host, port, 'postgres', 'freshet', params)
    }

    it('a TimeZone asked for at startup: reported once at login, kept across server connections, SET LOCAL and SET report as directly', async () => {
      const got = await onBothSides(async (side) => {
        const c = await open(side, { TimeZone: 'Asia/Tokyo' })
        // other clients in open transactions take server connections, so the next statements of `c`
        // (transaction mode) run on connections that served no one with this setting
        const others: RawClient[] = []
        try {
          const out: string[] = [`login TimeZone=${reported(c.startup, 'TimeZone').join(',')}`]
          const pids = new Set<number>()
          for (let i = 0; i < 3; i++) {
            out.push(...transcript(await c.roundTrip([query('SHOW TimeZone')])))
            pids.add(pidOf(await c.roundTrip([query('SELECT pg_backend_pid()')])))
            const o = await open(side)
            others.push(o)
            await o.roundTrip([query('BEGIN')])
            await o.roundTrip([query('SELECT 1')])
          }
          out.push(...transcript(await c.roundTrip([query('BEGIN')])))
          out.push(...transcript(await c.roundTrip([query("SET LOCAL TimeZone = 'UTC'")])))
          out.push(...transcript(await c.roundTrip([query('COMMIT')])))
          out.push(...transcript(await c.roundTrip([query("SET TimeZone = 'Europe/Paris'")])))
          out.push(...transcript(await c.roundTrip([query('SHOW TimeZone')])))
          return { out, servers: pids.size }
        } finally {
          c.end()
          for (const o of others) o.end()
        }
      })
      assert.deepEqual(got.proxy.out, got.direct.out)
      assert.equal(got.direct.out[0], 'login TimeZone=Asia/Tokyo')
      // SET LOCAL reports UTC, and COMMIT reports Asia/Tokyo again
      assert.deepEqual(
        got.direct.out.filter((m) => m.startsWith('S:')),
        ['S:TimeZone\0UTC\0', 'S:TimeZone\0Asia/Tokyo\0', 'S:TimeZone\0Europe/Paris\0'],
      )
      // transaction mode: the statements did run on different server connections
      if (mode === 'transaction') assert.ok(got.proxy.servers > 1, `servers: ${got.proxy.servers}`)
    })

    it('RESET of a setting given at startup returns to the startup value, reported as directly', async () => {
      const got = await onBothSides(async (side) => {
        const c = await open(side, { TimeZone: 'Asia/Tokyo' })
        try {
          await c.roundTrip([query("SET TimeZone = 'Europe/Paris'")])
          const reset = await c.roundTrip([query('RESET TimeZone')])
          const shown = (await c.roundTrip([query('SHOW TimeZone')])).find((m) => m.type === 'D')!
          return { reported: reported(reset, 'TimeZone'), shown: shown.body.subarray(6).toString('utf8') }
        } finally {
          c.end()
        }
      })
      // directly the startup value is the session's reset value; freshet applied it with set_config on a
      // pooled server connection, so it runs the RESET as set_config of the startup value
      assert.deepEqual(got.direct, { reported: ['Asia/Tokyo'], shown: 'Asia/Tokyo' })
      assert.deepEqual(got.proxy, got.direct)
    })

    it("a client's own NOTIFY carries the pid BackendKeyData gave it, another client's does not", async () => {
      const got = await onBothSides(async (side) => {
        const listener = await open(side)
        const other = await open(side)
        try {
          await listener.roundTrip([query('LISTEN reports')])
          const own = (await listener.roundTrip([query("NOTIFY reports, 'own'")])).find((m) => m.type === 'A')
          await other.roundTrip([query("NOTIFY reports, 'other'")])
          const [fromOther] = (await listener.until((m) => m.type === 'A')).filter((m) => m.type === 'A')
          await listener.roundTrip([query('UNLISTEN *')])
          return {
            ownIsMine: own?.body.readInt32BE(0) === listener.pid,
            otherIsMine: fromOther!.body.readInt32BE(0) === listener.pid,
            payloads: [own, fromOther].map((m) => m?.body.subarray(4).toString('latin1')),
          }
        } finally {
          listener.end()
          other.end()
        }
      })
      assert.deepEqual(got.proxy, got.direct)
      assert.deepEqual(got.direct, {
        ownIsMine: true,
        otherIsMine: false,
        payloads: ['reports\0own\0', 'reports\0other\0'],
      })
    })
  })
}
