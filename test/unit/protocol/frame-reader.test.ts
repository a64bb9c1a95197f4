// The frame reader yields identical messages however the stream is split, and fails only with ProtocolError.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  bind,
  close,
  commandComplete,
  dataRow,
  describe as describeMessage,
  execute,
  FrameReader,
  frameHeaderLength,
  ProtocolError,
  parse,
  query,
  readyForQuery,
  SSL_REQUEST,
  STARTUP_FRAME,
  SYNC,
  startupMessage,
  TERMINATE,
} from '../../../src/protocol/index.js'
import { seededRandom } from '../../chaos/seeded-random.js'

interface Frame {
  code: number
  body: Buffer
  whole: Buffer
}

// a typical extended-protocol exchange plus a large message and bodiless ones
const MESSAGES: Buffer[] = [
  query('SELECT 1'),
  parse('s1', 'SELECT $1::int', [23]),
  bind('', 's1', ['42']),
  describeMessage('P', ''),
  execute('', 0),
  SYNC,
  query(`SELECT '${'x'.repeat(700)}'`),
  close('S', 's1'),
  dataRow(['a', null, 'ü']),
  commandComplete('SELECT 1'),
  readyForQuery('I'),
  TERMINATE,
]
const STREAM = Buffer.concat(MESSAGES)

function expected(): Frame[] {
  return MESSAGES.map((m) => ({ code: m[0]!, body: Buffer.from(m.subarray(5)), whole: Buffer.from(m) }))
}

/** Feeds the chunks and returns the frames as delivered (views, not copies). */
function collect(reader: FrameReader, chunks: Buffer[]): Frame[] {
  const out: Frame[] = []
  for (const c of chunks) reader.feed(c, (code, body, whole) => out.push({ code, body, whole }))
  return out
}

function splitAt(buf: Buffer, ...offsets: number[]): Buffer[] {
  const out: Buffer[] = []
  let from = 0
  for (const o of offsets) {
    out.push(Buffer.from(buf.subarray(from, o)))
    from = o
  }
  out.push(Buffer.from(buf.subarray(from)))
  return out
}

/** Deterministic PRNG so fuzz failures reproduce. */
const prng = seededRandom

