// Incremental framer for PostgreSQL protocol 3.0: socket chunks in, whole messages out as views, no copies.

import { STARTUP_FRAME, StartupCode } from './message-codes.js'
import { ProtocolError } from './protocol-error.js'

// every regular message: 1 byte code, then int32 length that counts itself but not the code
const HEADER_LENGTH = 5
// every startup-phase packet: int32 length (counting itself), then int32 version or request code
const STARTUP_HEADER_LENGTH = 8
// PostgreSQL's MAX_STARTUP_PACKET_LENGTH (src/include/libpq/pqcomm.h)
const MAX_STARTUP_LENGTH = 10000
/** Default cap on one message's length field: 256 MiB. PostgreSQL's own cap for most messages is 1 GiB. */
export const DEFAULT_MAX_MESSAGE_SIZE = 256 * 1024 * 1024
// bounds on the buffer we own for messages that span chunks
const MIN_SPARE = 16 * 1024
const MAX_PREALLOCATE = 8 * 1024 * 1024
const MAX_RETAINED_SPARE = 1024 * 1024
const EMPTY = Buffer.alloc(0)

/**
 * Receives each complete message. `body` is the payload after the header, `whole` the message with its
 * header: both are views into the received bytes (or into the reader's own buffer when a message spanned
 * chunks), never overwritten later, so `whole` may be queued on a socket as is. Call `reader.pause()`
 * to stop after this message: the rest stays buffered until `resume()` or the next `feed()`.
 *
 * For startup-phase packets `code` is {@link STARTUP_FRAME} (-1) and `body` starts with the int32
 * protocol version or request code.
 */
export type FrameHandler = (code: number, body: Buffer, whole: Buffer) => void

/**
 * The allocation-free form of {@link FrameHandler}: the message is `buffer[start, end)`, its body starts
 * at `start + frameHeaderLength(code)`. Nothing is created per message; make views only where needed
 * (e.g. one `subarray` over a run of messages to forward them in a single write). The same lifetime rule
 * holds: the bytes are never overwritten later.
 */
export type RawFrameHandler = (code: number, buffer: Buffer, start: number, end: number) => void

/** Header bytes before the body: 4 for a startup-phase packet (length only), 5 otherwise (code, length). */
export function frameHeaderLength(code: number): number {
  return code === STARTUP_FRAME ? 4 : HEADER_LENGTH
}

export interface FrameReaderOptions {
  /** Largest length field accepted, in bytes; a larger one is a {@link ProtocolError}. Default 256 MiB. */
  maxMessageSize?: number
  /**
   * Start in startup mode (a client connection): packets without a type byte until a StartupMessage,
   * then regular messages. Default false (a server connection, or a client past startup).
   */
  startup?: boolean
  /**
   * Chunks are reused by the caller after `feedRaw()` returns (a socket's `onread` buffer): the reader
   * then copies an incomplete message's bytes into its own buffer before returning, and views of a
   * chunk are valid only until the handler returns. Default false (views are never overwritten).
   */
  transientChunks?: boolean
}

/**
 * Frames a byte stream into PostgreSQL messages. Feed it every chunk a socket delivers, split anywhere;
 * it calls the handler once per complete message, synchronously, in order. Malformed input (a length
 * below the minimum or above the cap) throws {@link ProtocolError} from `feed()` and poisons the reader:
 * close that connection.
 *
 * In startup mode, after an SSLRequest, GSSENCRequest or CancelRequest the reader stops and keeps what
 * follows buffered: `buffered > 0` then means the client sent bytes before the TLS handshake, which a
 * server must refuse (CVE-2021-23214). After a StartupMessage it switches to regular messages by itself.
 *
 * @example
 * const reader = new FrameReader({ startup: true })
 * socket.on('data', (chunk) => {
 *   try {
 *     reader.feed(chunk, (code, body, whole) => {
 *       if (code === FrontendCode.Query) route(decodeQuery(body), whole)
 *       else server.write(whole)
 *     })
 *   } catch (err) {
 *     if (err instanceof ProtocolError) closeWithError(socket, err)
 *     else throw err
 *   }
 * })
 */
