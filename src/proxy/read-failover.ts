// A proxy read whose replica failed under it, before any of its answer reached the client, runs again
// on the primary, once, as in the library: which failures qualify, and the move itself.

import { isRecoveryConflict } from '../core/errors.js'
import type { ErrorFields } from '../protocol/index.js'
import { mayRetryOnPrimary, type SessionState } from '../session/session-state.js'
import type { Job } from './extended-batch.js'
import type { ProxyRuntime } from './proxy-runtime.js'

/**
 * The retry rule of one client session (the session machine's mayRetryOnPrimary, plus what only the
 * proxy knows: a batch ended by Flush cannot move).
 *
 * @example
 * if (failover.allowed(job, 'replica_1', facts)) acquire(job, failover.move(job, 'replica_1', err))
 */
export class ReadFailover {
  readonly #rt: ProxyRuntime
  readonly #state: SessionState

  constructor(runtime: ProxyRuntime, state: SessionState) {
    this.#rt = runtime
    this.#state = state
  }

  /**
   * Whether `job` may still run again on the primary after `failed` let it down; `ready`: the session
   * serves statements (not logging in, not closed).
   */
  allowed(job: Job, failed: string, ready: boolean): boolean {
    return (
      ready &&
      job.syncs !== 0 &&
      mayRetryOnPrimary(job.classification, {
        failedNode: failed,
        primary: this.#rt.engineOf(failed).tracker.primary,
        retried: job.retried,
        answered: job.answered,
        inTransaction: this.#state.inTransaction,
        pinned: this.#state.sessionPin !== null,
      })
    )
  }

  /** Records the move (metric, log, span event) and returns the node to run `job` on now: the primary. */
  move(job: Job, failed: string, err: unknown): string {
    // the primary of the failed node's shard (the one primary when unsharded)
    const primary = this.#rt.engineOf(failed).tracker.primary
    job.retried = true
    this.#rt.observer?.backendFailover()
    const why = (err as Error)?.message ?? err
    this.#rt.log('warn', `retrying a read on ${primary} after ${failed} failed: ${why}`, { node: failed })
    job.span?.addEvent('freshet.retry', { 'freshet.failed_target': failed, 'freshet.target': primary })
    return primary
  }

  /**
   * A replica's ErrorResponse under a read none of whose answer reached the client, held back from it:
   * 'lost' for a FATAL (a replica going away says it before it closes, so the loss can still move the
   * read), 'conflict' for a recovery conflict that may move (the replica cancelled the read to replay
   * WAL; it moves at ReadyForQuery), else null: the error is the client's.
   */
  holds(
    job: Job,
    node: string,
    fields: ErrorFields | null,
    fatal: boolean,
    ready: boolean,
  ): 'lost' | 'conflict' | null {
    if (job.answered || node === this.#rt.engineOf(node).tracker.primary) return null
    if (fatal) return 'lost'
    if (fields !== null && isRecoveryConflict(fields) && job.syncs === 1 && this.allowed(job, node, ready))
      return 'conflict'
    return null
  }
}
