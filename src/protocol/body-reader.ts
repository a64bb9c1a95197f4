// A cursor over one message body for the decoders: bounds-checked reads that fail as ProtocolError.

import { ProtocolError } from './protocol-error.js'

/**
 * Reads fields from a message body. Every read checks bounds and throws {@link ProtocolError} on
 * truncated input, so decoders never throw RangeError. Internal to src/protocol.
 */
export class BodyReader {
  buffer: Buffer
  offset: number
  readonly #what: string

  constructor(buffer: Buffer, what: string, offset = 0) {
    this.buffer = buffer
    this.offset = offset
    this.#what = what
  }

  get remaining(): number {
    return this.buffer.length - this.offset
  }

  fail(problem: string): never {
    throw new ProtocolError(`malformed ${this.#what}: ${problem}`)
  }

  #need(n: number): void {
    if (this.buffer.length - this.offset < n) this.fail('message too short')
  }

  byte(): number {
    this.#need(1)
    return this.buffer[this.offset++]!
  }

  int16(): number {
    this.#need(2)
    const v = this.buffer.readInt16BE(this.offset)
    this.offset += 2
    return v
  }

  /** An unsigned int16, as PostgreSQL's pq_getmsgint(msg, 2) reads counts (0-65535). */
  uint16(): number {
    this.#need(2)
    const v = this.buffer.readUInt16BE(this.offset)
    this.offset += 2
    return v
  }

  int32(): number {
    this.#need(4)
    const v = this.buffer.readInt32BE(this.offset)
    this.offset += 4
    return v
  }

  uint32(): number {
    this.#need(4)
    const v = this.buffer.readUInt32BE(this.offset)
    this.offset += 4
    return v
  }

  /** Index of the NUL that ends the string at the cursor. */
  cstringEnd(): number {
    const end = this.buffer.indexOf(0, this.offset)
    if (end < 0) this.fail('string without terminator')
    return end
  }

  /** A NUL-terminated UTF-8 string. */
  cstring(): string {
    const end = this.cstringEnd()
    const s = this.buffer.toString('utf8', this.offset, end)
    this.offset = end + 1
    return s
  }

  /** `n` bytes as a view (no copy). */
  bytes(n: number): Buffer {
    if (n < 0) this.fail(`negative length ${n}`)
    this.#need(n)
    const v = this.buffer.subarray(this.offset, this.offset + n)
    this.offset += n
    return v
  }

  /** The rest of the body as a view. */
  rest(): Buffer {
    const v = this.buffer.subarray(this.offset)
    this.offset = this.buffer.length
    return v
  }

  /** Fails unless the body has been read to its end. */
  done(): void {
    if (this.offset !== this.buffer.length) this.fail('trailing bytes')
  }
}
