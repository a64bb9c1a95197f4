// What the admin API, metrics and logs need from a routing engine and its pools: an interface, so the
// library pool and the proxy plug in the same way.

import type { Classification } from '../core/classify/classification.js'
import type { FreshetConfig } from '../core/config/schema.js'
import type { Decision } from '../core/route/decision.js'
import type { RoutingContext, SessionView } from '../core/route/routing-context.js'
import type { PoolStats, PoolStatsProvider, TelemetrySource } from '../telemetry/telemetry-source.js'

export type { PoolStats, PoolStatsProvider }

/**
 * What the admin API, metrics and logs need from a routing engine, declared here so admin depends on
 * this interface and not on the engine's implementation (a RoutingEngine is one): telemetry's events,
 * config and snapshots, plus reload, emergency controls and explain (a dry-run decision).
 */
export interface AdminEngine extends TelemetrySource {
  /** Swaps in a newer config; throws ConfigError when it is not newer. */
  reload(next: FreshetConfig): void
  /** Changes emergency controls at once; returns the controls now in force. */
  setControls(patch: Partial<FreshetConfig['controls']>): FreshetConfig['controls']
  classify(sql: string): Classification
  /**
   * Explain: the decision as a dry run, with the classification it was made from. `sql`: the statement's
   * text, which a sharded engine reads its shard key from (a plain engine ignores it).
   */
  decide(
    statement: Classification,
    session: SessionView,
    context: RoutingContext,
    options: { readonly dryRun: true; readonly sql?: string },
  ): { readonly decision: Decision; readonly classification: Classification }
}

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
