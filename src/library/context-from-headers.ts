// Reads and writes freshet's propagation headers (X-DB-Route-Hint, X-Primary-LSN, X-DB-Shard-Key, traceparent): shared by the HTTP and messaging helpers.

import { debuglog } from 'node:util'
import { isReadToken, laterToken } from '../core/read-token.js'
import type { ContextStore } from './context.js'

/** Request header naming a freshness tier, or `primary`, for the reads of this request. */
export const ROUTE_HINT_HEADER = 'x-db-route-hint'
/** Read-your-writes token (a PostgreSQL LSN): in on requests and messages, out on responses after writes. */
export const LSN_HEADER = 'x-primary-lsn'
/**
 * Sharded configs: the shard key of this request's statements (as `withShardKey`), in on requests and
 * messages, handed on by `injectContext`.
 */
export const SHARD_KEY_HEADER = 'x-db-shard-key'
/** W3C trace context of the caller. */
export const TRACEPARENT_HEADER = 'traceparent'

const MAX_SHARD_KEY_LENGTH = 256
const TIER_NAME = /^[a-z_][a-z0-9_]{0,62}$/
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/

/** A header value as HTTP servers and broker clients hand them over (AMQP and Kafka may give Buffers). */
export type HeaderValue = string | Buffer | readonly (string | Buffer)[] | number | null | undefined

/** Debug output for ignored header values; `NODE_DEBUG=freshet` prints it by default. */
export type DebugLog = (message: string, fields: Record<string, unknown>) => void

const nodeDebug = debuglog('freshet')

export interface HeaderContextOptions {
  /**
   * Tier names a route hint may name (besides `primary`); a pool's `routing.tiers`. Without it any
   * well-formed name is accepted and an unknown one routes to the primary ('unknown_tier').
   */
  tiers?: readonly string[] | undefined
  /**
   * Read X-DB-Route-Hint and X-DB-Shard-Key at all (default true). Turn it off where untrusted clients
   * send requests: a shard key picks where a request's writes go.
   */
  hints?: boolean | undefined
  /** Where ignored values are reported; default `util.debuglog('freshet')` (NODE_DEBUG=freshet). */
  debug?: DebugLog | undefined
}

/** The first string of a header value, trimmed; undefined when absent or empty. */
export function headerText(value: HeaderValue): string | undefined {
  const first = Array.isArray(value) ? value[0] : value
  if (first === undefined || first === null) return undefined
  const text = (Buffer.isBuffer(first) ? first.toString('utf8') : String(first)).trim()
  return text === '' ? undefined : text
}

/**
 * Turns the propagation header values of a request or message into a scope patch. Invalid values (a
 * malformed LSN, an unknown tier, a broken traceparent) are left out and reported through `debug`:
 * a bad header must never fail the request.
 * @example
 * contextFromHeaders({ hint: 'eventual', lsn: '0/16B3748' }, { tiers: ['strict', 'near_rt', 'eventual'] })
 * // { tier: 'eventual', minLsn: '0/16B3748' }
 */
export function contextFromHeaders(
  values: {
    hint?: string | undefined
    lsn?: readonly (string | undefined)[] | string | undefined
    traceparent?: string | undefined
    shardKey?: string | undefined
  },
  options: HeaderContextOptions = {},
): Partial<ContextStore> {
  const debug = options.debug ?? nodeDebugLog
  const patch: Partial<ContextStore> = {}
  if (values.hint !== undefined && options.hints !== false) {
    const hint = values.hint.toLowerCase()
    if (hint === 'primary') patch.primary = true
    else if (options.tiers ? options.tiers.includes(hint) : TIER_NAME.test(hint)) patch.tier = hint
    else
      debug('ignored route hint: not primary or a known tier', {
        header: ROUTE_HINT_HEADER,
        value: values.hint,
      })
  }
  const tokens = typeof values.lsn === 'string' ? [values.lsn] : (values.lsn ?? [])
  for (const token of tokens) {
    if (token === undefined) continue
    if (!isReadToken(token)) {
      debug('ignored read-your-writes token: not a PostgreSQL LSN or a GTID position', {
        header: LSN_HEADER,
        value: token,
      })
      continue
    }
    patch.minLsn = laterToken(patch.minLsn, token.trim())
  }
  if (values.shardKey !== undefined && options.hints !== false) {
    // any text: the pool checks it against the key type and reports a bad one (ZF004) when it routes
    if (values.shardKey.length <= MAX_SHARD_KEY_LENGTH) patch.shardKey = values.shardKey
    else debug('ignored shard key: longer than 256 characters', { header: SHARD_KEY_HEADER })
  }
  if (values.traceparent !== undefined) {
    if (TRACEPARENT.test(values.traceparent)) patch.traceparent = values.traceparent
    else debug('ignored traceparent: not W3C trace context', { value: values.traceparent })
  }
  return patch
}

/**
 * The token a scope hands on: the later of the token it received and the token of its own last write.
 * @example
 * tokenOf(currentContext()) // '0/20' after a write at 0/20 in a scope given '0/10'
 */
export function tokenOf(store: ContextStore | undefined): string | undefined {
  return store?.writes.tokens.minToken(store.minLsn)
}

/** The shard key a scope hands on (withShardKey or a received X-DB-Shard-Key), as header text. */
export function shardKeyOf(store: ContextStore | undefined): string | undefined {
  const key = store?.shardKey
  return key === undefined || key === null ? undefined : String(key)
}

/** The route hint a scope hands on: `primary` under withPrimary, else its tier. */
export function routeHintOf(store: ContextStore | undefined): string | undefined {
  if (!store) return undefined
  return store.primary ? 'primary' : store.tier
}

/** The default DebugLog: `util.debuglog('freshet')`, printed when NODE_DEBUG includes freshet. */
export function nodeDebugLog(message: string, fields: Record<string, unknown>): void {
  nodeDebug('%s %j', message, fields)
}
