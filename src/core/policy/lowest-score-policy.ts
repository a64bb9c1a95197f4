// least_lag, least_connections, least_latency: pick the candidate with the lowest score.

import type { NodeState } from '../topology/node-state.js'
import { type PolicyOptions, type ReplicaPolicy, rampSkips, zoneFilter } from './replica-policy.js'

/** Scores for the built-in lowest-score policies; lower is better. */
export const SCORES = Object.freeze({
  // the smallest staleness bound is the latest proven-fresh moment (same `now` for every candidate)
  least_lag: (n: NodeState): number => (n.freshAsOf === null ? Number.POSITIVE_INFINITY : -n.freshAsOf),
  least_connections: (n: NodeState): number => n.active,
  // unmeasured latency counts as best so that a new replica gets traffic and a measurement
  least_latency: (n: NodeState): number => n.latencyEwmaMs ?? Number.NEGATIVE_INFINITY,
})

/**
 * Picks the candidate with the lowest score. Ties are broken by a rotating start so that equal
 * replicas share the load instead of the first one taking it all. A ramping candidate sits a pick out
 * with probability 1 - rampFactor (if every candidate sits out, all compete).
 *
 * @example
 * const leastLag = new LowestScorePolicy('least_lag', SCORES.least_lag)
 */
export class LowestScorePolicy implements ReplicaPolicy {
  readonly name: string
  readonly #score: (n: NodeState) => number
  readonly #localZone: string | null
  readonly #random: () => number
  #next = 0

  constructor(name: string, score: (n: NodeState) => number, options: PolicyOptions = {}) {
    this.name = name
    this.#score = score
    this.#localZone = options.localZone ?? null
    this.#random = options.random ?? Math.random
  }

  pick(candidates: readonly NodeState[], _now: number): NodeState {
    const zone = zoneFilter(candidates, this.#localZone)
    const n = candidates.length
    const start = this.#next % n
    this.#next = (start + 1) % n
    let best: NodeState | undefined
    let bestScore = Number.POSITIVE_INFINITY
    let fallback: NodeState | undefined
    let fallbackScore = Number.POSITIVE_INFINITY
    for (let i = 0; i < n; i++) {
      const c = candidates[(start + i) % n]!
      if (zone !== null && c.zone !== zone) continue
      const s = this.#score(c)
      if (fallback === undefined || s < fallbackScore) {
        fallback = c
        fallbackScore = s
      }
      if (rampSkips(c, this.#random)) continue
      if (best === undefined || s < bestScore) {
        best = c
        bestScore = s
      }
    }
    return best ?? fallback ?? candidates[start]!
  }
}
