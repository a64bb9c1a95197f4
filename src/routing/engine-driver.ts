// What the routing engine needs from a database engine: a classifier, node monitors, a heartbeat writer,
// token order. PostgreSQL's parts are the default; freshet/mysql brings MySQL/MariaDB's.

import pg from 'pg'
import { HeartbeatWriter, type HeartbeatWriterOptions } from '../backend/heartbeat-writer.js'
import { NodeMonitor, type NodeMonitorOptions, type NodeReading } from '../backend/node-monitor.js'
import type { VolatilityCache } from '../backend/volatility-cache.js'
import type { Classification } from '../core/classify/classification.js'
import { Classifier } from '../core/classify/classifier.js'
import type { FreshetConfig } from '../core/config/schema.js'
import { LSN_ORDER, type TokenOrder } from '../core/route/token-order.js'
import { LSN_POSITIONS, type PositionOrder } from '../core/topology/staleness-bound.js'

/** A node monitor as the engine drives it (one dedicated connection, a jittered probe loop). */
export interface EngineMonitor {
  readonly name: string
  readonly url: string
  readonly intervalMs: number
  readonly timeoutMs: number
  start(): void
  probe(): Promise<NodeReading>
  heartbeatAvailable(table: string | null): void
  stop(): Promise<void>
}

/** The heartbeat writer as the engine drives it. */
export interface EngineHeartbeat {
  beat(): Promise<boolean>
  start(): void
  stop(): Promise<void>
}

/** Something that classifies SQL text (cached by text). */
export interface StatementClassifier {
  classify(sql: string): Classification
}

/**
 * The engine-specific parts of routing. The decision order, tiers, policies, breakers and topology are
 * shared; only how statements are parsed, how nodes are probed and how tokens compare differ.
 */
export interface EngineDriver {
  readonly engine: 'postgres' | 'mysql'
  /** Loads the parser once per process (before the first classify). */
  loadParser(): Promise<void>
  createClassifier(config: FreshetConfig): StatementClassifier
  createMonitor(options: NodeMonitorOptions): EngineMonitor
  createHeartbeat(options: HeartbeatWriterOptions): EngineHeartbeat
  readonly tokens: TokenOrder
  /** How replay positions (a reading's `lsn` text) compare, for the staleness bound; LSNs when absent. */
  readonly positions?: PositionOrder
  /** Fills the function volatility cache (PostgreSQL's pg_proc); engines without one leave it empty. */
  loadVolatility(cache: VolatilityCache, primaryUrl: string, timeoutMs: number): Promise<void>
  /**
   * Waits on the replicas themselves for a token (MariaDB MASTER_GTID_WAIT): resolves with a replica that
   * reached it, or null after `timeoutMs`. Optional: without it the engine re-probes until one has.
   */
  waitForToken?(token: string, replicas: readonly EngineMonitor[], timeoutMs: number): Promise<string | null>
}

/** The classifier options a config gives. */
export function classifierOptions(config: FreshetConfig) {
  return {
    writeFunctions: [...config.routing.write_functions],
    readOnlyFunctions: [...config.routing.read_only_functions],
    engine: config.classifier.engine,
    rules: config.classifier.rules.map((r) => ({ ...r })),
    cacheSize: config.classifier.cache_size,
  }
}

/** PostgreSQL: libpg-query, pg monitors and heartbeat, LSN tokens, pg_proc volatility. */
export const POSTGRES_DRIVER: EngineDriver = Object.freeze({
  engine: 'postgres' as const,
  loadParser: () => Classifier.loadParser(),
  createClassifier: (config: FreshetConfig) => Classifier.createSync(classifierOptions(config)),
  createMonitor: (options: NodeMonitorOptions) => new NodeMonitor(options),
  createHeartbeat: (options: HeartbeatWriterOptions) => new HeartbeatWriter(options),
  tokens: LSN_ORDER,
  positions: LSN_POSITIONS as PositionOrder,
  loadVolatility: (cache: VolatilityCache, url: string, timeoutMs: number) =>
    cache.load((sql, params) => runOnce(url, sql, params, timeoutMs)),
})

async function runOnce(
  url: string,
  sql: string,
  params: unknown[] | undefined,
  timeoutMs: number,
): Promise<pg.QueryResult> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: timeoutMs,
    application_name: 'freshet',
  })
  client.on('error', () => {})
  await client.connect()
  try {
    return await client.query(sql, params)
  } finally {
    await client.end().catch(() => {})
  }
}
