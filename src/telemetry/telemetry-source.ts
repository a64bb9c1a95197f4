// What telemetry (metrics, logs, the decision log) reads from a routing engine: the fixed list of
// lifecycle events, the running config and node snapshots. Declared here so telemetry sits below the
// routing engine and the faces and depends on no implementation.

import type { EventEmitter } from 'node:events'
import type { Classification } from '../core/classify/classification.js'
import type { FreshetConfig } from '../core/config/schema.js'
import type { Decision } from '../core/route/decision.js'
import type { NodeSnapshot } from '../core/topology/node-snapshot.js'

/** The fixed list of lifecycle events the engine emits (metrics, logs and the admin API listen). */
export interface EngineEvents {
  decision: [decision: Decision, classification: Classification]
  primary_change: [from: string, to: string]
  breaker: [node: string, from: string, to: string]
  health: [node: string, healthy: boolean]
  config: [config: FreshetConfig]
  controls: [controls: FreshetConfig['controls']]
  log: [level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>]
  /** Sharded configs: a statement named no single shard (sent to the aggregate node, or refused). */
  cross_shard: [tables: readonly string[], outcome: 'aggregate' | 'refused']
  /** Sharded configs: a new routing map version applied. */
  routing_map: [version: number]
}

/**
 * The part of a routing engine telemetry listens to: its events, its config and its node snapshots.
 * A RoutingEngine is one; tests can pass any EventEmitter with these members.
 * @example
 * metrics.attachEngine(pool.engine)
 */
export type TelemetrySource = Pick<EventEmitter<EngineEvents>, 'on' | 'off'> & {
  readonly config: FreshetConfig
  snapshot(): readonly NodeSnapshot[]
  /** Sharded configs: the routing map version in force (routing_map_version). */
  readonly mapVersion?: number
}

/** Connection counts of one node pool. */
export interface PoolStats {
  readonly total: number
  readonly idle: number
  readonly waiting: number
  readonly active: number
}

/** Per-node pool counts by node name, read on scrape or API call (null: node without a pool). */
export type PoolStatsProvider = () => Readonly<Record<string, PoolStats | null | undefined>>
