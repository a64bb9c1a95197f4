// Freshness tiers by name and by table (config routing.tiers and domains), precomputed for the hot path.

import type { FreshetConfig } from '../config/schema.js'

/** A tier from `routing.tiers`, frozen and shared by every decision that uses it. */
export interface ResolvedTier {
  readonly name: string
  readonly maxLagMs: number
  readonly fallback: 'primary' | 'error' | 'least_lagged'
  readonly fallbackRateLimit: number
  /** max_lag_ms 0: only the primary is fresh enough. */
  readonly strict: boolean
}

/** A `domains` entry that matched one of a statement's tables. */
export interface DomainMatch {
  /** The `domains` key that matched, as written in the config. */
  readonly table: string
  readonly tier: ResolvedTier
}

/**
 * Looks tiers up by name and finds the strictest `domains` tier among a statement's tables. Built once
 * per config; every lookup returns a shared frozen object, so resolving allocates nothing.
 *
 * Table matching: a statement table `sales.orders` matches the domain keys `sales.orders` and `orders`; a
 * bare `orders` matches `orders` and `public.orders` (the default search_path). Case-insensitive.
 *
 * @example
 * const tiers = new TierResolver(config)
 * tiers.byName('near_rt')?.maxLagMs // 500
 * tiers.strictestDomain(['ledger_entries', 'users'])?.tier.name // 'strict'
 */
export class TierResolver {
  readonly #tiers = new Map<string, ResolvedTier>()
  readonly #domains = new Map<string, DomainMatch>()
  /** `routing.unannotated`: 'primary', 'error', or the tier it names. */
  readonly unannotated: 'primary' | 'error' | ResolvedTier

  constructor(config: FreshetConfig) {
    for (const [name, t] of Object.entries(config.routing.tiers)) {
      this.#tiers.set(
        name,
        Object.freeze({
          name,
          maxLagMs: t.max_lag_ms,
          fallback: t.fallback,
          fallbackRateLimit: t.fallback_rate_limit,
          strict: t.max_lag_ms === 0,
        }),
      )
    }
    for (const [table, tierName] of Object.entries(config.domains)) {
      const tier = this.byName(tierName)
      if (tier === undefined) continue // the schema refuses unknown tiers; a hand-built config may not
      const key = table.toLowerCase()
      this.#domains.set(key, Object.freeze({ table, tier }))
    }
    // `public.orders` also answers for a bare `orders`, unless `orders` has its own entry
    for (const [key, match] of [...this.#domains]) {
      if (key.startsWith('public.')) {
        const bare = key.slice(7)
        if (!this.#domains.has(bare)) this.#domains.set(bare, match)
      }
    }
    const u = config.routing.unannotated
    const uTier = u === 'primary' || u === 'error' ? undefined : this.byName(u)
    this.unannotated = u === 'primary' || u === 'error' ? u : (uTier ?? 'primary')
  }

  /** The tier called `name` (case-insensitive), or undefined. */
  byName(name: string): ResolvedTier | undefined {
    return this.#tiers.get(name) ?? this.#tiers.get(name.toLowerCase())
  }

  /** Tier names in config order. */
  get names(): readonly string[] {
    return [...this.#tiers.keys()]
  }

  /**
   * The strictest (smallest max_lag_ms; first on ties) `domains` tier among `tables`, or null. Also null
   * when one of the tables has no domain: nobody said its data may be stale, so the statement is
   * unannotated (`routing.unannotated` decides) rather than taking the other tables' tier. System
   * catalogs (`pg_catalog.*`, `information_schema.*`) do not count.
   */
  strictestDomain(tables: readonly string[]): DomainMatch | null {
    if (this.#domains.size === 0) return null
    let best: DomainMatch | null = null
    for (const table of tables) {
      if (table.startsWith('pg_catalog.') || table.startsWith('information_schema.')) continue
      let match = this.#domains.get(table)
      if (match === undefined) {
        const dot = table.lastIndexOf('.')
        if (dot >= 0) match = this.#domains.get(table.slice(dot + 1))
      }
      if (match === undefined) {
        // classifier tables are lower-cased already; this only costs on a miss
        const lower = table.toLowerCase()
        if (lower !== table) match = this.#domains.get(lower)
      }
      if (match === undefined) return null
      if (best === null || match.tier.maxLagMs < best.tier.maxLagMs) best = match
    }
    return best
  }
}
