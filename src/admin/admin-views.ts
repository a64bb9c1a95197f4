// What the admin HTTP API and the admin console both answer, built in one place: the topology view
// (nodes, pools, tiers, eligibility) and the emergency controls patch.

import { CONTROL_KEYS, type ControlKey } from '../core/config/fleet-schema.js'
import type { FreshetConfig } from '../core/config/schema.js'
import { tierEligibility } from '../core/topology/tier-eligibility.js'
import type { AdminEngine, PoolStatsProvider } from './admin-engine.js'

export { CONTROL_KEYS, type ControlKey }

/**
 * `GET /api/v1/topology`'s body: config version, primary, controls, tiers, nodes with pool counts, and
 * the replica x tier eligibility matrix.
 * @example topologyView(engine, () => proxy.poolStats()).eligibility.replica_1?.near_rt?.eligible
 */
export function topologyView(
  engine: Pick<AdminEngine, 'config' | 'snapshot'>,
  poolStats?: PoolStatsProvider,
) {
  const config = engine.config
  const stats = poolStats?.() ?? {}
  const nodes = engine.snapshot().map((n) => ({ ...n, pool: stats[n.name] ?? null }))
  const tiers: Record<string, { max_lag_ms: number; fallback: string }> = {}
  for (const [name, t] of Object.entries(config.routing.tiers)) {
    tiers[name] = { max_lag_ms: t.max_lag_ms, fallback: t.fallback }
  }
  // sharded: one entry per shard (its primary and nodes), the aggregate node as shard '@aggregate'
  const byShard = new Map<string, { name: string; primary: string | null; nodes: string[] }>()
  for (const n of nodes as ((typeof nodes)[number] & { shard?: string })[]) {
    if (n.shard === undefined) continue
    let s = byShard.get(n.shard)
    if (!s) {
      s = { name: n.shard, primary: null, nodes: [] }
      byShard.set(n.shard, s)
    }
    s.nodes.push(n.name)
    if (n.role === 'primary') s.primary = n.name
  }
  const mapVersion = (engine as { mapVersion?: number }).mapVersion
  return {
    config_version: config.version,
    primary: nodes.find((n) => n.role === 'primary')?.name ?? null,
    ...(byShard.size > 0 ? { shards: [...byShard.values()] } : {}),
    ...(mapVersion !== undefined ? { routing_map_version: mapVersion } : {}),
    controls: config.controls,
    tiers,
    nodes,
    /** replica -> tier -> { eligible, reason, detail } (the replica_eligible metric, with the why) */
    eligibility: tierEligibility(nodes, config),
  }
}

/** The outcome of {@link applyControls}. */
export type ControlsOutcome =
  | { readonly ok: true; readonly controls: FreshetConfig['controls'] }
  | { readonly ok: false; readonly issues: { path: string; message: string }[] }

/**
 * Checks a controls patch: known keys, booleans only.
 * @example validateControls({ route_all_to_primary: true }) // { ok: true, patch: { route_all_to_primary: true } }
 */
export function validateControls(
  patch: Record<string, unknown>,
):
  | { ok: true; patch: Partial<FreshetConfig['controls']> }
  | { ok: false; issues: { path: string; message: string }[] } {
  const issues: { path: string; message: string }[] = []
  const clean: Partial<FreshetConfig['controls']> = {}
  for (const [key, value] of Object.entries(patch)) {
    if (!(CONTROL_KEYS as readonly string[]).includes(key)) {
      issues.push({ path: key, message: `unknown control (known: ${CONTROL_KEYS.join(', ')})` })
    } else if (typeof value !== 'boolean') {
      issues.push({ path: key, message: 'must be true or false' })
    } else clean[key as ControlKey] = value
  }
  return issues.length > 0 ? { ok: false, issues } : { ok: true, patch: clean }
}

/**
 * Validates a controls patch (known keys, booleans only) and applies it atomically, calling `changed` for
 * each control whose value moved. Nothing is applied when any key is bad.
 * @example applyControls(engine, { route_all_to_primary: true }, (key, from, to) => log.warn({ key, from, to }))
 */
export function applyControls(
  engine: Pick<AdminEngine, 'config' | 'setControls'>,
  patch: Record<string, unknown>,
  changed: (key: ControlKey, from: boolean, to: boolean) => void,
): ControlsOutcome {
  const checked = validateControls(patch)
  if (!checked.ok) return checked
  const clean = checked.patch
  const before = engine.config.controls
  const after = engine.setControls(clean)
  for (const key of CONTROL_KEYS) if (before[key] !== after[key]) changed(key, before[key], after[key])
  return { ok: true, controls: after }
}