describe('FrameReader', () => {
  it('yields every message of one chunk, as views into it', () => {
    const frames = collect(new FrameReader(), [STREAM])
    assert.deepEqual(frames, expected())
    assert.equal(frames[0]!.whole.buffer, STREAM.buffer, 'no copy when a message lies in one chunk')
  })

  it('yields identical messages when the stream is split at every offset', () => {
    for (let i = 0; i <= STREAM.length; i++) {
      assert.deepEqual(collect(new FrameReader(), splitAt(STREAM, i)), expected(), `split at ${i}`)
    }
  })

  it('yields identical messages when split at every pair of offsets in the first 200 bytes', () => {
    for (let i = 0; i <= 200; i++) {
      for (let j = i; j <= 200; j++) {
        assert.deepEqual(collect(new FrameReader(), splitAt(STREAM, i, j)), expected(), `split at ${i},${j}`)
      }
    }
  })

  it('yields identical messages fed one byte at a time, and earlier views stay intact', () => {
    const bytes = [...STREAM].map((b) => Buffer.from([b]))
    const frames = collect(new FrameReader(), bytes)
    // compared after the whole stream went through: views handed out early must not have been overwritten
    assert.deepEqual(frames, expected())
  })

  it('yields identical messages for random chunkings', () => {
    const rand = prng(7)
    for (let n = 0; n < 300; n++) {
      const cuts: number[] = []
      for (let o = Math.floor(rand() * 40); o < STREAM.length; o += 1 + Math.floor(rand() * 300)) cuts.push(o)
      assert.deepEqual(collect(new FrameReader(), splitAt(STREAM, ...cuts)), expected())
    }
  })

  it('keeps a partial message buffered until the rest arrives', () => {
    const reader = new FrameReader()
    const frames = collect(reader, [STREAM.subarray(0, 7)])
    assert.equal(frames.length, 0)
    assert.equal(reader.buffered, 7)
    collect(reader, [STREAM.subarray(7, MESSAGES[0]!.length)])
    assert.equal(reader.buffered, 0)
  })

  it('pause() stops delivery and resume() continues', () => {
    const reader = new FrameReader()
    const codes: number[] = []
    reader.feed(STREAM, (code) => {
      codes.push(code)
      if (codes.length === 2) reader.pause()
    })
    assert.equal(codes.length, 2)
    assert.equal(reader.buffered, STREAM.length - MESSAGES[0]!.length - MESSAGES[1]!.length)
    reader.resume((code) => codes.push(code))
    assert.deepEqual(
      codes,
      MESSAGES.map((m) => m[0]),
    )
  })

  it('rejects a length below 4, a negative length and an oversized message with ProtocolError', () => {
    const cases = [
      Buffer.from([0x51, 0, 0, 0, 3]),
      Buffer.from([0x51, 0xff, 0xff, 0xff, 0xff]),
      Buffer.from([0x51, 0x80, 0, 0, 0]),
      Buffer.from([0x51, 0, 0, 0x10, 0x01]),
    ]
    for (const bad of cases) {
      const reader = new FrameReader({ maxMessageSize: 4096 })
      assert.throws(() => reader.feed(Buffer.concat([query('SELECT 1'), bad]), () => {}), ProtocolError)
      // poisoned: the connection is to be closed, later input keeps failing
      assert.throws(() => reader.feed(query('SELECT 1'), () => {}), ProtocolError)
    }
  })

  it('reports the oversize as soon as the header arrives, before the body', () => {
    const reader = new FrameReader({ maxMessageSize: 1000 })
    assert.throws(
      () => reader.feed(Buffer.from([0x51, 0, 0, 0x10, 0]), () => {}),
      (err: unknown) =>
        err instanceof ProtocolError && err.sqlState === '08P01' && /exceeds/.test(err.message),
    )
  })
})

describe('FrameReader startup mode', () => {
  const startup = startupMessage({ user: 'app', database: 'main' })

  it('frames a StartupMessage then switches to regular messages in the same chunk', () => {
    const reader = new FrameReader({ startup: true })
    const all = Buffer.concat([startup, query('SELECT 1'), SYNC])
    for (let i = 0; i <= all.length; i++) {
      const r = new FrameReader({ startup: true })
      const frames = collect(r, splitAt(all, i))
      assert.deepEqual(
        frames.map((f) => f.code),
        [STARTUP_FRAME, 0x51, 0x53],
        `split at ${i}`,
      )
      assert.deepEqual(frames[0]!.whole, startup)
      assert.equal(r.mode, 'regular')
    }
    assert.equal(reader.mode, 'startup')
  })

  it('stops after an SSLRequest so bytes sent before the handshake are visible', () => {
    const reader = new FrameReader({ startup: true })
    const frames = collect(reader, [Buffer.concat([SSL_REQUEST, startup])])
    assert.equal(frames.length, 1)
    assert.deepEqual(frames[0]!.whole, SSL_REQUEST)
    assert.equal(reader.buffered, startup.length, 'the caller must refuse data that preceded TLS')
    assert.equal(reader.mode, 'startup')
    // answered 'N': the client may go on in plaintext
    const rest: number[] = []
    reader.resume((code) => rest.push(code))
    assert.deepEqual(rest, [STARTUP_FRAME])
    assert.equal(reader.mode, 'regular')
  })

  it('rejects startup lengths below 8 or above 10000', () => {
    for (const length of [0, 7, -1, 10001]) {
      const bad = Buffer.alloc(8)
      bad.writeInt32BE(length, 0)
      assert.throws(() => new FrameReader({ startup: true }).feed(bad, () => {}), ProtocolError)
    }
  })
})

