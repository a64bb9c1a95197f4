// What goes back to a proxy client: runs of consecutive server messages gathered from one server
// chunk and written to the client in one go, as views of the server connection's read buffer.

/** Whose read buffer a gathered run lies in: told when a write keeps it past the chunk. */
export interface ChunkOwner {
  /** A view of the current chunk outlives it (a socket write queued it): read the next one elsewhere. */
  keepChunk(): void
}

/**
 * Gathers a run of server messages lying next to each other in one read buffer. The views are valid
 * only until the server connection's chunk ends: written at once they are forwarded without a copy;
 * a write that the socket queues must tell the owner (see {@link ClientOutput.written}).
 *
 * @example
 * output.append(buf, start, end, flush, conn) // per forwarded message
 * const bytes = output.take(copy); if (bytes) { socket.write(bytes); output.written(socket.writableLength > 0) }
 */
export class ClientOutput {
  #buf: Buffer | null = null
  #start = 0
  #end = 0
  /** Whose chunk the run (or the view take() gave) lies in; null after a copy. */
  #owner: ChunkOwner | null = null

  /**
   * Adds `buf[start, end)` of `owner`'s chunk to the run; a message that does not continue the run
   * ends it first (`flush` is called to write what was gathered so far).
   */
  append(buf: Buffer, start: number, end: number, flush: () => void, owner: ChunkOwner | null): void {
    if (this.#buf === buf && this.#end === start) {
      this.#end = end
      return
    }
    flush()
    this.#buf = buf
    this.#start = start
    this.#end = end
    this.#owner = owner
  }

  /** Forgets the run (held back from the client: the statement may still move to another node). */
  drop(): void {
    this.#buf = null
  }

  /**
   * The gathered run, and forgets it; null when nothing is gathered. A view of the chunk, or a copy
   * when `copy` (the write will be queued anyway, or goes through TLS, which may hold it).
   */
  take(copy: boolean): Buffer | null {
    const buf = this.#buf
    if (buf === null) return null
    this.#buf = null
    if (copy) {
      this.#owner = null
      const out = Buffer.allocUnsafe(this.#end - this.#start)
      buf.copy(out, 0, this.#start, this.#end)
      return out
    }
    return buf.subarray(this.#start, this.#end)
  }

  /** After writing what take() gave: `queued` (the socket kept it to write later) keeps its chunk. */
  written(queued: boolean): void {
    if (queued) this.#owner?.keepChunk()
    this.#owner = null
  }
}
