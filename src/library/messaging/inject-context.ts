// Producer side of freshet/messaging: the current scope's route hint, write token and traceparent into message headers.

import { isSpanContextValid, trace } from '@opentelemetry/api'
import { currentContext } from '../context.js'
import {
  LSN_HEADER,
  ROUTE_HINT_HEADER,
  routeHintOf,
  SHARD_KEY_HEADER,
  shardKeyOf,
  TRACEPARENT_HEADER,
  tokenOf,
} from '../context-from-headers.js'

export interface InjectOptions {
  /**
   * The pool that wrote: its `lastWriteToken()` also covers writes made outside any scope (scripts,
   * jobs). Inside a scope the scope's own state is enough.
   */
  pool?: { lastWriteToken(): string | null } | undefined
}

/**
 * Adds freshet's propagation headers to a message's headers: `x-db-route-hint` (the scope's tier, or
 * `primary` under withPrimary), `x-primary-lsn` (the later of the token the scope received and its own
 * last write; per shard with a sharded config), `x-db-shard-key` (the scope's shard key) and `traceparent` (of the active OpenTelemetry span when there is one, so the consumer's
 * spans join the producer's trace; else the one the scope received). Headers the scope has no value for are left alone. Works with any
 * broker whose headers are string maps (AMQP, Kafka, NATS, Redis stream fields, SQS attributes).
 * @example
 * import { injectContext } from 'freshet/messaging'
 * await pool.query('INSERT INTO orders ...')
 * channel.publish('orders', '', body, { headers: injectContext({}, { pool }) })
 */
export function injectContext(
  headers: Record<string, string> = {},
  options: InjectOptions = {},
): Record<string, string> {
  const store = currentContext()
  const hint = routeHintOf(store)
  if (hint) headers[ROUTE_HINT_HEADER] = hint
  const token = tokenOf(store) ?? options.pool?.lastWriteToken() ?? undefined
  if (token) headers[LSN_HEADER] = token
  const shardKey = shardKeyOf(store)
  if (shardKey !== undefined) headers[SHARD_KEY_HEADER] = shardKey
  const traceparent = activeTraceparent() ?? store?.traceparent
  if (traceparent) headers[TRACEPARENT_HEADER] = traceparent
  return headers
}

/** The W3C traceparent of the active OpenTelemetry span (the producer's own), if an SDK made one. */
function activeTraceparent(): string | undefined {
  const sc = trace.getActiveSpan()?.spanContext()
  if (sc === undefined || !isSpanContextValid(sc)) return undefined
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`
}
