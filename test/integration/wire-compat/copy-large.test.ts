// COPY in and out of large data, with an error in the middle of the stream, sent as exact bytes
// directly and through the proxy (both pool modes): the answers must be the same messages.

import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { FrontendCode, MessageWriter, query } from '../../../src/protocol/index.js'
import { type CompatFixture, onBothSides, type Side, startCompatFixture } from './compat-fixture.js'
import { type Message, RawClient, transcript } from './raw-client.js'

const ROWS = 200_000

/** CopyData messages of `rows` lines `id\tvalue`, in chunks of about 64 KiB; `bad` (if any) is not a number. */
function copyData(rows: number, bad: number | null): Buffer[] {
  const out: Buffer[] = []
  let lines: string[] = []
  let size = 0
  const writer = new MessageWriter()
  const flush = () => {
    out.push(
      writer
        .begin(FrontendCode.CopyData)
        .bytes(Buffer.from(lines.join('')))
        .end()
        .flush(),
    )
    lines = []
    size = 0
  }
  for (let i = 1; i <= rows; i++) {
    const line = `${i === bad ? 'x' : i}\tvalue number ${i}\n`
    lines.push(line)
    size += line.length
    if (size > 65_000) flush()
  }
  if (lines.length > 0) flush()
  return out
}

const COPY_DONE = Buffer.from([FrontendCode.CopyDone, 0, 0, 0, 4])

for (const mode of ['transaction', 'session'] as const) {
  describe(`wire compat: large COPY with errors mid-stream (${mode} mode)`, () => {
    let f: CompatFixture

    before(async () => {
      f = await startCompatFixture(mode, {
        patch: { proxy: { auth: { type: 'trust', users: { postgres: { password: 'postgres' } } } } },
        setup: async (c) => {
          await c.query('primary', 'CREATE TABLE copied (id int, v text)')
        },
      })
    })

    after(async () => {
      await f?.stop()
    })

    async function onEach<T>(flow: (c: RawClient, side: Side) => Promise<T>): Promise<Record<Side, T>> {
      return onBothSides(async (side) => {
        const { host, port } = f.addressOf(side)
        const c = await RawClient.open(host, port)
        try {
          return await flow(c, side)
        } finally {
          c.end()
        }
      })
    }

    /** COPY FROM STDIN of `rows` rows (one bad): returns what the server answered. */
    async function copyIn(c: RawClient, rows: number, bad: number | null): Promise<string[]> {
      c.send(query('COPY copied FROM STDIN'))
      const started = transcript(await c.until((m) => m.type === 'G'))
      for (const chunk of copyData(rows, bad)) c.send(chunk)
      c.send(COPY_DONE)
      return [...started, ...transcript(await c.until((m) => m.type === 'Z'))]
    }

    it('COPY FROM STDIN of 200,000 rows with a bad row in the middle: the same error, nothing copied', async () => {
      const got = await onEach(async (c) => {
        await c.roundTrip([query('TRUNCATE copied')])
        const answer = await copyIn(c, ROWS, ROWS / 2)
        const count = transcript(await c.roundTrip([query('SELECT count(*) FROM copied')]))
        return [...answer, ...count]
      })
      assert.deepEqual(got.proxy, got.direct)
      assert.match(got.direct.join('\n'), /22P02/)
    })

    it('COPY FROM STDIN then COPY TO STDOUT of 200,000 rows: the same rows, the same messages', async () => {
      const got = await onEach(async (c) => {
        await c.roundTrip([query('TRUNCATE copied')])
        const answer = await copyIn(c, ROWS, null)
        const out: Message[] = await c.roundTrip([query('COPY (SELECT * FROM copied ORDER BY id) TO STDOUT')])
        const hash = createHash('sha1')
        for (const m of out) hash.update(m.type).update(m.body)
        return { answer, messages: out.length, hash: hash.digest('hex') }
      })
      assert.deepEqual(got.proxy, got.direct)
      assert.equal(got.direct.messages, ROWS + 4) // CopyOutResponse, a CopyData per row, CopyDone, CommandComplete, ReadyForQuery
    })

    it('COPY TO STDOUT that fails mid-stream (a division by zero at row 150,000): the same messages', async () => {
      const got = await onEach(async (c) => {
        const out = await c.roundTrip([
          query(`COPY (SELECT g, 1 / (150000 - g) FROM generate_series(1, ${ROWS}) g) TO STDOUT`),
        ])
        const hash = createHash('sha1')
        for (const m of out) hash.update(m.type).update(m.body)
        return { last: transcript(out.slice(-2)), messages: out.length, hash: hash.digest('hex') }
      })
      assert.deepEqual(got.proxy, got.direct)
      assert.match(got.direct.last.join('\n'), /22012/)
    })

    it('CopyFail from the client mid-stream: the same error and the connection goes on', async () => {
      const got = await onEach(async (c) => {
        c.send(query('COPY copied FROM STDIN'))
        await c.until((m) => m.type === 'G')
        for (const chunk of copyData(50_000, null)) c.send(chunk)
        const writer = new MessageWriter()
        c.send(writer.begin(FrontendCode.CopyFail).cstring('client gave up').end().flush())
        const failed = transcript(await c.until((m) => m.type === 'Z'))
        return [...failed, ...transcript(await c.roundTrip([query('SELECT 1')]))]
      })
      assert.deepEqual(got.proxy, got.direct)
      assert.match(got.direct.join('\n'), /57014/)
    })
  })
}
