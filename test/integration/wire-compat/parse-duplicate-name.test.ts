// A named Parse of a name the client already has is PostgreSQL's 42P05 ("prepared statement ... already
// exists"), and the server skips to Sync; a named Parse that failed leaves no statement (a Bind of it is
// 26000); a name Closed may be parsed again. freshet renames and re-creates statements across server
// connections, so it answers these itself: sent as exact bytes directly and through the proxy (both pool
// modes), the answers must be the same messages (errors without PostgreSQL's source line, which
// freshet's own refusal leaves out).

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { bind, close as closeMessage, execute, FLUSH, parse, SYNC } from '../../../src/protocol/index.js'
import { type CompatFixture, type Side, sameOnBothSides, startCompatFixture } from './compat-fixture.js'
import { type Message, type RawClient, transcript } from './raw-client.js'

/** Messages as text, without the source line (L) PostgreSQL puts in errors. */
function comparable(messages: readonly Message[]): string[] {
  return transcript(messages).map((m) => (m.startsWith('E:') ? m.replace(/\0L\d+\0/, '\0') : m))
}

/** The SQLSTATEs of the errors among `messages`, in order. */
function codes(t: readonly string[]): string[] {
  return t.filter((m) => m.startsWith('E:')).map((m) => /\0C([0-9A-Z]{5})\0/.exec(m)?.[1] ?? '?')
}

for (const mode of ['transaction', 'session'] as const) {
  describe(`wire compat: named Parse of a name in use, or that failed (${mode} mode)`, () => {
    let f: CompatFixture

    before(async () => {
      f = await startCompatFixture(mode, {
        patch: { proxy: { auth: { type: 'trust', users: { postgres: { password: 'postgres' } } } } },
      })
    })

    after(async () => {
      await f?.stop()
    })

    const same = (flow: (c: RawClient, side: Side) => Promise<string[]>) => sameOnBothSides(f, flow)

    it('refuses a second Parse of the name in a later batch (42P05); the first statement stays', async () => {
      const t = await same(async (c) => [
        ...comparable(await c.roundTrip([parse('dup1', 'SELECT 1 AS one'), SYNC])),
        ...comparable(
          await c.roundTrip([parse('dup1', 'SELECT 2 AS two'), bind('', 'dup1'), execute(), SYNC]),
        ),
        ...comparable(await c.roundTrip([bind('', 'dup1'), execute(), SYNC])),
      ])
      assert.deepEqual(codes(t), ['42P05'])
      // the Bind after the refusal runs the first statement
      assert.ok(t.some((m) => m.startsWith('D:') && m.endsWith('1')))
      assert.ok(!t.some((m) => m.includes('two')))
    })

    it('refuses a second Parse of the name in the same batch, and in a batch pipelined behind it', async () => {
      const t = await same(async (c) => {
        c.send(parse('dup2', 'SELECT 1'), parse('dup2', 'SELECT 2'), SYNC, parse('dup2', 'SELECT 3'), SYNC)
        const first = comparable(await c.until((m) => m.type === 'Z'))
        const second = comparable(await c.until((m) => m.type === 'Z'))
        return [...first, ...second]
      })
      assert.deepEqual(codes(t), ['42P05', '42P05'])
    })

    it('refuses it after a batch ended by Flush, too', async () => {
      const t = await same(async (c) => {
        c.send(parse('dup3', 'SELECT 1'), FLUSH)
        const flushed = comparable(await c.until((m) => m.type === '1'))
        return [...flushed, ...comparable(await c.roundTrip([parse('dup3', 'SELECT 2'), SYNC]))]
      })
      assert.deepEqual(codes(t), ['42P05'])
    })

    it('takes the name again after a Parse of it failed, or after its Close', async () => {
      const t = await same(async (c) => [
        ...comparable(await c.roundTrip([parse('again', 'SELEC 1'), SYNC])),
        // nothing by that name now: Bind is 26000, as directly
        ...comparable(await c.roundTrip([bind('', 'again'), execute(), SYNC])),
        ...comparable(await c.roundTrip([parse('again', 'SELECT 7'), bind('', 'again'), execute(), SYNC])),
        ...comparable(await c.roundTrip([closeMessage('S', 'again'), parse('again', 'SELECT 8'), SYNC])),
        ...comparable(await c.roundTrip([bind('', 'again'), execute(), SYNC])),
      ])
      assert.deepEqual(codes(t), ['42601', '26000'])
    })

    it('a failed first Parse pipelined ahead of a second one leaves the second one in place', async () => {
      const t = await same(async (c) => {
        c.send(parse('p1', 'SELEC 1'), SYNC, parse('p1', 'SELECT 5'), SYNC, bind('', 'p1'), execute(), SYNC)
        const out: string[] = []
        for (let i = 0; i < 3; i++) out.push(...comparable(await c.until((m) => m.type === 'Z')))
        return out
      })
      assert.deepEqual(codes(t), ['42601'])
    })
  })
}
