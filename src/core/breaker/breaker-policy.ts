// The one breaker policy both faces follow: what a use of a node tells its circuit breaker.

import type { Breaker } from './circuit-breaker.js'

/**
 * What happened when freshet used a node (docs/routing.md, "What trips a circuit breaker"):
 * - `answered`: the server answered (a statement's result, or its SQL error: the node is up);
 * - `connection_failed`: connecting, validating a connection or using it failed at the connection
 *   level (refused, reset, timed out, closed under a statement);
 * - `login_refused`: PostgreSQL refused the login (role, database, password): the node is up and the
 *   credentials are not, so the breaker is not told.
 */
export type NodeOutcome = 'answered' | 'connection_failed' | 'login_refused'

/**
 * Reports one use of a node to its breaker (none: a node without one, such as a node that left).
 * @example
 * reportOutcome(tracker.breaker(node), isConnectionError(err) ? 'connection_failed' : 'answered')
 */
export function reportOutcome(breaker: Breaker | undefined, outcome: NodeOutcome): void {
  if (breaker === undefined) return
  if (outcome === 'answered') breaker.success()
  else if (outcome === 'connection_failed') breaker.failure()
}
