// createMysqlPool(): a mysql2/promise pool look-alike that routes every statement with freshet's core.

import { EventEmitter } from 'node:events'
import type { Span } from '@opentelemetry/api'
import mysql from 'mysql2/promise'
import { loadConfigFileSync } from '../backend/config-file.js'
import { type DiscoveryState, ReplicaDiscovery } from '../backend/discovery.js'
import type { Classification } from '../core/classify/classification.js'
import { engineOf } from '../core/config/engine-schema.js'
import { validateConfig } from '../core/config/parse-config.js'
import type { FreshetConfig, FreshetConfigInput } from '../core/config/schema.js'
import { ConfigError, FreshetError, NodeUnavailableError } from '../core/errors.js'
import type { Decision } from '../core/route/decision.js'
import { decisionError } from '../core/route/decision-error.js'
import { IDLE_SESSION, type RoutingContext, type SessionView } from '../core/route/routing-context.js'
import type { NodeSnapshot } from '../core/topology/node-snapshot.js'
import { type ContextStore, currentContext, newWriteState, type WriteState } from '../library/context.js'
import { RoutingEngine } from '../routing/routing-engine.js'
import { withStatementSpan } from '../telemetry/statement-span.js'
import { type CallbackPool, callbackPool } from './callback-api.js'
import type { MysqlDialect } from './mysql-classifier.js'
import { gtidAfterWrite, MysqlDriver } from './mysql-driver.js'
import { isMysqlConnectionError, MysqlNodePools, type MysqlPoolExtras } from './mysql-node-pools.js'
import { MysqlPoolConnection } from './mysql-pool-connection.js'
import {
  type MysqlResult,
  type MysqlStatement,
  okResult,
  type RunMethod,
  runStatement,
  sqlOf,
} from './mysql-statement.js'

export type { MysqlResult, MysqlStatement } from './mysql-statement.js'

export interface CreateMysqlPoolOptions {
  /** The server family: its grammar, status statements and GTID functions. Default 'mariadb'. */
  flavor?: MysqlDialect
  /** mysql2 settings applied to every node's pool (ssl, timezone, typeCast, dateStrings ...). */
  mysql?: MysqlPoolExtras
  /** Environment for ${VAR} substitution; default process.env. */
  env?: NodeJS.ProcessEnv
}

/**
 * The routing engine over one mysql2 pool per node, with mysql2/promise's Pool surface: `query`,
 * `execute`, `getConnection`, `end`, `escape`, `format`, pool events, and `pool` (the callback-style
 * face that Kysely, Knex and TypeORM take). Reads go where their freshness tier allows; writes, locking
 * reads and anything unclassifiable go to the primary.
 */
export class MysqlPool extends EventEmitter {
  readonly engine: RoutingEngine
  readonly flavor: MysqlDialect
  readonly #pools: MysqlNodePools
  readonly #discovery: ReplicaDiscovery
  readonly #ready: Promise<void>
  #isReady = false
  readonly #globalWrites: WriteState = newWriteState()
  #callback: CallbackPool<MysqlPool> | null = null
  #ending = false
  #ended = false

