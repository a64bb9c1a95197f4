// The strategy that picks one replica among those eligible for a read.

import type { NodeState } from '../topology/node-state.js'

/** Policy names as written in config `routing.policy`. */
export type PolicyName =
  | 'lag_aware_round_robin'
  | 'least_lag'
  | 'weighted'
  | 'least_connections'
  | 'least_latency'

/**
 * Picks one node among eligible candidates. The decision calls it with a non-empty list of replicas
 * that already satisfy the tier (healthy, breaker closed, lag within bound); the list is a reused
 * scratch array, so a policy must not keep it.
 *
 * Every built-in policy honours slow start (`NodeState.rampFactor`: a replica at 0.2 gets about 20% of
 * its normal share) and `routing.local_zone` (same-zone candidates first, the rest only when no
 * same-zone candidate is eligible).
 */
export interface ReplicaPolicy {
  readonly name: string
  pick(candidates: readonly NodeState[], now: number): NodeState
}

export interface PolicyOptions {
  /** config `routing.local_zone`: prefer candidates whose `zone` equals it. */
  readonly localZone?: string | null
  /** Uniform [0, 1) source for slow start and weighted picks; Math.random by default. Inject for tests. */
  readonly random?: () => number
}

/**
 * The zone candidates must be in, or null for any: `localZone` when at least one candidate is there.
 * @internal shared by the built-in policies
 */
export function zoneFilter(candidates: readonly NodeState[], localZone: string | null): string | null {
  if (localZone === null) return null
  for (const c of candidates) if (c.zone === localZone) return localZone
  return null
}

/**
 * Slow start: true when a ramping candidate sits this pick out (probability 1 - rampFactor).
 * @internal shared by the built-in policies
 */
export function rampSkips(node: NodeState, random: () => number): boolean {
  const ramp = node.rampFactor
  return ramp < 1 && random() >= ramp
}
