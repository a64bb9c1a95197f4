// Micro-benchmark of the frame reader: ns per message and heap bytes per message for small messages.
// Run: node --expose-gc --import tsx bench/micro-frame.ts   (without --expose-gc the heap column is rougher)

import { Parser } from 'pg-protocol/dist/parser.js'
import {
  bind,
  commandComplete,
  dataRow,
  execute,
  FrameReader,
  query,
  readyForQuery,
  SYNC,
} from '../src/protocol/index.js'
import { printTable } from './bench-util.js'

const gc = (globalThis as { gc?: () => void }).gc
const CHUNK = 64 * 1024

/** A stream of `count` messages cycling through `pattern`, cut into socket-sized chunks. */
function stream(pattern: Buffer[], count: number): { chunks: Buffer[]; messages: number } {
  const parts: Buffer[] = []
  for (let i = 0; i < count; i++) parts.push(pattern[i % pattern.length]!)
  const all = Buffer.concat(parts)
  const chunks: Buffer[] = []
  for (let o = 0; o < all.length; o += CHUNK) chunks.push(Buffer.from(all.subarray(o, o + CHUNK)))
  return { chunks, messages: count }
}

/** Fresh copies per round: pg-protocol's parser compacts into the chunk it was given, so chunks are not reused. */
function copies(chunks: Buffer[], n: number): Buffer[][] {
  return Array.from({ length: n }, () => chunks.map((c) => Buffer.from(c)))
}

const WARMUP = 3
const ROUNDS = 10

function measure(
  name: string,
  chunks: Buffer[],
  messages: number,
  run: (chunks: Buffer[]) => number,
): string[] {
  const inputs = copies(chunks, WARMUP + ROUNDS)
  for (let i = 0; i < WARMUP; i++) run(inputs[i]!) // warm up the JIT
  let seen = 0
  const t0 = process.hrtime.bigint()
  for (let r = 0; r < ROUNDS; r++) seen += run(inputs[WARMUP + r]!)
  const ns = Number(process.hrtime.bigint() - t0)
  if (seen !== messages * ROUNDS)
    throw new Error(`${name}: saw ${seen} messages, expected ${messages * ROUNDS}`)
  const perMsg = ns / seen
  return [name, perMsg.toFixed(1), (1000 / perMsg).toFixed(2), allocationProbe(chunks, run)]
}

/**
 * Heap bytes per message over one 256 KiB burst: small enough to finish without a young-generation GC,
 * so the heap growth is what the run allocated.
 */
function allocationProbe(chunks: Buffer[], run: (chunks: Buffer[]) => number): string {
  if (!gc) return 'n/a'
  const small = copies(chunks.slice(0, 4), 2)
  run(small[0]!)
  gc()
  const before = process.memoryUsage().heapUsed
  const seen = run(small[1]!)
  const after = process.memoryUsage().heapUsed
  return ((after - before) / seen).toFixed(1)
}

const frontend = [
  bind('', 's1', ['42']),
  execute('', 0),
  SYNC,
  query('SELECT id, name FROM users WHERE id = 1'),
]
const backend = [
  dataRow(['42', 'alice', '2024-06-11 10:00:00+00']),
  commandComplete('SELECT 1'),
  readyForQuery('I'),
]
const COUNT = 200_000

const front = stream(frontend, COUNT)
const back = stream(backend, COUNT)

function frameCodes(chunks: Buffer[]): number {
  const reader = new FrameReader()
  let n = 0
  for (const c of chunks) reader.feed(c, () => n++)
  return n
}

function frameTouching(chunks: Buffer[]): number {
  const reader = new FrameReader()
  let n = 0
  let bytes = 0
  for (const c of chunks) {
    reader.feed(c, (code, body, whole) => {
      n++
      bytes += code + body.length + whole.length
    })
  }
  if (bytes < 0) throw new Error('unreachable')
  return n
}

function frameRaw(chunks: Buffer[]): number {
  const reader = new FrameReader()
  let n = 0
  for (const c of chunks) reader.feedRaw(c, () => n++)
  return n
}

function pgProtocol(chunks: Buffer[]): number {
  const parser = new Parser()
  let n = 0
  for (const c of chunks) parser.parse(c, () => n++)
  return n
}

printTable(
  ['case', 'ns/msg', 'M msg/s', 'heap B/msg'],
  [
    measure('FrameReader, frontend mix (B/E/S/Q)', front.chunks, front.messages, frameCodes),
    measure('FrameReader, backend mix (D/C/Z)', back.chunks, back.messages, frameCodes),
    measure('FrameReader.feedRaw, frontend mix', front.chunks, front.messages, frameRaw),
    measure('FrameReader.feedRaw, backend mix', back.chunks, back.messages, frameRaw),
    measure('FrameReader, backend, reading body+whole', back.chunks, back.messages, frameTouching),
    measure('pg-protocol Parser, backend mix (decodes)', back.chunks, back.messages, pgProtocol),
  ],
)
console.log(
  `${COUNT} messages per round, ${CHUNK}-byte chunks, node ${process.version}${gc ? '' : ' (heap column needs --expose-gc)'}`,
)