  constructor(config: FreshetConfig, options: CreateMysqlPoolOptions = {}) {
    super()
    if (engineOf(config) !== 'mysql') {
      throw new ConfigError([
        { path: 'engine', message: 'createMysqlPool needs engine: mysql (or mysql:// / mariadb:// URLs)' },
      ])
    }
    const unsupported = unsupportedKeys(config)
    if (unsupported.length > 0) throw new ConfigError(unsupported)
    this.flavor = options.flavor ?? 'mariadb'
    this.engine = new RoutingEngine(config, new MysqlDriver(this.flavor))
    this.engine.on('decision', (d, c) => this.emit('decision', d, c))
    this.engine.on('log', (level, message, fields) => this.emit('log', level, message, fields))
    this.#pools = new MysqlNodePools(
      config,
      this.engine.tracker,
      options.mysql ?? {},
      (event, _node, ...args) => this.emit(event, ...args),
    )
    this.engine.on('config', (next) => this.#pools.sync(next))
    this.#discovery = new ReplicaDiscovery(this.engine)
    this.#ready = this.engine.start().then(() => {
      if (!this.#ending) this.#discovery.start()
      this.#isReady = true
    })
    this.#ready.catch(() => {})
  }

  /** Resolves once every node was probed once. */
  ready(): Promise<void> {
    return this.#ready
  }

  get config(): FreshetConfig {
    return this.engine.config
  }

  /**
   * Runs one statement wherever freshet decides (mysql2's client-side `?` formatting).
   * @example
   * const [rows] = await pool.query('/* FRESHNESS: EVENTUAL *\/ SELECT * FROM events WHERE user_id = ?', [id])
   */
  query(statement: MysqlStatement, values?: unknown): Promise<MysqlResult> {
    return this.run('query', statement, values)
  }

  /** Runs one statement as a server-side prepared statement (mysql2's `execute`), routed like `query`. */
  execute(statement: MysqlStatement, values?: unknown): Promise<MysqlResult> {
    return this.run('execute', statement, values)
  }

  /**
   * Checks out a connection that routes each statement on its own while idle and pins from
   * BEGIN / START TRANSACTION to COMMIT / ROLLBACK, and to the primary for session state (temporary
   * tables, GET_LOCK, user variables, SQL PREPARE) until release().
   * @example
   * const conn = await pool.getConnection()
   * await conn.beginTransaction(); await conn.query('UPDATE ...'); await conn.commit(); conn.release()
   */
  async getConnection(): Promise<MysqlPoolConnection> {
    if (this.#ending) throw new FreshetError('FRESHET_POOL_CLOSED', 'cannot connect: the pool is ending')
    await this.#ready
    return new MysqlPoolConnection(this)
  }

  /** The callback-style face (mysql2's core Pool): for Kysely's MysqlDialect, Knex, TypeORM. */
  get pool(): CallbackPool<MysqlPool> {
    this.#callback ??= callbackPool(this)
    return this.#callback
  }

  /** Closes every node pool, monitor and the heartbeat. */
  async end(): Promise<void> {
    this.#ending = true
    await this.#ready.catch(() => {})
    this.#discovery.stop()
    await this.engine.stop()
    await this.#pools.end()
    this.#ended = true
    this.emit('end')
  }

  get ended(): boolean {
    return this.#ended
  }

  escape(value: unknown): string {
    return mysql.escape(value as Parameters<typeof mysql.escape>[0])
  }

  escapeId(value: string | string[]): string {
    return mysql.escapeId(value)
  }

  format(sql: string, values?: unknown): string {
    return mysql.format(sql, values as Parameters<typeof mysql.format>[1])
  }

  /** The read-your-writes token (a GTID position) of the current context's last write, or null. */
  lastWriteToken(): string | null {
    return this.#writes().tokens.token ?? null
  }

  /** Where a statement would go now and why, without running it. */
  explain(sql: string, session: SessionView = IDLE_SESSION): Decision {
    const engine = this.engine
    return engine.decide(engine.classify(sql), session, this.routingContext(), { dryRun: true }).decision
  }

  /** Nodes with role, lag_ms, replay_lsn (the GTID position), healthy, breaker, checked_at, plus pool counts. */
  snapshot(): (NodeSnapshot & {
    pool: { total: number; idle: number; waiting: number; active: number } | null
  })[] {
    const counts = this.#pools.counts().perNode
    return this.engine.snapshot().map((n) => ({ ...n, pool: counts[n.name] ?? null }))
  }

  discoveryState(): DiscoveryState {
    return this.#discovery.state()
  }

  /** Swaps in a new config (higher version only); throws ConfigError otherwise. */
  reload(config: FreshetConfig | FreshetConfigInput): void {
    this.engine.reload(Object.isFrozen(config) ? (config as FreshetConfig) : validateConfig(config))
  }

  /** @internal The routing context of the current async scope. */
  routingContext(): RoutingContext {
    const store: ContextStore | undefined = currentContext()
    const tokens = (store?.writes ?? this.#globalWrites).tokens
    const minLsn = tokens.minToken(store?.minLsn)
    const at = tokens.lastWriteAt
    return {
      ...(store?.tier !== undefined ? { tier: store.tier } : {}),
      ...(store?.primary ? { primary: true } : {}),
      ...(minLsn ? { minLsn } : {}),
      ...(at !== undefined ? { lastWriteAt: at } : {}),
    }
  }

  /** @internal Records a write of the current scope: token and time. */
  recordWrite(token: string | null): void {
    this.#writes().tokens.record(token)
  }

  /** @internal A connection on a node. */
  acquire(node: string): Promise<mysql.PoolConnection> {
    return this.#pools.acquire(node)
  }

  /** @internal The GTID token after a write on `conn`, when consistency.causal is on. */
  async tokenAfterWrite(conn: mysql.PoolConnection): Promise<string | null> {
    return this.config.consistency.causal ? gtidAfterWrite(conn, this.flavor) : null
  }

  /** @internal Decides and runs one statement outside any pin; retries a failed replica read once on the primary. */
  async run(method: RunMethod, statement: MysqlStatement, values: unknown): Promise<MysqlResult> {
    if (this.#ending) throw new FreshetError('FRESHET_POOL_CLOSED', 'the pool is ending')
    if (!this.#isReady) await this.#ready
    const started = process.hrtime.bigint()
    const c = this.engine.classify(sqlOf(statement))
    let routed = this.engine.decide(c, IDLE_SESSION, this.routingContext(), { wait: true, started })
    if ('then' in routed) routed = await routed
    const { decision, classification } = routed
    if (classification.settings?.every((s) => s.name.startsWith('freshet.'))) return okResult()
    return withStatementSpan(
      decision,
      classification,
      (span) => this.#execute(decision, classification, method, statement, values, span),
      currentContext()?.traceparent,
    )
  }

  async #execute(
    decision: Decision,
    classification: Classification,
    method: RunMethod,
    statement: MysqlStatement,
    values: unknown,
    span: Span,
  ): Promise<MysqlResult> {
    if (decision.target === null) throw decisionError(decision)!
    const isWrite = classification.requiresPrimary
    try {
      return await this.#runOn(
        decision.target,
        method,
        statement,
        values,
        isWrite && decision.role === 'primary',
      )
    } catch (err) {
      const retry =
        decision.role === 'replica' &&
        !isWrite &&
        (err instanceof NodeUnavailableError || isMysqlConnectionError(err))
      if (!retry) throw err
      this.emit(
        'log',
        'warn',
        `retrying a read on the primary after ${decision.target} failed: ${(err as Error).message}`,
      )
      const primary = this.engine.tracker.primary
      span.addEvent('freshet.retry', { 'freshet.failed_target': decision.target, 'freshet.target': primary })
      return this.#runOn(primary, method, statement, values, false)
    }
  }

  async #runOn(
    node: string,
    method: RunMethod,
    statement: MysqlStatement,
    values: unknown,
    captureToken: boolean,
  ): Promise<MysqlResult> {
    const conn = await this.#pools.acquire(node)
    const breaker = this.engine.tracker.breaker(node)
    const started = performance.now()
    try {
      const res = (await runStatement(conn, method, statement, values)) as MysqlResult
      this.engine.tracker.observeLatency(node, performance.now() - started)
      breaker?.success()
      // same connection, right after the autocommit write: its GTID is the write's own
      if (captureToken) this.recordWrite(await this.tokenAfterWrite(conn))
      conn.release()
      return res
    } catch (err) {
      if (isMysqlConnectionError(err)) {
        breaker?.failure()
        conn.destroy()
      } else conn.release()
      throw err
    }
  }

  #writes(): WriteState {
    return currentContext()?.writes ?? this.#globalWrites
  }
}

