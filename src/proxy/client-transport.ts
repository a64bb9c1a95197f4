// A proxy client's socket: reading and framing its bytes, the switch to TLS, the hand-off to the admin
// console, and pausing reads while too much is queued. The client session writes through it.

import { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { FrameReader, type RawFrameHandler } from '../protocol/index.js'

const READ_BUFFER_SIZE = 64 * 1024

/** The internals of an accepted socket that {@link adoptAccepted} moves to a socket of its own. */
interface AcceptedInternals {
  _handle: unknown
  _server: unknown
  server: unknown
}

/**
 * An accepted client socket remade to read through `onread` (a plain-text listener created with
 * `pauseOnConnect`; TLS clients keep Node's default path, which the TLS upgrade needs): every read lands
 * in one buffer of the socket's own, and `deliver` gets a copy of just the bytes read. Node's default
 * read path allocates a 64 KiB buffer per read and passes each through Readable.push and a 'data'
 * event (measured: ~0.8 µs per read, a few per cent of the proxy's CPU per transaction). Hand-written:
 * net.Socket takes `onread` only at construction, so the accepted handle moves to a new Socket (the
 * server's own connection count moves with it). These are Node's internals, hence the casts here.
 */
export function adoptAccepted(raw: Socket, deliver: (chunk: Buffer) => void): Socket | null {
  const from = raw as unknown as AcceptedInternals
  if (!from._handle) return null // closed already: the default path reports it
  const buffer = Buffer.allocUnsafeSlow(READ_BUFFER_SIZE)
  const socket = new Socket({
    handle: from._handle,
    readable: true,
    writable: true,
    onread: {
      buffer,
      callback: (n: number): boolean => {
        // a copy of n bytes (pooled below 4 KiB): jobs and queued writes may keep views of a chunk
        const chunk = Buffer.allocUnsafe(n)
        buffer.copy(chunk, 0, 0, n)
        deliver(chunk)
        return true // false would pause the socket
      },
    },
  } as ConstructorParameters<typeof Socket>[0])
  const to = socket as unknown as AcceptedInternals
  to._server = from._server
  to.server = from.server
  from._server = null
  from._handle = null
  raw.destroy() // the handle is no longer its own: nothing to close, and it counts for no server
  return socket
}

/** What the transport tells the client session. */
export interface ClientTransportEvents {
  /** One framed message of the client (see FrameReader.feedRaw). */
  readonly frame: RawFrameHandler
  /**
   * Reading failed: a malformed message, or an error the session threw while handling one. `framed`:
   * a frame of this chunk reached the session, so the error is about its content, not its framing.
   */
  failed(err: unknown, framed: boolean): void
  /** The socket closed or failed. */
  closed(): void
}

/**
 * The client socket and its framing (startup packet first, then typed messages).
 *
 * @example
 * const transport = new ClientTransport(socket, { frame, failed: (err) => fatal(err), closed: () => close() })
 * transport.write(readyForQuery('I'))
 */
export class ClientTransport {
  #socket: Socket
  readonly #reader = new FrameReader({ startup: true })
  readonly #events: ClientTransportEvents
  /** A frame of the current chunk reached the session. */
  #framed = false
  #readPaused = false
  #secure = false
  /** The socket that reads through `onread` (adoptAccepted): its chunks come to #onRead, not as 'data'. */
  readonly #adopted: Socket | null
  /** Handed off (admin console) or upgraded: chunks of an adopted socket go out as 'data' events. */
  #detached = false

  /**
   * `socket`: accepted and paused (`pauseOnConnect`). `adopt`: read it through `onread`
   * ({@link adoptAccepted}); else Node's default path (a TLS listener: the upgrade wraps it).
   */
  constructor(socket: Socket, events: ClientTransportEvents, adopt = false) {
    this.#events = events
    this.#adopted = adopt ? adoptAccepted(socket, this.#onRead) : null
    this.#socket = this.#adopted ?? socket
    this.#socket.setNoDelay(true)
    this.#listen(this.#socket)
    if (this.#adopted === null) socket.resume()
  }

  /** The socket now (a TLS socket after the upgrade). */
  get socket(): Socket {
    return this.#socket
  }

  /** Bytes read from the client but not yet handled. */
  get buffered(): number {
    return this.#reader.buffered
  }

  /**
   * A write may keep its buffer past the call: the socket queues (a slow client), or TLS (which may
   * hold the cleartext until its handshake or a renegotiation is done). Asked before a write (copy
   * what will be kept) and after one (a write of a view that did not complete at once).
   */
  get holdsWrites(): boolean {
    return this.#secure || this.#socket.writableLength > 0
  }

  /** Writes to the client; false when the socket buffers (see ServerConnection.pauseUntilDrained). */
  write(bytes: Buffer): boolean {
    return this.#socket.write(bytes)
  }

  /** Ends the socket after `last` (if given); never throws on a socket that is already gone. */
  end(last?: Buffer): void {
    try {
      if (last) this.#socket.end(last)
      else this.#socket.end()
    } catch {
      // the socket is already gone
    }
  }

  destroySoon(): void {
    this.#socket.destroySoon()
  }

  /** Stops reading until resume(): the client queued more than the session will take for now. */
  pause(): void {
    if (this.#readPaused) return
    this.#readPaused = true
    this.#socket.pause()
  }

  resume(): void {
    if (!this.#readPaused) return
    this.#readPaused = false
    this.#socket.resume()
  }

  get paused(): boolean {
    return this.#readPaused
  }

  /** The client switches to TLS: read and write the socket `wrap` makes of the plain one from now on. */
  upgrade(wrap: (raw: Socket) => TLSSocket): void {
    const secure = wrap(this.detach())
    this.#socket = secure
    this.#secure = true
    this.#listen(secure)
  }

  /** Stops listening on the socket and returns it (TLS upgrade, admin console hand-off). */
  detach(): Socket {
    const raw = this.#socket
    raw.removeListener('data', this.#onData)
    raw.removeAllListeners('error')
    raw.removeAllListeners('close')
    this.#detached = true
    return raw
  }

  #listen(socket: Socket): void {
    this.#detached = false
    if (socket !== this.#adopted) socket.on('data', this.#onData)
    socket.on('error', () => this.#events.closed())
    socket.on('close', () => this.#events.closed())
  }

  readonly #onRead = (chunk: Buffer): void => {
    // whoever took the socket over (the admin console) reads it as a stream
    if (this.#detached) this.#adopted?.emit('data', chunk)
    else this.#onData(chunk)
  }

  readonly #onFrame: RawFrameHandler = (code, buf, start, end) => {
    this.#framed = true
    this.#events.frame(code, buf, start, end)
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#framed = false
    try {
      this.#reader.feedRaw(chunk, this.#onFrame)
    } catch (err) {
      this.#events.failed(err, this.#framed)
    }
  }
}
