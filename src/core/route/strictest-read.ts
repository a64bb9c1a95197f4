// Which statement a batch of several reads routes by: the strictest of them. Pure: the candidates are
// compared on dry-run decisions the caller supplies.

import type { Classification } from '../classify/classification.js'
import { parseLsn } from '../lsn.js'
import type { Decision } from './decision.js'

/**
 * The classification a batch of several reads (none needs the primary by its class) is decided by.
 * Each candidate is judged on its dry-run decision: one for the primary wins (an unannotated read under
 * `routing.unannotated: primary`, a strict tier, a volatile function, a token no replica has...), then
 * an error decision (that statement could not run alone either), else the read whose tier has the
 * smallest `max_lag_ms` (no tier, as with ROUTE_TO: replica, is the loosest), made to honour the
 * latest MIN_LSN of the batch (then a new frozen classification carrying that token).
 *
 * @example
 * const c = strictestRead(reads, (r) => decider.decide(r, { ...input, dryRun: true }), 'primary', config.routing.tiers)
 */
export function strictestRead(
  reads: readonly Classification[],
  dryRun: (c: Classification) => Decision,
  primary: string,
  tiers: Readonly<Record<string, { readonly max_lag_ms: number }>>,
): Classification {
  let best: Classification | null = null
  let bestMinLsn: string | null = null
  let bestBound = 0
  let failed: Classification | null = null
  let latest: bigint | null = null
  let latestText: string | null = null
  for (const c of reads) {
    const d = dryRun(c)
    if (d.target === primary) return c
    if (d.target === null) {
      failed ??= c
      continue
    }
    const bound = d.tier === null ? Number.POSITIVE_INFINITY : (tiers[d.tier]?.max_lag_ms ?? 0)
    if (best === null || bound < bestBound) {
      best = c
      bestMinLsn = d.minLsn
      bestBound = bound
    }
    const lsn = d.minLsn === null ? null : parseLsn(d.minLsn)
    if (lsn !== null && (latest === null || lsn > latest)) {
      latest = lsn
      latestText = d.minLsn
    }
  }
  if (failed !== null || best === null) return failed!
  if (latest === null || (bestMinLsn !== null && parseLsn(bestMinLsn) === latest)) return best
  return Object.freeze({ ...best, hints: Object.freeze({ ...best.hints, minLsn: latestText! }) })
}
