// What the admin API, metrics and logs need from a routing engine and its pools: an interface, so the
// library pool and the proxy plug in the same way.

import type { RoutingEngine } from '../routing/routing-engine.js'
import type { PoolStats, PoolStatsProvider } from '../telemetry/telemetry-source.js'

export type { PoolStats, PoolStatsProvider }

/** The part of a RoutingEngine the admin side reads: events, snapshots, config, reload, controls, route. */
export type AdminEngine = Pick<
  RoutingEngine,
  'config' | 'snapshot' | 'reload' | 'setControls' | 'route' | 'explain' | 'on' | 'off' | 'emit'
>

/** Anything with a snapshot of nodes carrying pool counts, such as a FreshetPool. */
export interface PoolLike {
  readonly engine: AdminEngine
  snapshot(): readonly { readonly name: string; readonly pool: PoolStats | null }[]
}

/**
 * Pool counts of a FreshetPool (or anything with the same snapshot shape).
 * @example
 * metrics.attachEngine(pool.engine, poolStatsOf(pool))
 */
export function poolStatsOf(pool: Pick<PoolLike, 'snapshot'>): PoolStatsProvider {
  return () => {
    const out: Record<string, PoolStats | null> = {}
    for (const n of pool.snapshot()) out[n.name] = n.pool
    return out
  }
}
