// Read-your-writes tokens for the proxy's client sessions: the primary's WAL position read after their
// writes on one connection per primary that the whole proxy shares, instead of a fetch on each
// session's own connection after each write.
//
// Why a position read elsewhere is a valid token: once the proxy has the write's ReadyForQuery, its
// commit record is written; pg_current_wal_lsn() read by any session after that is at or past it (the
// write position only moves forward). So a position read by a query sent after the write ended covers
// it, and one such read covers every write that ended before it was sent: under load, many sessions'
// writes share one read. The write's client is answered at once and its next statement does not wait;
// only a read that a replica might serve waits until the token is known (client-session.ts).

import { BackendCode, query as queryMessage, type RawFrameHandler } from '../protocol/index.js'
import type { ServerConnection, ServerSink } from './server-connection.js'

// every message: 1 byte code, then int32 length that counts itself but not the code
const HEADER_LENGTH = 5
const CURRENT_LSN = queryMessage('SELECT pg_current_wal_lsn()::text')
// A read unanswered this long (a primary that accepts but does not answer): its callers are told null
// (their reads go to the primary, see SessionState.recordToken) and the next read uses a new connection.
export const READ_TIMEOUT_MS = 5000
// how often a reader looks for a read past READ_TIMEOUT_MS
const CHECK_INTERVAL_MS = 1000

/** Told the position read for a write that ended on `node` (null: it could not be read). */
export type PositionCallback = (node: string, lsn: string | null) => void

/** Opens freshet's own connection to a node (logged in as the node URL's user, outside the pools). */
export type OpenOwn = (node: string) => Promise<ServerConnection>

/**
 * The position readers of a proxy, one per node asked about (the primaries its writes ended on).
 *
 * @example
 * const positions = new WalPositions((node) => pool.openOwn(node), log)
 * positions.after('primary', (node, lsn) => state.recordToken(lsn)) // at the write's ReadyForQuery
 */
export class WalPositions {
  readonly #readers = new Map<string, PositionReader>()
  readonly #open: OpenOwn
  readonly #log: (message: string, fields: Record<string, unknown>) => void
  #closed = false

  constructor(open: OpenOwn, log: (message: string, fields: Record<string, unknown>) => void) {
    this.#open = open
    this.#log = log
  }

  /**
   * Calls `done` with a position of `node` read by a query sent after this call: at or past every
   * write that ended on it before. Answers arrive in the order asked; null when it cannot be read
   * (node down, not a primary any more, the proxy closing).
   */
  after(node: string, done: PositionCallback): void {
    if (this.#closed) {
      done(node, null)
      return
    }
    let reader = this.#readers.get(node)
    if (reader === undefined) {
      reader = new PositionReader(node, this.#open, this.#log)
      this.#readers.set(node, reader)
    }
    reader.ask(done)
  }

  /**
   * Node addresses may have changed (reload, discovery): each reader opens a new connection for its
   * next query (the one in flight is answered first).
   */
  reconnect(): void {
    for (const [node, r] of this.#readers) {
      if (r.waiting > 0) r.renew()
      else {
        // a node that is gone (discovery, reload) must not keep its reader
        r.close()
        this.#readers.delete(node)
      }
    }
  }

  /** Closes the readers; whoever waits is told null. */
  close(): void {
    this.#closed = true
    for (const r of this.#readers.values()) r.close()
    this.#readers.clear()
  }
}

/**
 * One node's reader: its own connection, one query in flight at a time. Whoever asks while one is in
 * flight (sent before they asked, so it may not cover their write) shares the next, sent when the one
 * in flight is answered.
 */
class PositionReader implements ServerSink {
  readonly #node: string
  readonly #open: OpenOwn
  readonly #log: (message: string, fields: Record<string, unknown>) => void
  #conn: ServerConnection | null = null
  #connecting = false
  #closed = false
  /** Reconnect before the next query (see renew). */
  #renew = false
  /** When the query in flight was sent (performance.now()). */
  #sentAt = 0
  #watchdog: NodeJS.Timeout | null = null
  /** Asked before the query in flight was sent: its answer is theirs. */
  #inFlight: PositionCallback[] = []
  /** Asked after it: the next query's. */
  #next: PositionCallback[] = []
  #lsn: string | null = null

  constructor(node: string, open: OpenOwn, log: (message: string, fields: Record<string, unknown>) => void) {
    this.#node = node
    this.#open = open
    this.#log = log
  }

  get waiting(): number {
    return this.#inFlight.length + this.#next.length
  }

  ask(done: PositionCallback): void {
    this.#next.push(done)
    if (this.#inFlight.length === 0) this.#send()
  }

  #send(): void {
    if (this.#renew) {
      this.#renew = false
      this.#conn?.destroy()
    }
    const conn = this.#conn
    if (conn === null || conn.closed) {
      this.#conn = null
      this.#connect()
      return
    }
    const batch = this.#next
    this.#next = this.#inFlight // empty: reused
    this.#inFlight = batch
    this.#lsn = null
    this.#sentAt = performance.now()
    if (this.#watchdog === null) {
      this.#watchdog = setInterval(() => this.#check(), CHECK_INTERVAL_MS)
      this.#watchdog.unref()
    }
    conn.write(CURRENT_LSN)
  }

  /** The read in flight is past READ_TIMEOUT_MS: give up on it and on its connection. */
  #check(): void {
    if (this.#inFlight.length === 0 || performance.now() - this.#sentAt < READ_TIMEOUT_MS) return
    const conn = this.#conn
    this.#conn = null
    conn?.destroy()
    this.#failed(new Error(`no answer after ${READ_TIMEOUT_MS} ms`))
  }

  #connect(): void {
    if (this.#connecting || this.#closed) return
    this.#connecting = true
    this.#open(this.#node).then(
      (conn) => {
        this.#connecting = false
        if (this.#closed) {
          conn.destroy()
          return
        }
        conn.attach(this)
        this.#conn = conn
        if (this.#next.length > 0 && this.#inFlight.length === 0) this.#send()
      },
      (err: Error) => {
        this.#connecting = false
        this.#log('cannot read the WAL position for read-your-writes tokens', {
          node: this.#node,
          error: err.message,
        })
        this.#answer(this.#take(), null)
      },
    )
  }

