// proxy.workers: how many, the config each worker runs, and the messages between the primary process and its workers.

import { availableParallelism } from 'node:os'
import type { NodeReading } from '../../backend/node-monitor.js'
import type { FreshetConfig, NodeConfig } from '../../core/config/schema.js'
import type { DecisionRecord } from '../../telemetry/decision-log.js'
import type { MetricsJson } from '../../telemetry/metrics.js'
import type { ServerPoolStats } from '../server-pool.js'

/** The number of worker processes `proxy.workers` asks for ('auto': one per core). */
export function workerCount(config: FreshetConfig): number {
  const w = config.proxy.workers
  return w === 'auto' ? Math.max(1, availableParallelism()) : w
}

/**
 * The config one of `n` workers runs: each has its own server pools, so the pool bounds are split
 * (`ceil(max_active / n)`, `ceil(min_idle / n)`) and the whole proxy opens about what the config says.
 */
export function workerConfig(config: FreshetConfig, n: number): FreshetConfig {
  const split = <P extends { min_idle: number; max_active: number }>(p: P): P => ({
    ...p,
    min_idle: Math.ceil(p.min_idle / n),
    max_active: Math.max(1, Math.ceil(p.max_active / n)),
  })
  return {
    ...config,
    pools: { ...config.pools, primary: split(config.pools.primary), replicas: split(config.pools.replicas) },
  }
}

/** Primary process to worker. */
export type ToWorker =
  | {
      t: 'init'
      index: number
      count: number
      listen: string
      config: FreshetConfig
      replicas: readonly NodeConfig[] | null
      readings: [string, NodeReading][]
    }
  | { t: 'reading'; name: string; reading: NodeReading }
  | { t: 'config'; config: FreshetConfig; replicas: readonly NodeConfig[] | null }
  | { t: 'controls'; controls: FreshetConfig['controls'] }
  | { t: 'refreshed'; id: number }
  | { t: 'metrics?'; id: number }
  | { t: 'cancel'; pid: number; secret: string }
  | { t: 'stop' }

/** Worker to primary process. */
export type FromWorker =
  | { t: 'hello' }
  | { t: 'listening'; address: string; port: number; family: string }
  | { t: 'failed'; message: string }
  | { t: 'refresh'; id: number }
  | { t: 'metrics'; id: number; json: MetricsJson }
  | { t: 'pools'; stats: Record<string, ServerPoolStats> }
  | { t: 'decision'; record: DecisionRecord }
  | { t: 'cancel'; pid: number; secret: string }
  | { t: 'log'; level: 'info' | 'warn' | 'error'; message: string; fields?: Record<string, unknown> }