describe('FrameReader fuzz', () => {
  it('random and mutated streams throw nothing but ProtocolError', () => {
    const rand = prng(20240611)
    let protocolErrors = 0
    let delivered = 0
    for (let n = 0; n < 4000; n++) {
      let input: Buffer
      if (n % 4 === 0) {
        input = Buffer.alloc(1 + Math.floor(rand() * 200))
        for (let i = 0; i < input.length; i++) input[i] = Math.floor(rand() * 256)
      } else {
        input = Buffer.from(STREAM)
        const flips = 1 + Math.floor(rand() * 6)
        for (let f = 0; f < flips; f++) input[Math.floor(rand() * input.length)] = Math.floor(rand() * 256)
      }
      const reader = new FrameReader({ startup: n % 3 === 0, maxMessageSize: 1 << 20 })
      const cuts: number[] = []
      for (let o = Math.floor(rand() * 50); o < input.length; o += 1 + Math.floor(rand() * 120)) cuts.push(o)
      try {
        for (const chunk of splitAt(input, ...cuts)) {
          reader.feed(chunk, (_code, body, whole) => {
            delivered++
            assert.ok(whole.length >= body.length)
          })
          if (reader.mode === 'startup' && reader.buffered > 0) reader.resume(() => delivered++)
        }
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err
        protocolErrors++
      }
    }
    assert.ok(protocolErrors > 0 && delivered > 0, `errors ${protocolErrors}, frames ${delivered}`)
  })
})

describe('FrameReader.feedRaw', () => {
  it('reports the same messages as ranges, for every split offset', () => {
    for (let i = 0; i <= STREAM.length; i += 7) {
      const reader = new FrameReader()
      const frames: Frame[] = []
      for (const c of splitAt(STREAM, i)) {
        reader.feedRaw(c, (code, buf, start, end) => {
          const body = buf.subarray(start + frameHeaderLength(code), end)
          frames.push({ code, body, whole: buf.subarray(start, end) })
        })
      }
      assert.deepEqual(frames, expected(), `split at ${i}`)
    }
  })

  it('with transientChunks, survives the caller overwriting each chunk after feedRaw returns', () => {
    const rand = prng(7)
    for (let round = 0; round < 50; round++) {
      const reader = new FrameReader({ transientChunks: true })
      const reused = Buffer.alloc(64)
      const frames: Frame[] = []
      let at = 0
      while (at < STREAM.length) {
        const n = Math.min(1 + Math.floor(rand() * reused.length), STREAM.length - at)
        STREAM.copy(reused, 0, at, at + n)
        at += n
        // views are only valid inside the handler: copy there, as a socket's onread user must
        reader.feedRaw(reused.subarray(0, n), (code, buf, start, end) => {
          const whole = Buffer.from(buf.subarray(start, end))
          frames.push({ code, body: whole.subarray(frameHeaderLength(code)), whole })
        })
        reused.fill(0xee)
      }
      assert.deepEqual(frames, expected(), `round ${round}`)
    }
  })

  it('reports startup packets with STARTUP_FRAME (-1) and a 4-byte header', () => {
    const reader = new FrameReader({ startup: true })
    const seen: [number, number][] = []
    reader.feedRaw(Buffer.concat([startupMessage({ user: 'u' }), SYNC]), (code, _buf, start, end) => {
      seen.push([code, end - start - frameHeaderLength(code)])
    })
    assert.deepEqual(seen, [
      [STARTUP_FRAME, startupMessage({ user: 'u' }).length - 4],
      [0x53, 0],
    ])
  })

  it('refuses to be fed from inside its own handler, and keeps working', () => {
    const reader = new FrameReader()
    const codes: number[] = []
    assert.throws(
      () => reader.feed(query('SELECT 1'), () => reader.feed(SYNC, () => {})),
      /inside its own handler/,
    )
    reader.feed(SYNC, (code) => codes.push(code))
    assert.deepEqual(codes, [0x53])
  })
})
