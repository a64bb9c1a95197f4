// freshet's own statements on a client's server connection, whose answers never reach the client: the
// startup settings brought to a lent connection, and a held BEGIN (sharded configs). Read-your-writes
// tokens are read elsewhere (wal-positions.ts).

/**
 * Swallows the server's answers up to the next ReadyForQuery while freshet's own statement runs.
 *
 * @example
 * hidden.start(); conn.write(query("SET application_name = 'app'"))
 * // ... at its ReadyForQuery: hidden.finish()
 */
export class HiddenReply {
  #active = false

  /** The server's answers are freshet's own (up to the next ReadyForQuery). */
  get active(): boolean {
    return this.#active
  }

  /** Swallows the server's messages up to the next ReadyForQuery. */
  start(): void {
    this.#active = true
  }

  /** Its ReadyForQuery came (or the connection is gone). */
  finish(): void {
    this.#active = false
  }
}
