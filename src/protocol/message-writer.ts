// A reused growing writer that builds one or more protocol messages and hands out exact-size copies.

// every message: 1 byte code, then int32 length that counts itself but not the code
const HEADER_LENGTH = 5

/**
 * Builds messages into one internal buffer that grows by half and is reused; `flush()` returns a fresh
 * exact-size Buffer (from Node's small-buffer pool when short), so what it returns may be queued on a
 * socket while the writer goes on. Several messages can be built back to back and flushed as one Buffer.
 *
 * @example
 * const w = new MessageWriter()
 * w.begin(BackendCode.ParameterStatus).cstring('server_version').cstring('17.0').end()
 * w.begin(BackendCode.ReadyForQuery).int8(0x49).end()
 * socket.write(w.flush())
 */
export class MessageWriter {
  #buffer: Buffer
  #offset = 0
  #header = -1

  constructor(size = 1024) {
    this.#buffer = Buffer.allocUnsafe(size)
  }

  #ensure(n: number): void {
    if (this.#buffer.length - this.#offset < n) {
      const old = this.#buffer
      this.#buffer = Buffer.allocUnsafe(old.length + (old.length >> 1) + n)
      old.copy(this.#buffer, 0, 0, this.#offset)
    }
  }

  /** Starts a message with a type byte; its length is filled in by `end()`. */
  begin(code: number): this {
    this.#ensure(HEADER_LENGTH)
    this.#buffer[this.#offset] = code
    this.#header = this.#offset + 1
    this.#offset += HEADER_LENGTH
    return this
  }

  /** Starts a startup-phase packet: no type byte, just the int32 length filled in by `end()`. */
  beginUntyped(): this {
    this.#ensure(4)
    this.#header = this.#offset
    this.#offset += 4
    return this
  }

  int8(n: number): this {
    this.#ensure(1)
    this.#buffer[this.#offset++] = n & 0xff
    return this
  }

  int16(n: number): this {
    this.#ensure(2)
    this.#buffer.writeUInt16BE(n & 0xffff, this.#offset)
    this.#offset += 2
    return this
  }

  int32(n: number): this {
    this.#ensure(4)
    this.#buffer.writeUInt32BE(n >>> 0, this.#offset)
    this.#offset += 4
    return this
  }

  /** A UTF-8 string and its NUL terminator. */
  cstring(s: string): this {
    const n = Buffer.byteLength(s)
    this.#ensure(n + 1)
    this.#buffer.write(s, this.#offset, 'utf8')
    this.#offset += n
    this.#buffer[this.#offset++] = 0
    return this
  }

  /** Raw bytes (a string is written as UTF-8), no terminator. */
  bytes(b: Buffer | string): this {
    if (typeof b === 'string') {
      const n = Buffer.byteLength(b)
      this.#ensure(n)
      this.#buffer.write(b, this.#offset, 'utf8')
      this.#offset += n
    } else {
      this.#ensure(b.length)
      b.copy(this.#buffer, this.#offset)
      this.#offset += b.length
    }
    return this
  }

  /** Ends the message begun last: writes its int32 length. */
  end(): this {
    if (this.#header < 0) throw new Error('MessageWriter.end() without begin()')
    // the length counts itself, so it runs from the length field to here
    const from = this.#header
    this.#buffer.writeUInt32BE(this.#offset - from, from)
    this.#header = -1
    return this
  }

  /** Returns every message written since the last flush, as a new Buffer, and resets the writer. */
  flush(): Buffer {
    if (this.#header >= 0) throw new Error('MessageWriter.flush() inside an unfinished message')
    const out = Buffer.allocUnsafe(this.#offset)
    this.#buffer.copy(out, 0, 0, this.#offset)
    this.#offset = 0
    return out
  }
}
