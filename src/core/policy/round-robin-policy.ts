// lag_aware_round_robin: rotate over the replicas within the tier's lag bound.

import type { NodeState } from '../topology/node-state.js'
import { type PolicyOptions, type ReplicaPolicy, rampSkips, zoneFilter } from './replica-policy.js'

/**
 * Round robin over the eligible candidates (the decision has already applied the lag bound, hence
 * "lag aware"). A ramping replica whose turn comes is skipped with probability 1 - rampFactor and the
 * turn passes on; when every candidate skips, the original turn stands.
 *
 * @example
 * const policy = new RoundRobinPolicy({ localZone: 'eu-1' })
 * policy.pick(eligible, Date.now())
 */
export class RoundRobinPolicy implements ReplicaPolicy {
  readonly name = 'lag_aware_round_robin'
  readonly #localZone: string | null
  readonly #random: () => number
  #next = 0

  constructor(options: PolicyOptions = {}) {
    this.#localZone = options.localZone ?? null
    this.#random = options.random ?? Math.random
  }

  pick(candidates: readonly NodeState[], _now: number): NodeState {
    const zone = zoneFilter(candidates, this.#localZone)
    const n = candidates.length
    const start = this.#next % n
    // the turn belongs to the first in-zone candidate from `start`; the rotation moves past it even
    // when slow start passes the pick on, so a ramping replica's turns come at the normal rate
    let turn = -1
    for (let i = 0; i < n; i++) {
      const idx = (start + i) % n
      const c = candidates[idx]!
      if (zone !== null && c.zone !== zone) continue
      if (turn < 0) {
        turn = idx
        this.#next = (idx + 1) % n
      }
      if (!rampSkips(c, this.#random)) return c
    }
    return candidates[turn < 0 ? start : turn]!
  }
}
