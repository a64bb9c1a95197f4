// Which replica may serve which tier right now, and why not: one answer for the replica_eligible metric,
// the admin API's topology, the dashboard's matrix and the admin console's SHOW NODES.

import type { NodeSnapshot } from './node-snapshot.js'

/** Why a replica may or may not serve a tier, most basic cause first. */
export type EligibilityReason =
  | 'eligible'
  | 'controls'
  | 'unhealthy'
  | 'breaker_open'
  | 'breaker_half_open'
  | 'lag_unknown'
  | 'over_bound'

/** One cell of the replica x tier matrix. */
export interface EligibilityCell {
  readonly eligible: boolean
  readonly reason: EligibilityReason
  /** For people: e.g. `staleness 812 ms > near_rt 500 ms`. */
  readonly detail: string
}

/** What the check reads from the config. */
export interface EligibilityConfig {
  readonly routing: { readonly tiers: Readonly<Record<string, { readonly max_lag_ms: number }>> }
  readonly controls: { readonly route_all_to_primary: boolean; readonly disable_replica_pools: boolean }
}

/**
 * The staleness a tier's bound is compared with: the node's staleness bound (`staleness_bound_ms`, the
 * decision's own test; null = nothing proven, so no tier with a bound), never the last lag reading.
 */
export function stalenessOf(node: NodeSnapshot): number | null {
  return node.staleness_bound_ms
}

/**
 * The replica x tier matrix: for every replica and every tier of the config, eligible or why not.
 * @example
 * tierEligibility(engine.snapshot(), engine.config).replica_1?.near_rt // { eligible: true, reason: 'eligible', ... }
 */
export function tierEligibility(
  nodes: readonly NodeSnapshot[],
  config: EligibilityConfig,
): Record<string, Record<string, EligibilityCell>> {
  const out: Record<string, Record<string, EligibilityCell>> = {}
  const { controls } = config
  for (const node of nodes) {
    if (node.role === 'primary') continue
    const row: Record<string, EligibilityCell> = {}
    const staleness = stalenessOf(node)
    for (const [tier, { max_lag_ms }] of Object.entries(config.routing.tiers)) {
      row[tier] = cell(node, staleness, tier, max_lag_ms, controls)
    }
    out[node.name] = row
  }
  return out
}

function cell(
  node: NodeSnapshot,
  staleness: number | null,
  tier: string,
  bound: number,
  controls: EligibilityConfig['controls'],
): EligibilityCell {
  if (controls.route_all_to_primary) return no('controls', 'controls.route_all_to_primary is on')
  if (controls.disable_replica_pools) return no('controls', 'controls.disable_replica_pools is on')
  if (!node.healthy) return no('unhealthy', node.error ? `unhealthy: ${node.error}` : 'unhealthy')
  if (node.breaker === 'open') return no('breaker_open', 'circuit breaker open')
  if (node.breaker === 'half_open')
    return no('breaker_half_open', 'circuit breaker half-open (trial requests only)')
  if (staleness === null)
    return no('lag_unknown', 'staleness not proven yet (no reading reached a primary position)')
  if (staleness > bound) return no('over_bound', `staleness ${staleness} ms > ${tier} ${bound} ms`)
  return { eligible: true, reason: 'eligible', detail: `staleness ${staleness} ms <= ${tier} ${bound} ms` }
}

function no(reason: EligibilityReason, detail: string): EligibilityCell {
  return { eligible: false, reason, detail }
}
