// A proxy client's units of work: a job per simple Query, function call or extended-protocol batch
// (Parse/Bind/Describe/Execute/Close up to Sync or Flush).

import type { Span } from '@opentelemetry/api'
import type { Classification } from '../core/classify/classification.js'
import { decodeQuery, FrontendCode } from '../protocol/index.js'
import { failSpan } from '../telemetry/statement-span.js'
import type { BatchItem, ClientStatements } from './prepared-statements.js'
import type { StartupReset } from './startup-settings.js'

// every message: 1 byte code, then int32 length that counts itself but not the code
const HEADER_LENGTH = 5

/** One unit of a client's work, from its arrival to its ReadyForQuery. */
export interface Job {
  readonly kind: 'simple' | 'extended' | 'function'
  /** Simple query or function call: the message. */
  readonly whole: Buffer | null
  readonly items: BatchItem[] | null
  /** The statement that routes the job (for a batch of several, set at dispatch). */
  sql: string | null
  /** An extended batch of several statements: their distinct texts in order, else null. */
  readonly texts: readonly string[] | null
  /** ReadyForQuery answers still expected (0 for a batch ended by Flush). */
  syncs: number
  classification: Classification | null
  /**
   * Classified already (see classifyJob): a job put back in the queue (it may not run behind a token
   * fetch) is not classified again; `reads` is what classifyJob returned.
   */
  classified: boolean
  reads: Classification[] | null
  /**
   * The statements the job runs, in order, when they are not just `classification`: a string of
   * several statements that pins or releases (the split rule), a batch of several statements (one per
   * Bind). Set at dispatch, where each statement is classified once; null otherwise.
   */
  statements: readonly Classification[] | null
  failed: boolean
  /** performance.now() when the message (or the batch's last message) arrived. */
  receivedAt: number
  startedAt: number
  /** Some of the server's answer reached the client: the job can no longer move to another node. */
  answered: boolean
  /** Already moved once after a backend failure. */
  retried: boolean
  /** A replica cancelled it for a recovery conflict (that message); it moves at ReadyForQuery. */
  conflict: string | null
  /** The statement's trace span (a no-op without an OpenTelemetry SDK), ended when the server answers. */
  span: Span | null
  /** A RESET of a startup setting, sent as a set_config of its startup value (startup-settings.ts). */
  startupReset: StartupReset | null
}

/** A job as received: nothing decided, answered or sent yet. */
export function newJob(
  kind: Job['kind'],
  whole: Buffer | null,
  items: BatchItem[] | null,
  sql: string | null,
  texts: readonly string[] | null,
  syncs: number,
): Job {
  return {
    kind,
    whole,
    items,
    sql,
    texts,
    syncs,
    classification: null,
    classified: false,
    reads: null,
    statements: null,
    failed: false,
    receivedAt: performance.now(),
    startedAt: 0,
    answered: false,
    retried: false,
    conflict: null,
    span: null,
    startupReset: null,
  }
}

/** Ends a job's span, failed with `err` unless it is null. */
export function endSpan(job: Job, err: unknown): void {
  const span = job.span
  if (span === null) return
  job.span = null
  if (err !== null) failSpan(span, err)
  span.end()
}

/**
 * Turns a logged-in client's messages into jobs: a simple Query or a FunctionCall is one; extended-
 * protocol messages gather into a batch until Sync or Flush ends it (a Query or FunctionCall ends an
 * open batch first).
 * @example
 * if (!jobs.accept(code, whole, push)) handleCopyOrTerminate(code, whole)
 */
export class JobAssembler {
  readonly #statements: ClientStatements
  #items: BatchItem[] | null = null
  // The last simple Query and its text: a repeated query (a pool's health check, a poller) is
  // compared byte for byte instead of decoded, and the classifier's lookup reuses the string's hash.
  #lastQuery: Buffer | null = null
  #lastQueryText = ''

  constructor(statements: ClientStatements) {
    this.#statements = statements
  }

  /**
   * Takes one message (`whole`: code, length, body) and hands each job it completes to `push`.
   * Returns false for a message that makes no job (CopyData, CopyDone, CopyFail, Terminate, unknown).
   */
  accept(code: number, whole: Buffer, push: (job: Job) => void): boolean {
    switch (code) {
      case FrontendCode.Query: {
        this.#end(0, push)
        push(newJob('simple', whole, null, this.#queryText(whole), null, 1))
        return true
      }
      case FrontendCode.Parse:
      case FrontendCode.Bind:
      case FrontendCode.Describe:
      case FrontendCode.Close:
      case FrontendCode.Execute:
        this.#push(code, whole)
        return true
      case FrontendCode.Sync:
        this.#push(code, whole)
        this.#end(1, push)
        return true
      case FrontendCode.Flush:
        this.#push(code, whole)
        this.#end(0, push)
        return true
      case FrontendCode.FunctionCall:
        this.#end(0, push)
        push(newJob('function', whole, null, null, null, 1))
        return true
      default:
        return false
    }
  }

  #queryText(whole: Buffer): string {
    if (this.#lastQuery?.equals(whole)) return this.#lastQueryText
    const text = decodeQuery(whole.subarray(HEADER_LENGTH))
    // a view of the client's read buffer (not reused by the socket): held until the next Query
    this.#lastQuery = whole
    this.#lastQueryText = text
    return text
  }

  #push(code: number, whole: Buffer): void {
    const item = this.#statements.describe(code, whole)
    if (this.#items === null) this.#items = [item]
    else this.#items.push(item)
  }

  /** Ends the open batch (if any) as a job expecting `syncs` ReadyForQuery answers. */
  #end(syncs: number, push: (job: Job) => void): void {
    const items = this.#items
    if (!items) return
    this.#items = null
    // the statements it is about; the common batch has one (P/B/D/E/S, B/E/S): no allocation then
    let sql: string | null = null
    let texts: string[] | null = null
    for (const item of items) {
      const text = item.text
      if (text === null || text === sql) continue
      if (sql === null) sql = text
      else if (texts === null) texts = [sql, text]
      else if (!texts.includes(text)) texts.push(text)
    }
    push(newJob('extended', null, items, sql, texts, syncs))
  }
}