/** Config keys the MySQL face does not apply yet: refused with their key path rather than ignored. */
function unsupportedKeys(config: FreshetConfig): { path: string; message: string }[] {
  const out: { path: string; message: string }[] = []
  const later = 'is not supported with engine: mysql yet (docs/mysql.md)'
  if (config.classifier.rules.length > 0) out.push({ path: 'classifier.rules', message: later })
  if (config.classifier.engine !== 'ast')
    out.push({ path: 'classifier.engine', message: `'${config.classifier.engine}' ${later}` })
  if (Object.keys(config.pools.tier_budgets).length > 0)
    out.push({ path: 'pools.tier_budgets', message: later })
  return out
}

/**
 * Creates a routing pool for MySQL/MariaDB from a config object or a YAML/JSON file path
 * (`engine: mysql`, or mysql:// / mariadb:// URLs).
 * @example
 * import { createMysqlPool } from 'freshet/mysql'
 * const pool = createMysqlPool('freshet.yaml')
 * const [rows] = await pool.query('SELECT NOW()')
 */
export function createMysqlPool(
  config: FreshetConfigInput | FreshetConfig | string,
  options: CreateMysqlPoolOptions = {},
): MysqlPool {
  const env = options.env ?? process.env
  const resolved =
    typeof config === 'string'
      ? loadConfigFileSync(config, env)
      : Object.isFrozen(config)
        ? (config as FreshetConfig)
        : validateConfig(config, { env, source: 'createMysqlPool(config)' })
  return new MysqlPool(resolved, options)
}