export class FrameReader {
  readonly maxMessageSize: number
  #startup: boolean
  readonly #transient: boolean
  #buffer: Buffer = EMPTY
  #offset = 0
  #end = 0
  // A buffer we own for messages that span chunks. Bytes below #spareFree may have been handed out as
  // views and are never written again; we move on to a fresh buffer instead of compacting in place.
  #spare: Buffer = EMPTY
  #spareFree = 0
  // total length of the incomplete message at #offset, when its header has arrived
  #expected = 0
  #failed: ProtocolError | null = null
  #busy = false
  #paused = false
  #viewHandler: FrameHandler | null = null
  // turns the raw callback into views; made once per reader so feed() allocates nothing per chunk
  readonly #toViews: RawFrameHandler = (code, buffer, start, end) => {
    this.#viewHandler!(
      code,
      buffer.subarray(start + frameHeaderLength(code), end),
      buffer.subarray(start, end),
    )
  }

  constructor(options: FrameReaderOptions = {}) {
    this.maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE
    this.#startup = options.startup ?? false
    this.#transient = options.transientChunks ?? false
  }

  /** Bytes received but not yet delivered (an incomplete message, or what follows a stop). */
  get buffered(): number {
    return this.#end - this.#offset
  }

  /** 'startup' while packets have no type byte, else 'regular'. */
  get mode(): 'startup' | 'regular' {
    return this.#startup ? 'startup' : 'regular'
  }

  /**
   * Go back to startup mode. Rarely needed: the reader stays in startup mode by itself after an SSLRequest
   * or GSSENCRequest, since a StartupMessage follows the answer to either.
   */
  expectStartup(): void {
    this.#startup = true
  }

  /**
   * Adds a chunk and delivers every complete message in it to `onFrame`, as two views each.
   * @throws {ProtocolError} on an invalid or oversized length; the reader is unusable afterwards.
   */
  feed(chunk: Buffer, onFrame: FrameHandler): void {
    if (this.#busy) throw new Error('FrameReader fed from inside its own handler')
    this.#viewHandler = onFrame
    try {
      this.feedRaw(chunk, this.#toViews)
    } finally {
      this.#viewHandler = null
    }
  }

  /**
   * Like `feed()`, but reports each message as a range of a buffer, creating no object per message.
   * @example
   * reader.feedRaw(chunk, (code, buf, start, end) => {
   *   if (code === FrontendCode.Query) route(decodeQuery(buf.subarray(start + 5, end)))
   * })
   */
  feedRaw(chunk: Buffer, onFrame: RawFrameHandler): void {
    if (this.#failed) throw this.#failed
    if (this.#busy) throw new Error('FrameReader fed from inside its own handler')
    if (chunk.length > 0) this.#append(chunk)
    this.#busy = true
    this.#paused = false
    try {
      // each drain returns true when a message switched the mode and parsing goes on in the other one
      let more = true
      while (more) more = this.#startup ? this.#drainStartup(onFrame) : this.#drain(onFrame)
    } finally {
      this.#busy = false
      if (this.#offset === this.#end) this.#release()
      else if (this.#transient && this.#buffer !== this.#spare && !this.#failed) this.#keepRest()
    }
  }

  /** Copies what is left of a chunk the caller will reuse into our own buffer. */
  #keepRest(): void {
    this.#moveToSpare(EMPTY)
  }

  /** Moves the unread bytes, then `chunk`, to the free part of our own buffer (a fresh one if too small). */
  #moveToSpare(chunk: Buffer): void {
    const left = this.#end - this.#offset
    const need = left + chunk.length
    if (this.#spare.length - this.#spareFree < need) {
      let size = Math.max(need + (need >> 1), MIN_SPARE)
      if (this.#expected > size && this.#expected <= MAX_PREALLOCATE) size = this.#expected
      this.#spare = Buffer.allocUnsafeSlow(size)
      this.#spareFree = 0
    }
    const at = this.#spareFree
    this.#buffer.copy(this.#spare, at, this.#offset, this.#end)
    chunk.copy(this.#spare, at + left)
    this.#buffer = this.#spare
    this.#offset = at
    this.#end = at + need
    this.#spareFree = this.#end
  }

  /**
   * Called from a handler: deliver nothing more from this `feed()`. The rest stays buffered until
   * `resume()` or the next `feed()` (e.g. while the proxy waits for a server connection).
   */
  pause(): void {
    this.#paused = true
  }

  /** Delivers what is still buffered after a `pause()`. */
  resume(onFrame: FrameHandler): void {
    this.feed(EMPTY, onFrame)
  }

  /** `resume()` for {@link RawFrameHandler}s. */
  resumeRaw(onFrame: RawFrameHandler): void {
    this.feedRaw(EMPTY, onFrame)
  }

  #append(chunk: Buffer): void {
    const left = this.#end - this.#offset
    if (left === 0) {
      // the common case: messages that lie in one chunk are delivered as views of the chunk itself
      this.#buffer = chunk
      this.#offset = 0
      this.#end = chunk.length
      return
    }
    if (this.#buffer === this.#spare && this.#spare.length - this.#end >= chunk.length) {
      chunk.copy(this.#spare, this.#end)
      this.#end += chunk.length
      this.#spareFree = this.#end
      return
    }
    this.#moveToSpare(chunk)
  }

  #release(): void {
    this.#buffer = EMPTY
    this.#offset = 0
    this.#end = 0
    this.#expected = 0
    if (this.#spare.length > MAX_RETAINED_SPARE) {
      this.#spare = EMPTY
      this.#spareFree = 0
    }
  }

  #fail(message: string, details: Record<string, unknown>): never {
    this.#failed = new ProtocolError(message, details)
    this.#buffer = EMPTY
    this.#offset = 0
    this.#end = 0
    this.#spare = EMPTY
    this.#spareFree = 0
    throw this.#failed
  }

  #drain(onFrame: RawFrameHandler): boolean {
    const buf = this.#buffer
    const end = this.#end
    let offset = this.#offset
    while (end - offset >= HEADER_LENGTH) {
      const code = buf[offset]!
      // int32 big-endian, read by hand: readInt32BE's bounds checks cost more than the read itself
      const length =
        (buf[offset + 1]! << 24) | (buf[offset + 2]! << 16) | (buf[offset + 3]! << 8) | buf[offset + 4]!
      if (length < 4) this.#fail(`invalid message length ${length}`, { code, length })
      if (length > this.maxMessageSize) {
        this.#fail(`message length ${length} exceeds the limit of ${this.maxMessageSize}`, { code, length })
      }
      const total = length + 1
      if (end - offset < total) {
        this.#expected = total
        break
      }
      const start = offset
      offset += total
      this.#offset = offset
      this.#expected = 0
      // the handler may stop us, or switch modes: state is committed before it runs
      onFrame(code, buf, start, offset)
      if (this.#paused) return false
      if (this.#startup) return true
    }
    this.#offset = offset
    return false
  }

  #drainStartup(onFrame: RawFrameHandler): boolean {
    const buf = this.#buffer
    const end = this.#end
    let offset = this.#offset
    while (end - offset >= 4) {
      const length =
        (buf[offset]! << 24) | (buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!
      if (length < STARTUP_HEADER_LENGTH || length > MAX_STARTUP_LENGTH) {
        this.#fail(`invalid startup packet length ${length}`, { length })
      }
      if (end - offset < length) {
        this.#expected = length
        break
      }
      const start = offset
      offset += length
      this.#offset = offset
      this.#expected = 0
      const request =
        (buf[start + 4]! << 24) | (buf[start + 5]! << 16) | (buf[start + 6]! << 8) | buf[start + 7]!
      const isRequest =
        request === StartupCode.SSLRequest ||
        request === StartupCode.GSSENCRequest ||
        request === StartupCode.CancelRequest
      if (!isRequest) this.#startup = false
      onFrame(STARTUP_FRAME, buf, start, offset)
      if (this.#paused || isRequest) return false
      if (!this.#startup) return true
    }
    this.#offset = offset
    return false
  }
}
