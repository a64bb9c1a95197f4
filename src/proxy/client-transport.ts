// A proxy client's socket: reading and framing its bytes, the switch to TLS, the hand-off to the admin
// console, and pausing reads while too much is queued. The client session writes through it.

import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { FrameReader, type RawFrameHandler } from '../protocol/index.js'

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

  constructor(socket: Socket, events: ClientTransportEvents) {
    this.#socket = socket
    this.#events = events
    socket.setNoDelay(true)
    this.#listen(socket)
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
   * A write may keep its buffer past the call: the socket already queues (a slow client), or TLS
   * (which may hold the cleartext until its handshake or a renegotiation is done). Else a write of a
   * view either completes at once or shows in {@link queued}.
   */
  get holdsWrites(): boolean {
    return this.#secure || this.#socket.writableLength > 0
  }

  /** Bytes written but not yet taken by the kernel. */
  get queued(): number {
    return this.#socket.writableLength
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
    return raw
  }

  #listen(socket: Socket): void {
    socket.on('data', this.#onData)
    socket.on('error', () => this.#events.closed())
    socket.on('close', () => this.#events.closed())
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
