// What a fleet member reports about itself (its link to etcd, versions) and the events it emits: apart
// from FleetMember, so that its readers (metrics, /readyz) depend on these types and not on the class.

import type { ControlKey } from '../core/config/fleet-schema.js'
import type { InstanceKind } from './fleet-records.js'

/** What /readyz, metrics and `config status` show about this instance's link to the fleet. */
export interface FleetInstanceState {
  readonly instance: string
  readonly kind: InstanceKind
  /** null until the first attempt finished. */
  readonly etcd: 'connected' | 'unreachable' | 'unknown'
  /** When the link last changed state (ISO time). */
  readonly since: string | null
  readonly last_error: string | null
  readonly running_version: number
  readonly committed_version: number | null
  /** Where the running config came from at start: etcd, the local cache, or the config file. */
  readonly started_from: 'etcd' | 'cache' | 'file' | null
  readonly apply_error: string | null
}

export interface FleetMemberEvents {
  applied: [version: number, source: 'etcd' | 'cache']
  flag: [flag: ControlKey, from: boolean, to: boolean, setBy: string]
  connection: [connected: boolean]
  ack: [proposal: string, ok: boolean]
}
