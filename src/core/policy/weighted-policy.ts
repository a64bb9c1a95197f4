// weighted: random pick proportional to each replica's configured weight (times its slow-start ramp).

import type { NodeState } from '../topology/node-state.js'
import { type PolicyOptions, type ReplicaPolicy, zoneFilter } from './replica-policy.js'

/**
 * Picks a candidate with probability weight × rampFactor / total. Weight 0 drains a replica; when every
 * candidate weighs 0 the pick is uniform, because refusing an eligible read helps nobody.
 *
 * @example
 * new WeightedPolicy({ random: seeded }).pick(eligible, Date.now())
 */
export class WeightedPolicy implements ReplicaPolicy {
  readonly name = 'weighted'
  readonly #localZone: string | null
  readonly #random: () => number

  constructor(options: PolicyOptions = {}) {
    this.#localZone = options.localZone ?? null
    this.#random = options.random ?? Math.random
  }

  pick(candidates: readonly NodeState[], _now: number): NodeState {
    const zone = zoneFilter(candidates, this.#localZone)
    let total = 0
    let count = 0
    for (const c of candidates) {
      if (zone !== null && c.zone !== zone) continue
      total += share(c)
      count++
    }
    if (total <= 0) {
      let k = Math.floor(this.#random() * count)
      for (const c of candidates) {
        if (zone !== null && c.zone !== zone) continue
        if (k-- === 0) return c
      }
      return candidates[0]!
    }
    let r = this.#random() * total
    let last: NodeState = candidates[0]!
    for (const c of candidates) {
      if (zone !== null && c.zone !== zone) continue
      const s = share(c)
      if (s <= 0) continue
      last = c
      if (r < s) return c
      r -= s
    }
    return last // floating-point remainder
  }
}

function share(node: NodeState): number {
  return Math.max(0, node.weight) * Math.min(1, Math.max(0, node.rampFactor))
}
