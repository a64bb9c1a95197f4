// The harness's fault relay against a plain TCP echo server: pass, delay, blackhole, reset, refuse.

import assert from 'node:assert/strict'
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { type FaultRelay, startFaultRelay } from '../../../src/cluster/fault-relay.js'
import { eventually } from '../../support/eventually.js'

/** A client that collects everything it receives. */
async function open(
  port: number,
): Promise<{ socket: Socket; received: () => string; closed: () => boolean }> {
  const socket = connect({ host: '127.0.0.1', port })
  let data = ''
  let closed = false
  socket.on('data', (d) => {
    data += d.toString()
  })
  socket.on('error', () => {})
  socket.on('close', () => {
    closed = true
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve())
    socket.once('error', reject)
  })
  return { socket, received: () => data, closed: () => closed }
}

describe('fault relay', () => {
  let echo: Server
  let relay: FaultRelay
  const serverSockets = new Set<Socket>()

  before(async () => {
    echo = createServer((s) => {
      serverSockets.add(s)
      s.on('close', () => serverSockets.delete(s))
      s.on('error', () => {})
      s.pipe(s)
    })
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()))
    relay = await startFaultRelay({ target: () => (echo.address() as AddressInfo).port })
  })

  after(async () => {
    await relay.close()
    for (const s of serverSockets) s.destroy()
    await new Promise<void>((r) => echo.close(() => r()))
  })

  it('passes bytes both ways unchanged', async () => {
    relay.set({ mode: 'pass' })
    const c = await open(relay.port)
    c.socket.write('hello ')
    c.socket.write('world')
    await eventually('echo', () => c.received() === 'hello world')
    c.socket.destroy()
  })

  it('delays every chunk by at least the latency and keeps order under jitter', async () => {
    relay.set({ mode: 'delay', latencyMs: 40, jitterMs: 30 })
    const c = await open(relay.port)
    const started = Date.now()
    const expected: string[] = []
    for (let i = 0; i < 20; i++) {
      const part = `<${i}>`
      expected.push(part)
      c.socket.write(part)
    }
    await eventually('delayed echo', () => c.received() === expected.join(''))
    // two hops (to the server and back), each at least 40 ms
    assert.ok(Date.now() - started >= 80, `echo came back after ${Date.now() - started} ms`)
    c.socket.destroy()
    relay.set({ mode: 'pass' })
  })

  it('blackholes without closing: nothing arrives, sockets stay open, held bytes flow when it lifts', async () => {
    relay.set({ mode: 'pass' })
    const c = await open(relay.port)
    c.socket.write('a')
    await eventually('first echo', () => c.received() === 'a')
    relay.set({ mode: 'blackhole' })
    c.socket.write('lost')
    // A new connection is accepted (not refused) but hangs as well.
    const d = await open(relay.port)
    d.socket.write('also lost')
    const deadline = Date.now() + 150
    await eventually('the blackhole window', () => Date.now() >= deadline || c.received() !== 'a')
    assert.equal(c.received(), 'a')
    assert.equal(d.received(), '')
    assert.equal(c.closed(), false)
    assert.equal(d.closed(), false)
    assert.equal(relay.connections, 2)
    relay.set({ mode: 'pass' })
    c.socket.write('b')
    await eventually('held bytes, then new ones', () => c.received() === 'alostb')
    await eventually('the connection opened during the blackhole works', () => d.received() === 'also lost')
    c.socket.destroy()
    d.socket.destroy()
  })

  it('reset destroys every open connection', async () => {
    relay.set({ mode: 'pass' })
    const a = await open(relay.port)
    const b = await open(relay.port)
    await eventually('both relayed', () => relay.connections >= 2)
    relay.reset()
    await eventually('both closed', () => a.closed() && b.closed())
    await eventually('relay forgot them', () => relay.connections === 0)
  })

  it('refuse closes new connections at once and leaves open ones alone', async () => {
    relay.set({ mode: 'pass' })
    const kept = await open(relay.port)
    relay.set({ mode: 'refuse' })
    const refused = await open(relay.port)
    await eventually('refused closed', () => refused.closed())
    assert.equal(refused.received(), '')
    relay.set({ mode: 'pass' })
    kept.socket.write('still here')
    await eventually('kept echo', () => kept.received() === 'still here')
    kept.socket.destroy()
  })
})
