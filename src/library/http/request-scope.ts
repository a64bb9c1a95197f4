// The framework-neutral half of freshet/http: request headers and cookie into a scope patch, the scope's write token onto the response.

import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import type { FreshetConfig } from '../../core/config/schema.js'
import { isReadToken } from '../../core/read-token.js'
import type { ContextStore } from '../context.js'
import {
  contextFromHeaders,
  type DebugLog,
  type HeaderContextOptions,
  headerText,
  LSN_HEADER,
  nodeDebugLog,
  ROUTE_HINT_HEADER,
  SHARD_KEY_HEADER,
  TRACEPARENT_HEADER,
} from '../context-from-headers.js'

/** The part of a FreshetPool the HTTP helpers use: its tiers and its 'log' event. */
export interface PoolLike {
  readonly config: FreshetConfig
  emit(event: 'log', level: string, message: string, fields?: Record<string, unknown>): boolean
}

/** Options shared by the Express middleware, the Fastify plugin and the plain handler wrapper. */
export interface HttpContextOptions {
  /**
   * The pool whose `routing.tiers` route hints are checked against; ignored values are also reported
   * on its 'log' event at level 'debug'. Without it any well-formed tier name is accepted.
   */
  pool?: PoolLike | undefined
  /** Tier names a hint may name, when there is no pool to ask. */
  tiers?: readonly string[] | undefined
  /** Read X-DB-Route-Hint (default true). Turn it off where requests come from untrusted clients. */
  hints?: boolean | undefined
  /** Set X-Primary-LSN on responses after writes (default true). */
  responseHeader?: boolean | undefined
  /**
   * Also carry the token in a cookie of this name (e.g. 'freshet_lsn'): set after writes, read on
   * later requests. For browsers, which do not echo response headers back.
   */
  cookie?: string | false | undefined
  /** Lifetime of the cookie in seconds (default 30): long enough for the next page, short enough to expire. */
  cookieMaxAgeSec?: number | undefined
  /** Attributes of the cookie (default 'Path=/; HttpOnly; SameSite=Lax'); add 'Secure' behind HTTPS. */
  cookieAttributes?: string | undefined
  /** Where ignored header values are reported (default: NODE_DEBUG=freshet, plus the pool's 'log'). */
  debug?: DebugLog | undefined
}

const DEFAULT_COOKIE_MAX_AGE_SEC = 30
const DEFAULT_COOKIE_ATTRIBUTES = 'Path=/; HttpOnly; SameSite=Lax'

/**
 * The scope patch for one request: its route hint, its read-your-writes token (the later of header
 * and cookie) and traceparent. Invalid values are ignored with a debug log.
 * @example
 * const patch = requestContext(req.headers, { pool })
 * await withScope(() => handle(req, res), patch)
 */
export function requestContext(
  headers: IncomingHttpHeaders,
  options: HttpContextOptions = {},
): Partial<ContextStore> {
  const lsn: (string | undefined)[] = [headerText(headers[LSN_HEADER])]
  if (options.cookie) lsn.push(readCookie(headers.cookie, options.cookie))
  return contextFromHeaders(
    {
      hint: headerText(headers[ROUTE_HINT_HEADER]),
      lsn,
      traceparent: headerText(headers[TRACEPARENT_HEADER]),
      shardKey: headerText(headers[SHARD_KEY_HEADER]),
    },
    headerOptions(options),
  )
}

/**
 * The response headers that hand a scope's write token back to the caller: X-Primary-LSN and/or a
 * Set-Cookie, or nothing when the scope did not write.
 * @example
 * for (const [name, value] of Object.entries(responseToken(store, { cookie: 'freshet_lsn' }))) res.setHeader(name, value)
 */
export function responseToken(store: ContextStore, options: HttpContextOptions = {}): OutgoingHttpHeaders {
  const lsn = store.writes.tokens.token
  if (!lsn || !isReadToken(lsn)) return {}
  const out: OutgoingHttpHeaders = {}
  if (options.responseHeader !== false) out[LSN_HEADER] = lsn
  if (options.cookie) {
    const maxAge = options.cookieMaxAgeSec ?? DEFAULT_COOKIE_MAX_AGE_SEC
    const attributes = options.cookieAttributes ?? DEFAULT_COOKIE_ATTRIBUTES
    out['set-cookie'] = `${options.cookie}=${lsn}; Max-Age=${maxAge}; ${attributes}`
  }
  return out
}

/**
 * Makes `res` carry the scope's write token: wraps `res.writeHead` (which `res.end()` also goes through
 * for implicit headers), so the token is added at the last moment headers can still change, after the
 * handler's writes. Existing Set-Cookie headers are kept.
 */
export function attachResponseToken(
  res: ServerResponse,
  store: ContextStore,
  options: HttpContextOptions,
): void {
  const original = res.writeHead
  let done = false
  res.writeHead = function writeHead(this: ServerResponse, ...args: unknown[]) {
    if (!done) {
      done = true
      if (!this.headersSent) applyHeaders(this, responseToken(store, options))
    }
    return (original as (...a: unknown[]) => ServerResponse).apply(this, args)
  } as ServerResponse['writeHead']
}

/** Sets token headers on a Node response; a Set-Cookie is appended to any the app already set. */
export function applyHeaders(
  res: { getHeader(name: string): unknown; setHeader(name: string, value: string | string[]): unknown },
  headers: OutgoingHttpHeaders,
): void {
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue
    if (name === 'set-cookie') {
      const prev = res.getHeader('set-cookie')
      const list = prev === undefined ? [] : Array.isArray(prev) ? prev.map(String) : [String(prev)]
      res.setHeader('set-cookie', [...list, String(value)])
    } else {
      res.setHeader(name, String(value))
    }
  }
}

function headerOptions(options: HttpContextOptions): HeaderContextOptions {
  const pool = options.pool
  const debug: DebugLog | undefined =
    options.debug ??
    (pool
      ? (message, fields) => {
          pool.emit('log', 'debug', message, fields)
          nodeDebugLog(message, fields)
        }
      : undefined)
  return {
    tiers: options.tiers ?? (pool ? Object.keys(pool.config.routing.tiers) : undefined),
    hints: options.hints,
    debug,
  }
}

/** The value of cookie `name` in a Cookie header, when it looks like an LSN. */
function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue
    // An LSN needs no encoding; anything else is handed on raw and rejected (with a debug log) later.
    const value = part.slice(eq + 1).trim()
    return value === '' ? undefined : value
  }
  return undefined
}
