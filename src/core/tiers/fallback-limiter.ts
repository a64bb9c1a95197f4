// The per-tier cap on fallbacks to the primary (config routing.tiers.<name>.fallback_rate_limit).

import type { TierConfig } from '../config/schema.js'
import { TokenBucket } from './token-bucket.js'

/**
 * One token bucket per tier whose `fallback_rate_limit` is above 0. The bucket holds one second's
 * worth of tokens (at least one), so a cap of 20/s allows a burst of 20 after a quiet period.
 *
 * @example
 * const limiter = new FallbackLimiter(config.routing.tiers, Date.now())
 * if (!limiter.tryFallback('near_rt', Date.now())) // fail with fallback_rate_limited
 */
export class FallbackLimiter {
  readonly #buckets = new Map<string, TokenBucket>()

  constructor(tiers: Readonly<Record<string, TierConfig>>, now: number) {
    for (const [name, tier] of Object.entries(tiers)) {
      const rate = tier.fallback_rate_limit
      if (rate > 0) this.#buckets.set(name, new TokenBucket(rate, Math.max(1, rate), now))
    }
  }

  /** Counts one fallback to the primary for `tier`; false when the tier is over its cap. Uncapped tiers always pass. */
  tryFallback(tier: string, now: number): boolean {
    const bucket = this.#buckets.get(tier)
    return bucket === undefined || bucket.take(now)
  }

  /** Whether a fallback for `tier` would pass now, without counting it (explain). */
  wouldAllow(tier: string, now: number): boolean {
    const bucket = this.#buckets.get(tier)
    return bucket === undefined || bucket.available(now) >= 1
  }
}
