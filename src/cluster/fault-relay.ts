// A fault-injecting TCP relay for the harness: forwards a loopback port to a node and can delay, blackhole, reset or refuse.

import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net'

/** What the relay does to traffic right now. */
export type FaultMode =
  | { mode: 'pass' }
  /** Every chunk is held `latencyMs` plus a uniform random `0..jitterMs` (order is kept per direction). */
  | { mode: 'delay'; latencyMs: number; jitterMs?: number }
  /**
   * Nothing is forwarded either way and sockets stay open: a node that is unreachable but not refusing.
   * Like a partition that heals before TCP gives up, held bytes are delivered when the mode changes back.
   */
  | { mode: 'blackhole' }
  /** New connections are accepted and closed at once (a refusing port). */
  | { mode: 'refuse' }

/** Options of {@link startFaultRelay}. */
export interface FaultRelayOptions {
  /** The port to forward to, read per new connection (a restarted node may move). */
  target: () => number
  targetHost?: string
  /** Port to listen on (default: a free one). */
  port?: number
}

interface Pair {
  client: Socket
  server: Socket
  /** Set once either side went away; pending delayed chunks are then dropped. */
  closed: boolean
  /** Restart delivery of each direction's queue (after a blackhole lifts). */
  pumps: (() => void)[]
}

/**
 * A TCP relay between freshet and a node. Point a node's URL at `relay.port` and switch modes while
 * traffic flows.
 *
 * @example
 * const relay = await startFaultRelay({ target: () => cluster.node('replica_1').port })
 * relay.set({ mode: 'delay', latencyMs: 50, jitterMs: 20 })
 * relay.set({ mode: 'blackhole' })   // connections hang, nothing is refused
 * relay.reset()                       // destroys every open connection
 * await relay.close()
 */
export class FaultRelay {
  readonly #server: Server
  readonly #opts: FaultRelayOptions
  readonly #pairs = new Set<Pair>()
  #mode: FaultMode = { mode: 'pass' }

  /** @internal use {@link startFaultRelay} */
  constructor(opts: FaultRelayOptions) {
    this.#opts = opts
    this.#server = createServer((client) => this.#accept(client))
  }

  /** @internal */
  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject)
      this.#server.listen(this.#opts.port ?? 0, '127.0.0.1', () => {
        this.#server.off('error', reject)
        resolve()
      })
    })
  }

  /** The port the relay listens on. */
  get port(): number {
    return (this.#server.address() as AddressInfo).port
  }

  get mode(): FaultMode {
    return this.#mode
  }

  /** Open relayed connections. */
  get connections(): number {
    return this.#pairs.size
  }

  /** Switches the fault mode for new and open connections. */
  set(mode: FaultMode): void {
    const wasHole = this.#mode.mode === 'blackhole'
    this.#mode = mode
    const hole = mode.mode === 'blackhole'
    if (hole === wasHole) return
    for (const p of this.#pairs) {
      // Paused sockets stop reading: the kernel buffers fill and TCP flow control stalls the peers.
      for (const s of [p.client, p.server]) {
        if (hole) s.pause()
        else s.resume()
      }
      if (!hole) for (const pump of p.pumps) pump()
    }
  }

  /** Destroys every open connection in both directions (a reset network); the mode is unchanged. */
  reset(): void {
    for (const p of this.#pairs) this.#drop(p)
  }

  /** Stops listening and destroys every connection. */
  async close(): Promise<void> {
    this.reset()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  #accept(client: Socket): void {
    if (this.#mode.mode === 'refuse') {
      client.destroy()
      return
    }
    client.setNoDelay(true)
    const server = connect({ host: this.#opts.targetHost ?? '127.0.0.1', port: this.#opts.target() })
    server.setNoDelay(true)
    const pair: Pair = { client, server, closed: false, pumps: [] }
    this.#pairs.add(pair)
    if (this.#mode.mode === 'blackhole') {
      client.pause()
      server.pause()
    }
    this.#pipe(pair, client, server)
    this.#pipe(pair, server, client)
    const end = () => this.#drop(pair)
    for (const s of [client, server]) {
      s.on('error', end)
      s.on('close', end)
    }
  }

  /** Forwards `from` to `to` through the current mode, keeping chunk order under random delays. */
  #pipe(pair: Pair, from: Socket, to: Socket): void {
    // Chunks wait in a queue with a release time; each is released no earlier than the previous one,
    // because jitter must not reorder a TCP stream.
    const queue: { at: number; chunk: Buffer }[] = []
    let timer: NodeJS.Timeout | null = null
    const pump = () => {
      timer = null
      if (pair.closed || this.#mode.mode === 'blackhole') return // set() pumps again when it lifts
      const t = Date.now()
      while (queue.length > 0 && queue[0]!.at <= t) to.write(queue.shift()!.chunk)
      if (queue.length > 0) timer = setTimeout(pump, queue[0]!.at - t)
    }
    pair.pumps.push(() => {
      if (timer === null) pump()
    })
    from.on('data', (chunk: Buffer) => {
      const mode = this.#mode
      const wait = mode.mode === 'delay' ? mode.latencyMs + Math.random() * (mode.jitterMs ?? 0) : 0
      queue.push({ at: Math.max(Date.now() + wait, queue.at(-1)?.at ?? 0), chunk })
      if (timer === null) pump()
    })
  }

  #drop(pair: Pair): void {
    if (pair.closed) return
    pair.closed = true
    this.#pairs.delete(pair)
    pair.client.destroy()
    pair.server.destroy()
    pair.pumps.length = 0
  }
}

/** Starts a {@link FaultRelay} on a free loopback port, in `pass` mode. */
export async function startFaultRelay(opts: FaultRelayOptions): Promise<FaultRelay> {
  const relay = new FaultRelay(opts)
  await relay.listen()
  return relay
}
