// Builds the replica policy named in config `routing.policy`.

import { LowestScorePolicy, SCORES } from './lowest-score-policy.js'
import type { PolicyName, PolicyOptions, ReplicaPolicy } from './replica-policy.js'
import { RoundRobinPolicy } from './round-robin-policy.js'
import { WeightedPolicy } from './weighted-policy.js'

/**
 * Creates a policy by its config name. Each call returns a fresh instance with its own counters.
 *
 * @example
 * const policy = createPolicy(config.routing.policy, { localZone: config.routing.local_zone })
 */
export function createPolicy(name: PolicyName, options: PolicyOptions = {}): ReplicaPolicy {
  switch (name) {
    case 'lag_aware_round_robin':
      return new RoundRobinPolicy(options)
    case 'weighted':
      return new WeightedPolicy(options)
    case 'least_lag':
    case 'least_connections':
    case 'least_latency':
      return new LowestScorePolicy(name, SCORES[name], options)
    default:
      throw new RangeError(`unknown replica policy '${String(name)}'`)
  }
}
