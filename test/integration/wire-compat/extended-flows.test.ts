// JDBC-style extended-protocol flows, notices, notifications, ParameterStatus and cancel, sent as exact
// bytes directly and through the proxy (both pool modes): the answers must be the same messages.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import {
  bind,
  close as closeMessage,
  describe as describeMessage,
  execute,
  FLUSH,
  parse,
  query,
  SYNC,
} from '../../../src/protocol/index.js'
import { eventually } from '../../support/eventually.js'
import { type CompatFixture, type Side, sameOnBothSides, startCompatFixture } from './compat-fixture.js'
import { RawClient, transcript } from './raw-client.js'

for (const mode of ['transaction', 'session'] as const) {
  describe(`wire compat: extended-protocol flows, byte for byte (${mode} mode)`, () => {
    let f: CompatFixture

    before(async () => {
      f = await startCompatFixture(mode, {
        patch: { proxy: { auth: { type: 'trust', users: { postgres: { password: 'postgres' } } } } },
        setup: async (c) => {
          await c.query('primary', 'CREATE TABLE flows (id int PRIMARY KEY, v text)')
          await c.query('primary', "INSERT INTO flows SELECT g, 'v' || g FROM generate_series(1, 10) g")
        },
      })
    })

    after(async () => {
      await f?.stop()
    })

    async function client(side: Side): Promise<RawClient> {
      const { host, port } = f.addressOf(side)
      return RawClient.open(host, port)
    }

    const same = (flow: (c: RawClient, side: Side) => Promise<string[]>) => sameOnBothSides(f, flow)

    it('Describe of a statement before its Bind, then Bind/Describe portal/Execute, then Close', async () => {
      const t = await same(async (c) => [
        ...transcript(
          await c.roundTrip([
            parse('s1', 'SELECT $1::int + 1 AS x, v FROM flows WHERE id = $1'),
            describeMessage('S', 's1'),
            SYNC,
          ]),
        ),
        ...transcript(await c.roundTrip([bind('', 's1', ['4']), describeMessage('P', ''), execute(), SYNC])),
        ...transcript(await c.roundTrip([closeMessage('S', 's1'), SYNC])),
        ...transcript(await c.roundTrip([bind('', 's1', ['4']), execute(), SYNC])),
      ])
      assert.deepEqual(
        t.map((m) => m[0]).join(''),
        // 1, t, T, Z | 2, T, D, C, Z | 3, Z | E (s1 is gone), Z
        '1tTZ2TDCZ3ZEZ',
      )
    })

    it('a portal read in slices of 3 rows: PortalSuspended, then the rest, in a transaction', async () => {
      const t = await same(async (c) => [
        ...transcript(await c.roundTrip([query('BEGIN')])),
        ...transcript(
          await c.roundTrip([
            parse('', 'SELECT id FROM flows ORDER BY id'),
            bind('cur', ''),
            execute('cur', 3),
            execute('cur', 3),
            SYNC,
          ]),
        ),
        ...transcript(await c.roundTrip([execute('cur', 3), execute('cur', 0), SYNC])),
        ...transcript(await c.roundTrip([query('COMMIT')])),
      ])
      assert.equal(t.filter((m) => m[0] === 's').length, 3)
      assert.equal(t.filter((m) => m[0] === 'D').length, 10)
    })

    it('Flush without Sync: the answers come before the Sync, then ReadyForQuery', async () => {
      await same(async (c) => {
        c.send(parse('', 'SELECT count(*) FROM flows'), bind('', ''), execute(), FLUSH)
        const flushed = transcript(await c.until((m) => m.type === 'C'))
        const synced = transcript(await c.roundTrip([SYNC]))
        return [...flushed, '|', ...synced]
      })
    })

    it('a pipelined batch with an error in the middle: the rest is skipped up to Sync, then all is well', async () => {
      const t = await same(async (c) => [
        ...transcript(
          await c.roundTrip([
            parse('', 'INSERT INTO flows VALUES (100, $1)'),
            bind('', '', ['a']),
            execute(),
            parse('', 'SELECT 1 / 0'),
            bind('', ''),
            execute(),
            parse('', 'INSERT INTO flows VALUES (101, $1)'),
            bind('', '', ['b']),
            execute(),
            SYNC,
          ]),
        ),
        // the implicit transaction rolled back: neither row is there
        ...transcript(await c.roundTrip([query('SELECT count(*) FROM flows WHERE id >= 100')])),
      ])
      assert.match(t.join('\n'), /22012/)
      // one column, length 1, '0'
      assert.ok(t.includes(`D:${Buffer.from([0, 1, 0, 0, 0, 1]).toString('latin1')}0`), t.join('\n'))
    })

    it('NOTICE and ParameterStatus after SET arrive as directly', async () => {
      await same(async (c) => [
        ...transcript(await c.roundTrip([query("DO $$ BEGIN RAISE NOTICE 'hello %', 42; END $$")])),
        ...transcript(await c.roundTrip([query("SET TimeZone = 'Asia/Tokyo'")])),
        ...transcript(await c.roundTrip([query("SET application_name = 'flows'")])),
        ...transcript(await c.roundTrip([query('RESET ALL')])),
      ])
    })

    it('NOTIFY reaches a LISTEN client, between statements and while idle', async () => {
      await same(async (listener, side) => {
        const out = transcript(await listener.roundTrip([query('LISTEN flows_channel')]))
        const sender = await client(side)
        try {
          await sender.roundTrip([query("NOTIFY flows_channel, 'one'")])
          out.push(...transcript(await listener.until((m) => m.type === 'A')))
          await sender.roundTrip([query("SELECT pg_notify('flows_channel', 'two')")])
          out.push(...transcript(await listener.until((m) => m.type === 'A')))
        } finally {
          sender.end()
        }
        out.push(...transcript(await listener.roundTrip([query('UNLISTEN *')])))
        return out
      })
    })

    it('a cancel of a statement in a pipelined batch cancels it and skips the rest up to Sync', async () => {
      const t = await same(async (c, side) => {
        const marker = `cancel_${side}`
        c.send(
          parse('', `SELECT pg_sleep(20) /* ${marker} */`),
          bind('', ''),
          execute(),
          parse('', 'SELECT 2'),
          bind('', ''),
          execute(),
          SYNC,
        )
        await eventually('the sleep runs', async () => {
          const r = await f.cluster.query(
            'primary',
            `SELECT 1 FROM pg_stat_activity WHERE query LIKE '%${marker}%' AND pid <> pg_backend_pid()`,
          )
          return r.rows.length > 0
        })
        const { host, port } = f.addressOf(side)
        await c.cancel(host, port)
        const cancelled = transcript(await c.until((m) => m.type === 'Z'))
        const after = transcript(await c.roundTrip([query('SELECT 3')]))
        return [...cancelled, ...after]
      })
      assert.match(t.join('\n'), /57014/)
    })
  })
}
