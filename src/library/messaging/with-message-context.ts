// Consumer side of freshet/messaging: runs a message handler in the scope its headers describe.

import { withScope } from '../context.js'
import {
  contextFromHeaders,
  type HeaderContextOptions,
  type HeaderValue,
  headerText,
  LSN_HEADER,
  ROUTE_HINT_HEADER,
  SHARD_KEY_HEADER,
  TRACEPARENT_HEADER,
} from '../context-from-headers.js'

/** Message headers as broker clients give them: a plain object (any key case) or a `get(name)` map (NATS). */
export type MessageHeaders =
  | Readonly<Record<string, HeaderValue | unknown>>
  | { get(name: string): HeaderValue | unknown }
  | null
  | undefined

export interface MessageContextOptions extends HeaderContextOptions {
  /** The pool whose `routing.tiers` route hints are checked against (else any well-formed name). */
  pool?:
    | { readonly config: { readonly routing: { readonly tiers: Readonly<Record<string, unknown>> } } }
    | undefined
}

/**
 * Runs `handler` in a fresh scope built from a message's headers: its reads use the producer's tier
 * (or the primary) and see at least the producer's write (`x-primary-lsn`). Invalid values are
 * ignored with a debug log; a message without headers runs in a plain fresh scope.
 * @example
 * import { withMessageContext } from 'freshet/messaging'
 * channel.consume('orders', (msg) =>
 *   withMessageContext(msg.properties.headers, async () => {
 *     const { rows } = await pool.query('SELECT * FROM orders WHERE id = $1', [id]) // sees the producer's insert
 *   }))
 */
export function withMessageContext<T>(
  headers: MessageHeaders,
  handler: () => T,
  options: MessageContextOptions = {},
): T {
  const get = lookup(headers)
  const patch = contextFromHeaders(
    {
      hint: headerText(get(ROUTE_HINT_HEADER) as HeaderValue),
      lsn: headerText(get(LSN_HEADER) as HeaderValue),
      traceparent: headerText(get(TRACEPARENT_HEADER) as HeaderValue),
      shardKey: headerText(get(SHARD_KEY_HEADER) as HeaderValue),
    },
    {
      tiers: options.tiers ?? (options.pool ? Object.keys(options.pool.config.routing.tiers) : undefined),
      hints: options.hints,
      debug: options.debug,
    },
  )
  return withScope(handler, patch)
}

/** Case-insensitive header lookup over either shape. */
function lookup(headers: MessageHeaders): (name: string) => unknown {
  if (!headers) return () => undefined
  if (typeof (headers as { get?: unknown }).get === 'function') {
    const map = headers as { get(name: string): unknown }
    return (name) => map.get(name) ?? undefined
  }
  const record = headers as Readonly<Record<string, unknown>>
  return (name) => {
    if (Object.hasOwn(record, name)) return record[name]
    for (const key of Object.keys(record)) if (key.toLowerCase() === name) return record[key]
    return undefined
  }
}
