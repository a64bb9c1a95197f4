// Which replicas have replayed a read-your-writes token: for the async layer that waits for one.

import type { NodeState, TopologyView } from '../topology/node-state.js'
import { stalenessBoundMs } from '../topology/staleness-bound.js'
import { LSN_ORDER, type TokenOrder } from './token-order.js'

/**
 * Healthy replicas with a closed breaker whose replay LSN has reached `lsn` (a bigint or text such as
 * `0/16B3748`; invalid text matches nothing). `order` compares other tokens (MySQL/MariaDB GTIDs). The caller may wait up to `consistency.max_wait_for_sync_ms`
 * for this to become non-empty before deciding, so the decision then finds an eligible replica.
 * With `within`, only replicas whose staleness bound at `now` is at most `maxBoundMs` count (the tier's
 * eligibility, so a wait ends only for a replica the decision can use).
 *
 * @example
 * while (replicasAtLsn(topology(), token).length === 0 && Date.now() < deadline) await lagTick()
 */
export function replicasAtLsn(
  topology: TopologyView,
  lsn: bigint | string,
  order: TokenOrder = LSN_ORDER,
  within?: { readonly now: number; readonly maxBoundMs: number },
): NodeState[] {
  const token = typeof lsn === 'bigint' ? lsn : order.parse(lsn)
  const out: NodeState[] = []
  if (token === null) return out
  for (const name of topology.replicas) {
    const n = topology.nodes.get(name)
    if (
      n !== undefined &&
      n.role === 'replica' &&
      n.healthy &&
      n.breaker === 'closed' &&
      order.reached(n, token)
    ) {
      if (within !== undefined) {
        const bound = stalenessBoundMs(n.freshAsOf, within.now)
        if (bound === null || bound > within.maxBoundMs) continue
      }
      out.push(n)
    }
  }
  return out
}
