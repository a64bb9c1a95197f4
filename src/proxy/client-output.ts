// What goes back to a proxy client: runs of consecutive server messages gathered from one server
// chunk and written to the client in one go.

/**
 * Gathers a run of server messages lying next to each other in one read buffer. The views are valid
 * only until the server connection's chunk ends, so take() returns a copy (a socket write may queue it).
 *
 * @example
 * output.append(buf, start, end) // per forwarded message
 * const bytes = output.take(); if (bytes) socket.write(bytes) // at the end of the chunk at the latest
 */
export class ClientOutput {
  #buf: Buffer | null = null
  #start = 0
  #end = 0

  /**
   * Adds `buf[start, end)` to the run; a message that does not continue the run ends it first
   * (`flush` is called to write what was gathered so far).
   */
  append(buf: Buffer, start: number, end: number, flush: () => void): void {
    if (this.#buf === buf && this.#end === start) {
      this.#end = end
      return
    }
    flush()
    this.#buf = buf
    this.#start = start
    this.#end = end
  }

  /** Forgets the run (held back from the client: the statement may still move to another node). */
  drop(): void {
    this.#buf = null
  }

  /** The gathered run as a copy, and forgets it; null when nothing is gathered. */
  take(): Buffer | null {
    const buf = this.#buf
    if (buf === null) return null
    this.#buf = null
    const out = Buffer.allocUnsafe(this.#end - this.#start)
    buf.copy(out, 0, this.#start, this.#end)
    return out
  }
}