  /** Everyone waiting, taken. */
  #take(): PositionCallback[] {
    const all = this.#inFlight.concat(this.#next)
    this.#inFlight = []
    this.#next = []
    return all
  }

  #answer(callers: readonly PositionCallback[], lsn: string | null): void {
    for (const done of callers) done(this.#node, lsn)
  }

  readonly onServerFrame: RawFrameHandler = (code, buf, start) => {
    switch (code) {
      case BackendCode.DataRow: {
        // int16 column count, int32 length, the text
        const length = buf.readInt32BE(start + HEADER_LENGTH + 2)
        const from = start + HEADER_LENGTH + 6
        if (length > 0) this.#lsn = buf.toString('latin1', from, from + length)
        return
      }
      case BackendCode.ErrorResponse:
        // a standby ("recovery is in progress"): no position to give
        this.#lsn = null
        return
      case BackendCode.ReadyForQuery: {
        const done = this.#inFlight
        this.#inFlight = []
        this.#answer(done, this.#lsn)
        if (this.#next.length > 0 && this.#inFlight.length === 0) this.#send()
        return
      }
      default:
        return // RowDescription, CommandComplete, NoticeResponse, ParameterStatus
    }
  }

  onServerChunkEnd(): void {}

  onServerLost(_conn: ServerConnection, err: Error): void {
    this.#failed(err)
  }

  onServerMessageFailed(_conn: ServerConnection, err: Error): void {
    this.#failed(err)
  }

  #failed(err: Error): void {
    this.#conn = null
    if (this.#closed) return
    this.#log('lost the connection that reads WAL positions for read-your-writes tokens', {
      node: this.#node,
      error: err.message,
    })
    // the query in flight is lost; whoever asked after it is served by a new connection
    const lost = this.#inFlight
    this.#inFlight = []
    this.#answer(lost, null)
    if (this.#next.length > 0) this.#send()
  }

  /** The next query goes on a new connection (now, when none is in flight). */
  renew(): void {
    this.#renew = true
    if (this.#inFlight.length === 0 && this.#conn !== null) {
      this.#renew = false
      this.#conn.destroy()
      this.#conn = null
    }
  }

  /** The proxy is closing: whoever waits is told null. */
  close(): void {
    this.#closed = true
    if (this.#watchdog !== null) clearInterval(this.#watchdog)
    this.#conn?.destroy()
    this.#conn = null
    this.#answer(this.#take(), null)
  }
}
