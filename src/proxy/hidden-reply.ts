// freshet's own statements on a client's server connection, whose answers never reach the client: the
// read-your-writes token fetch (sent with the write when it can be) and the startup settings brought
// to a lent connection.

import type { Classification } from '../core/classify/classification.js'
import { query as queryMessage } from '../protocol/index.js'
import type { SessionState } from '../session/session-state.js'
import type { ServerConnection } from './server-connection.js'

// every message: 1 byte code, then int32 length that counts itself but not the code
const HEADER_LENGTH = 5
// The read-your-writes token, fetched on the connection that committed (its answer is never forwarded).
const CURRENT_LSN = queryMessage('SELECT pg_current_wal_lsn()::text')

/**
 * Whether a simple query, or an extended batch of one statement ending in its one Sync, may carry the
 * token fetch in the same write (no extra round trip): one
 * statement that ends a write (the session's endsWrite: an autocommit write or the COMMIT of a
 * transaction that wrote), on the primary, with causal consistency on. Never COPY FROM: the server
 * would take the fetch as part of the copy data.
 *
 * @example
 * pipelinesToken(classify('INSERT INTO t VALUES (1)'), state, true, true) // true
 */
export function pipelinesToken(
  c: Classification | null,
  session: Pick<SessionState, 'endsWrite'>,
  onPrimary: boolean,
  causal: boolean,
): boolean {
  if (c === null || c.statementCount !== 1 || !causal || !onPrimary) return false
  // an autocommit write the parser understood (never COPY FROM: see above)
  if (c.transaction === undefined && (c.kind !== 'write' || c.reason === 'copy_from')) return false
  return session.endsWrite(c)
}

/**
 * Swallows the server's answers up to the next ReadyForQuery while freshet's own statement runs, and
 * keeps the token a fetch returned.
 *
 * @example
 * hidden.sendWith(job.whole, conn) // the write and the token fetch in one go
 * // ... at the write's ReadyForQuery: hidden.start(true); at the next ReadyForQuery: hidden.finish()
 */
export class HiddenReply {
  #active = false
  #lsn: string | null = null
  #record = false
  /** The token fetch went out right behind the running job (see sendWith). */
  #sent = false
  /** What is being swallowed is a token fetch's answer (not settings, not a held BEGIN). */
  #fetching = false

  /** The server's answers are freshet's own (up to the next ReadyForQuery). */
  get active(): boolean {
    return this.#active
  }

  /** The token fetch went out with the running job. */
  get sent(): boolean {
    return this.#sent
  }

  /**
   * A token fetch's answer is being swallowed: an autocommit write may be sent behind it on the same
   * connection (the server answers in order), so the client's next write does not wait for the token.
   */
  get fetching(): boolean {
    return this.#fetching
  }

  /** Sends `whole` and the token fetch behind it in one write. */
  sendWith(whole: Buffer, conn: ServerConnection): void {
    conn.queue(whole)
    conn.queue(CURRENT_LSN)
    conn.flush()
    this.sentBehind()
  }

  /** The token fetch, for the caller to send right behind the running job in the same write. */
  get fetch(): Buffer {
    return CURRENT_LSN
  }

  /** The caller sent {@link fetch} behind the running job. */
  sentBehind(): void {
    this.#sent = true
  }

  /**
   * The job's ReadyForQuery came: swallow up to the next one. `record`: its answer is the token to keep;
   * the fetch is sent now unless it went out with the job. Returns whether it went out with the job.
   */
  afterJob(conn: ServerConnection, fetch: boolean): boolean {
    const sent = this.#sent
    this.#sent = false
    if (fetch) {
      this.start(true, true)
      if (!sent) conn.write(CURRENT_LSN)
      return true
    }
    // a fetch sent with a write that did not end as expected: its answers are still to swallow
    if (sent) this.start(false, true)
    return sent
  }

  /**
   * Swallows the server's messages up to the next ReadyForQuery; `record`: keep the token they carry;
   * `fetching`: they answer a token fetch (see {@link fetching}), not settings or a held BEGIN.
   */
  start(record: boolean, fetching = false): void {
    this.#active = true
    this.#fetching = fetching
    this.#lsn = null
    this.#record = record
  }

  /** A DataRow of the hidden answer: int16 column count, int32 length, the text. */
  dataRow(buf: Buffer, start: number): void {
    const length = buf.readInt32BE(start + HEADER_LENGTH + 2)
    if (length > 0) {
      const from = start + HEADER_LENGTH + 6
      this.#lsn = buf.toString('latin1', from, from + length)
    }
  }

  /** Its ReadyForQuery came: the token to record (undefined when there is none to record, null when the server gave none). */
  finish(): string | null | undefined {
    this.#active = false
    this.#fetching = false
    return this.#record ? this.#lsn : undefined
  }

  /** The connection is gone: nothing is in flight any more. */
  reset(): void {
    this.#active = false
    this.#fetching = false
    this.#sent = false
  }
}
