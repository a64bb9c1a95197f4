// pg's query() surface shared by FreshetPool and FreshetClient: the overloads of @types/pg, the call-form
// parsing, and Submittables (pg-cursor, pg-query-stream).

import type pg from 'pg'
import { NodeUnavailableError } from '../core/errors.js'

/**
 * pg's query() overloads, copied from @types/pg (Pool and ClientBase declare the same list), so that a
 * FreshetPool is assignable to `pg.Pool` and a FreshetClient to `pg.PoolClient` without a cast. Merged
 * into both classes through an interface of the same name; the classes hold the one implementation.
 */
/* biome-ignore-start lint/suspicious/noExplicitAny: pg's own defaults for row and parameter types */
export interface PgQueryOverloads {
  query<T extends pg.Submittable>(queryStream: T): T
  query<R extends any[] = any[], I = any[]>(
    queryConfig: pg.QueryArrayConfig<I>,
    values?: pg.QueryConfigValues<I>,
  ): Promise<pg.QueryArrayResult<R>>
  query<R extends pg.QueryResultRow = any, I = any[]>(
    queryConfig: pg.QueryConfig<I>,
  ): Promise<pg.QueryResult<R>>
  query<R extends pg.QueryResultRow = any, I = any[]>(
    queryTextOrConfig: string | pg.QueryConfig<I>,
    values?: pg.QueryConfigValues<I>,
  ): Promise<pg.QueryResult<R>>
  query<R extends any[] = any[], I = any[]>(
    queryConfig: pg.QueryArrayConfig<I>,
    callback: (err: Error, result: pg.QueryArrayResult<R>) => void,
  ): void
  query<R extends pg.QueryResultRow = any, I = any[]>(
    queryTextOrConfig: string | pg.QueryConfig<I>,
    callback: (err: Error, result: pg.QueryResult<R>) => void,
  ): void
  query<R extends pg.QueryResultRow = any, I = any[]>(
    queryText: string,
    values: pg.QueryConfigValues<I>,
    callback: (err: Error, result: pg.QueryResult<R>) => void,
  ): void
}
/* biome-ignore-end lint/suspicious/noExplicitAny: pg's own defaults for row and parameter types */

/** pg's result callback; typed loosely because pg's overloads declare `err: Error` and call it with null. */
// biome-ignore lint/suspicious/noExplicitAny: pg's callbacks receive a result of any row type
type Callback = (err: any, result?: any) => void

/**
 * pg's query(), typed as its overloads, from two parts: `submit` takes a Submittable (query() returns
 * it at once, as pg does), `run` takes text or a config and resolves with the result, which query()
 * returns as a promise or hands to a callback.
 * @example
 * FreshetPool.prototype.query = pgQuery<FreshetPool>((pool, sub) => pool.submit(sub), (pool, q, v) => pool.run(q, v))
 */
export function pgQuery<This>(
  submit: (self: This, sub: pg.Submittable) => void,
  run: (self: This, query: string | pg.QueryConfig, values: unknown[] | undefined) => Promise<pg.QueryResult>,
): PgQueryOverloads['query'] {
  function query(
    this: This,
    query: QueryInput,
    valuesOrCallback?: unknown[] | Callback,
    callback?: Callback,
  ): Promise<pg.QueryResult> | pg.Submittable | undefined {
    if (isSubmittable(query)) {
      submit(this, query)
      return query
    }
    const cb = typeof valuesOrCallback === 'function' ? valuesOrCallback : callback
    const values = typeof valuesOrCallback === 'function' ? undefined : valuesOrCallback
    const promise = run(this, query, values)
    if (!cb) return promise
    promise.then(
      (res) => cb(null, res),
      (err) => cb(err),
    )
    return undefined
  }
  // The one cast: an implementation signature cannot be checked against an overload list.
  return query as PgQueryOverloads['query']
}

/** What query() accepts: SQL text, a query config, or a Submittable. */
type QueryInput = string | pg.QueryConfig | pg.Submittable

/** The parts of a Submittable freshet reads: pg-cursor keeps its SQL in `text`, pg-query-stream in `cursor.text`. */
interface SubmittableLike extends pg.Submittable {
  text?: unknown
  cursor?: { text?: unknown }
  handleError?: (err: unknown) => void
}

/** Hands an error to a Submittable the way pg.Client does (pg-cursor and pg-query-stream reject reads with it). */
export function failSubmittable(sub: pg.Submittable, err: unknown): void {
  ;(sub as SubmittableLike).handleError?.(err)
}

/** Whether a query() argument is a Submittable (pg's own test: a `submit` function). */
export function isSubmittable(query: unknown): query is pg.Submittable {
  return typeof (query as { submit?: unknown } | null)?.submit === 'function'
}

/** The SQL of a Submittable, or null when it does not say. */
export function submittableText(sub: pg.Submittable): string | null {
  const s = sub as SubmittableLike
  const text = typeof s.text === 'string' ? s.text : s.cursor?.text
  return typeof text === 'string' ? text : null
}

/**
 * Submits to a pg client and resolves when the client's queue drains (pg emits 'drain' once the active
 * query, here the Submittable, has finished); rejects if the connection fails first.
 */
export function runToDrain(client: pg.PoolClient, sub: pg.Submittable): Promise<undefined> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      client.off('drain', onDrain)
      client.off('error', onError)
      client.off('end', onEnd)
      if (err) reject(err)
      else resolve(undefined)
    }
    const onDrain = () => done()
    const onError = (err: Error) => done(err)
    const onEnd = () => done(new NodeUnavailableError('FRESHET_NODE_UNAVAILABLE', 'the connection closed'))
    client.on('drain', onDrain)
    client.on('error', onError)
    client.on('end', onEnd)
    client.query(sub)
  })
}

/** pg.Pool's connect() callback: (err, client, done). */
export type ConnectCallback<C> = (err: Error | null, client?: C, done?: (err?: unknown) => void) => void

/**
 * pg.Pool's connect() in both forms: the promise, or (with a callback) `callback(err, client, done)`.
 * @example
 * return settleConnect(this.#checkout(), callback)
 */
export function settleConnect<C extends { release(err?: Error): void }>(
  promise: Promise<C>,
  callback: ConnectCallback<C> | undefined,
): Promise<C> | undefined {
  if (!callback) return promise
  promise.then(
    (client) => callback(null, client, (err?: unknown) => client.release(err as Error)),
    (err) => callback(err),
  )
  return undefined
}

/** pg.Pool's end() in both forms: the promise, or (with a callback) the callback once ended. */
export function settleEnd(
  promise: Promise<void>,
  callback: (() => void) | undefined,
): Promise<void> | undefined {
  if (!callback) return promise
  promise.then(callback, callback)
  return undefined
}

/**
 * A pool's Submittable on a client of its own (pinned while it runs), released when it has finished:
 * unlike pg.Pool, which never releases the client of a Submittable passed to pool.query().
 */
export function submitOnOwnClient(
  connect: () => Promise<{ submit(sub: pg.Submittable): Promise<void>; release(): void }>,
  sub: pg.Submittable,
): void {
  connect().then(
    (client) => client.submit(sub).then(() => client.release()),
    (err: unknown) => failSubmittable(sub, err),
  )
}

/** Runs jobs one after another in the order queued (pg.Client's query queue); a failed job does not stop the next. */
export class JobQueue {
  #tail: Promise<unknown> = Promise.resolve()

  run<T>(job: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(job)
    this.#tail = run.catch(() => {})
    return run
  }
}
