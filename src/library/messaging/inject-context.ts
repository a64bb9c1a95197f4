// Producer side of freshet/messaging: the current scope's route hint, write token and traceparent into message headers.

import { currentContext } from '../context.js'
import {
  LSN_HEADER,
  ROUTE_HINT_HEADER,
  routeHintOf,
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
 * last write) and `traceparent`. Headers the scope has no value for are left alone. Works with any
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
  if (store?.traceparent) headers[TRACEPARENT_HEADER] = store.traceparent
  return headers
}
