// Sending a client's extended-protocol batch to its server connection: message by message through
// ClientStatements, waiting where a statement re-created on the connection must be described first,
// and answering PostgreSQL's 0A000 where its row type changed.

import { FLUSH, FrontendCode } from '../protocol/index.js'
import type { Job } from './extended-batch.js'
import type { BatchItem, ClientStatements } from './prepared-statements.js'
import type { ServerConnection } from './server-connection.js'

/**
 * Sends batches for one client. `send()` returns false when the batch waits for freshet's Describe of
 * a statement it parsed again on the connection; the client session calls `resume()` when that answer
 * (or an error instead) comes back, and the batch goes on from where it stopped.
 *
 * @example
 * if (sender.send(job, conn)) sent(job)
 * // ... freshet's Describe answered: const job = sender.resume(conn, false); if (job) sent(job)
 */
export class BatchSend {
  readonly #statements: ClientStatements
  /** The batch waiting, at message `index`, for freshet's Describe. */
  #paused: { readonly job: Job; readonly index: number } | null = null

  constructor(statements: ClientStatements) {
    this.#statements = statements
  }

  /** A batch waits for freshet's Describe to come back. */
  get waiting(): boolean {
    return this.#paused !== null
  }

  /** Sends `job`'s messages to `conn`; false when it waits (see resume). */
  send(job: Job, conn: ServerConnection): boolean {
    return this.#from(job, conn, 0, false)
  }

  /**
   * freshet's Describe came back (`failed`: an error came instead, and the server now skips to Sync):
   * the waiting batch goes on. Returns the job once all of it is sent, null while it waits again.
   */
  resume(conn: ServerConnection, failed: boolean): Job | null {
    const paused = this.#paused
    this.#paused = null
    if (paused === null) return null
    if (failed) {
      queueSyncs(paused.job.items!, paused.index, conn)
      conn.flush()
    } else if (!this.#from(paused.job, conn, paused.index, true)) return null
    return paused.job
  }

  /** The connection is gone: nothing waits any more. */
  reset(): void {
    this.#paused = null
  }

  /** `quiet`: all sent before was answered (the batch goes on after a wait). */
  #from(job: Job, conn: ServerConnection, from: number, quiet: boolean): boolean {
    const items = job.items!
    for (let i = from; i < items.length; i++) {
      const result = this.#statements.send(items[i]!, conn, quiet && i === from)
      if (result === 'sent') continue
      if (result === 'wait') {
        // one round trip, only where a statement had to be parsed again on this connection: its rows
        // must not reach the client before freshet knows they have the types the client expects
        conn.queue(FLUSH)
        conn.flush()
        this.#paused = { job, index: i }
        return false
      }
      // its row type changed: PostgreSQL's 0A000 here, and the server skips the rest up to Sync
      this.#statements.poison(items[i]!, conn)
      queueSyncs(items, i + 1, conn)
      break
    }
    conn.flush()
    return true
  }
}

/** Queues only the Sync and Flush messages of `items` from `from` on: the server skips the rest. */
function queueSyncs(items: readonly BatchItem[], from: number, conn: ServerConnection): void {
  for (let i = from; i < items.length; i++) {
    const item = items[i]!
    if (item.code === FrontendCode.Sync || item.code === FrontendCode.Flush) conn.queue(item.whole)
  }
}
