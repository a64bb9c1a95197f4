// What the admin API needs from a fleet member (src/fleet): an interface it declares, so admin does
// not depend on the etcd side. With one, PUT /api/v1/config proposes to the fleet and POST
// /api/v1/controls sets fleet-wide flags.

import type { Registry } from 'prom-client'
import type { FreshetConfig } from '../core/config/schema.js'

/** One instance's answer to a proposal. */
export interface AdminFleetAck {
  readonly instance: string
  readonly ok: boolean
  readonly issues: readonly { path: string; message: string }[]
}

/** How a proposal round ended. */
export interface AdminFleetOutcome {
  readonly status: 'committed' | 'aborted' | 'refused'
  readonly version: number
  readonly proposal: string | null
  readonly committedVersion: number | null
  readonly reason: string | null
  readonly members: readonly string[]
  readonly required: number
  readonly acks: readonly AdminFleetAck[]
}

/** A fleet member as the admin API uses it. */
export interface AdminFleet {
  readonly instance: string
  /** The link to etcd and the versions, for /readyz. */
  state(): object
  /** Runs a rollout round for a validated document; rejects when etcd cannot be reached. */
  propose(document: unknown, version: number): Promise<AdminFleetOutcome>
  /** Sets fleet-wide emergency flags; rejects when etcd cannot be reached. */
  setFlags(patch: Partial<FreshetConfig['controls']>, setBy: string): Promise<FreshetConfig['controls']>
  /** Registers the fleet's metrics; returns the detach function. */
  attachMetrics(registry: Registry): () => void
}
