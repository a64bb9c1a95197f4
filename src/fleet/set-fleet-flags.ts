// Sets fleet-wide emergency flags by compare-and-swap (concurrent setters never lose each other's
// change); each instance applies them within `flags.eval_interval_ms`, without a quorum round.

import type { FreshetConfig } from '../core/config/schema.js'
import type { FlagsRecord } from './fleet-records.js'
import type { FleetStore } from './fleet-store.js'

/**
 * Merges `patch` into the fleet's flags and records who set them.
 * @example
 * await setFleetFlags(store, { route_all_to_primary: true }, 'ops@laptop')
 */
export async function setFleetFlags(
  store: FleetStore,
  patch: Partial<FreshetConfig['controls']>,
  setBy: string,
): Promise<FlagsRecord> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const current = await store.flags()
    const next: FlagsRecord = {
      controls: { ...current.value?.controls, ...patch },
      set_by: setBy,
      at: new Date().toISOString(),
    }
    if (await store.swapFlags(current.revision, next)) return next
  }
  throw new Error('the fleet flags kept changing under 10 attempts to set them; try again')
}
