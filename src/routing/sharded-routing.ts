// The one front of a sharded config for both faces: decides the shard of each statement (ShardRouter over
// the ranked key sources), then hands the statement to that shard's RoutingEngine (or the aggregate node's).
// Inside a shard everything freshet does for one cluster applies: tiers, lag, breakers, failover, tokens.

import { EventEmitter } from 'node:events'
import type { Classification } from '../core/classify/classification.js'
import { assertNewerVersion } from '../core/config/parse-config.js'
import type { FreshetConfig } from '../core/config/schema.js'
import { ConfigError, CrossShardError, isFreshetError } from '../core/errors.js'
import type { RoutingContext, SessionView } from '../core/route/routing-context.js'
import type { ShardKeyFacts } from '../core/shard/extract-shard-keys.js'
import { type ShardSetup, shardSetupOf } from '../core/shard/router-from-config.js'
import { ShardKeyExtractor } from '../core/shard/shard-key-extractor.js'
import type { ShardMap } from '../core/shard/shard-map.js'
import { AGGREGATE, type ShardDecision } from '../core/shard/shard-router.js'
import type { NodeSnapshot } from '../core/topology/node-snapshot.js'
import type { EngineEvents } from '../telemetry/telemetry-source.js'
import { type DecideOptions, type Routed, RoutingEngine } from './routing-engine.js'

/** Where a statement's key may come from besides the statement and its hints (CONTRACT section 9). */
export interface ShardKeyInput {
  /** Bound parameter values ($1 is `params[0]`); undefined before Bind. */
  readonly params?: readonly unknown[]
  /** `withShardKey(value, fn)` or an `X-DB-Shard-Key` header. */
  readonly contextKey?: unknown
  /** `SET freshet.shard_key` of the session. */
  readonly sessionKey?: string | null
  /** The shard (or AGGREGATE) the open transaction is pinned to; null outside one or before its first keyed statement. */
  readonly pinned?: string | null
  /** The routing map the open transaction began under (`setup.map` then): it finishes on its shard after a map change. */
  readonly map?: ShardMap
}

/** {@link ShardedRouting.decide}'s options: the engine's, plus the statement text and key sources, or a shard already routed. */
export interface ShardedDecideOptions extends Omit<DecideOptions, 'shard'> {
  /** The statement's text (its keys are read from it; classifications are shared by texts that differ in literals). */
  readonly sql?: string
  readonly key?: ShardKeyInput
  /** A shard decided before (`route`), e.g. once for a batch: not routed (nor counted) again. */
  readonly shard?: ShardDecision
}

/** A decision inside a shard: the engine's, with the shard and the engine that made it. */
export interface ShardRouted extends Routed {
  readonly shard: ShardDecision
  /** The engine of that shard (or of the aggregate node): its tracker, pools' config, tokens. */
  readonly engine: RoutingEngine
}

/** ShardedRouting's events: every shard engine's (forwarded), plus `routing_map` and `cross_shard` (EngineEvents). */
export type ShardedEvents = EngineEvents

/** A node snapshot with the shard it belongs to (the aggregate node's shard is `@aggregate`). */
export type ShardNodeSnapshot = NodeSnapshot & { shard: string }

const FORWARDED = ['decision', 'primary_change', 'breaker', 'health'] as const

/**
 * The config one shard's engine runs: the shared keys, that shard's nodes as `cluster`, no sharding.
 * The aggregate node is a primary without replicas and without a heartbeat (it is not replicated).
 */
export function shardEngineConfig(config: FreshetConfig, shard: string): FreshetConfig {
  const base = { ...config, shards: undefined, sharding: null }
  if (shard === AGGREGATE) {
    const agg = config.sharding?.aggregate
    if (!agg) throw new Error('shardEngineConfig: the config has no sharding.aggregate')
    return Object.freeze({
      ...base,
      cluster: { primary: agg, replicas: [], discovery: null },
      lag: { ...config.lag, heartbeat: { ...config.lag.heartbeat, enabled: false } },
    })
  }
  const s = config.shards?.find((x) => x.name === shard)
  if (!s) throw new Error(`shardEngineConfig: no shard ${shard}`)
  return Object.freeze({ ...base, cluster: { primary: s.primary, replicas: s.replicas, discovery: null } })
}

const NO_OPTIONS: ShardedDecideOptions = Object.freeze({})
const NO_KEY: ShardKeyInput = Object.freeze({})
const PRIMARY_ONLY: RoutingContext = Object.freeze({ primary: true })

/**
 * Sharded routing: one RoutingEngine per shard plus one for the aggregate node, and the shard decision in
 * front of them. It is a TelemetrySource / AdminEngine too: the full config, every node of every shard
 * in `snapshot()`, every engine's decisions, breaker and health events re-emitted.
 *
 * @example
 * const routing = new ShardedRouting(validateConfig(doc))
 * await routing.start()
 * const sql = 'SELECT * FROM orders WHERE customer_id = $1'
 * const r = await routing.decide(routing.classify(sql), IDLE_SESSION, ctx, { sql, key: { params: [42] }, wait: true })
 * r.shard      // { shard: 'shard_1', source: 'statement', key: '42' }
 * r.decision   // { target: 's1_replica_1', ..., shard: { ... } }
 */
export class ShardedRouting extends EventEmitter<ShardedEvents> {
  #config: FreshetConfig
  #setup: ShardSetup
  #keys: ShardKeyExtractor
  /** Classifications with a ROUTE_TO naming a shard, without it (see #forEngine). */
  readonly #unhinted = new WeakMap<Classification, Classification>()
  readonly #engines = new Map<string, RoutingEngine>()
  readonly #aggregate: RoutingEngine | null
  #mapVersion = 1
  /** setMap was called: a config reload keeps the map in force (the routing-map store re-applies). */
  #mapSet = false

  constructor(config: FreshetConfig) {
    super()
    const setup = shardSetupOf(config)
    if (!setup)
      throw new ConfigError([{ path: 'shards', message: 'ShardedRouting needs shards and sharding' }])
    this.#config = config
    this.#setup = setup
    this.#keys = new ShardKeyExtractor(setup.tables)
    for (const s of config.shards ?? []) this.#engines.set(s.name, this.#engine(config, s.name))
    this.#aggregate = config.sharding?.aggregate ? this.#engine(config, AGGREGATE) : null
  }

  #engine(config: FreshetConfig, shard: string): RoutingEngine {
    const engine = new RoutingEngine(shardEngineConfig(config, shard))
    for (const event of FORWARDED) {
      engine.on(event, (...args: unknown[]) =>
        (this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args),
      )
    }
    engine.on('log', (level, message, fields) => this.emit('log', level, message, { shard, ...fields }))
    return engine
  }

  get config(): FreshetConfig {
    return this.#config
  }

  /** The sharded tables, the router and the map in force. */
  get setup(): ShardSetup {
    return this.#setup
  }

  /** Shard names in config order. */
  get shardNames(): readonly string[] {
    return [...this.#engines.keys()]
  }

  /** The engine of a shard, or of the aggregate node for `AGGREGATE`. */
  engine(shard: string): RoutingEngine {
    const e = shard === AGGREGATE ? this.#aggregate : this.#engines.get(shard)
    if (!e) throw new Error(`no engine for shard ${shard}`)
    return e
  }

  /** Every engine: the shards' in config order, then the aggregate node's (named AGGREGATE). */
  engines(): [string, RoutingEngine][] {
    const out = [...this.#engines]
    if (this.#aggregate) out.push([AGGREGATE, this.#aggregate])
    return out
  }

  /** The routing map version in force (1: the config's map; `setMap` raises it). */
  get mapVersion(): number {
    return this.#mapVersion
  }

  /**
   * Swaps the routing map atomically: the next statement routed uses it, statements already routed keep
   * theirs. `version` must be higher than the one in force. Emits `routing_map`.
   * @example
   * routing.setMap(ShardMap.build(spec, entries, routing.shardNames).map!, routing.mapVersion + 1)
   */
  setMap(map: ShardMap, version: number): void {
    if (!(version > this.#mapVersion)) {
      throw new Error(`routing map version ${version} is not higher than ${this.#mapVersion}`)
    }
    this.#setup.router.map = map
    this.#setup = { ...this.#setup, map }
    this.#mapVersion = version
    this.#mapSet = true
    this.emit('routing_map', version)
  }

  /** Starts every engine (parser, monitors, heartbeats); resolves after each took its first readings. */
  async start(): Promise<void> {
    await Promise.all(this.engines().map(([, e]) => e.start()))
  }

  async stop(): Promise<void> {
    await Promise.all(this.engines().map(([, e]) => e.stop()))
  }

  /** Classifies a statement (the first shard engine's classifier; every shard engine classifies alike). */
  classify(sql: string): Classification {
    return this.#engines.values().next().value!.classify(sql)
  }

  /** The shard-key facts of a statement text (parsed once per exact text, cached). */
  facts(sql: string): ShardKeyFacts {
    return this.#keys.facts(sql)
  }

  /**
   * The shard of one statement (`c` its classification, `sql` its text), or throws before anything is sent:
   * CrossShardError (ZF003) for another shard inside a pinned transaction, a write spanning shards, a
   * reference-table write, a statement naming no shard under `cross_shard: error`; ShardKeyError (ZF004)
   * for a key that is no value of its type or has no shard. Emits `cross_shard` unless `dryRun`.
   * @example
   * const sql = 'UPDATE orders SET total = 0 WHERE customer_id = $1'
   * routing.route(routing.classify(sql), sql, { params: [7] })
   */
  route(
    c: Classification,
    sql: string,
    key: ShardKeyInput = NO_KEY,
    options: { dryRun?: boolean } = {},
  ): ShardDecision {
    const facts = this.#keys.facts(sql)
    let d: ShardDecision
    try {
      // a plain literal (undefined for absent sources), no conditional spreads: this runs per statement
      d = this.#setup.router.route({
        write: c.requiresPrimary,
        tables: c.tables,
        facts,
        hints: c.hints,
        params: key.params,
        contextKey: key.contextKey,
        sessionKey: key.sessionKey,
        pinned: key.pinned,
        map: key.map,
      })
    } catch (err) {
      if (options.dryRun !== true && err instanceof CrossShardError) {
        const tables = (err.details as { tables?: unknown } | undefined)?.tables
        if (Array.isArray(tables) && tables.length > 0)
          this.emit('cross_shard', tables as string[], 'refused')
      }
      throw err
    }
    if (d.shard === AGGREGATE && this.#aggregate === null) {
      // cross_shard: aggregate without an aggregate node is a config error; a hand-built config gets here
      throw new CrossShardError('the statement names no single shard and no sharding.aggregate is configured')
    }
    if (options.dryRun !== true && d.source === 'cross_shard')
      this.emit('cross_shard', d.crossShardTables ?? [], 'aggregate')
    return d
  }

  /**
   * The one way into a sharded decision: the shard (`route`, unless `options.shard` is given), then that
   * shard's `engine.decide` with the shard carried on the Decision. `context` may be a function of the
   * shard, so read-your-writes tokens stay per shard. The aggregate node serves everything on its primary.
   * One statement needs `sql` (or `shard`); a batch needs `shard` (`routeBatch`).
   */
  decide(
    statement: Classification | readonly Classification[],
    session: SessionView,
    context: RoutingContext | ((shard: string) => RoutingContext),
    options?: ShardedDecideOptions & { readonly wait?: false },
  ): ShardRouted
  decide(
    statement: Classification | readonly Classification[],
    session: SessionView,
    context: RoutingContext | ((shard: string) => RoutingContext),
    options: ShardedDecideOptions,
  ): ShardRouted | Promise<ShardRouted>
  decide(
    statement: Classification | readonly Classification[],
    session: SessionView,
    context: RoutingContext | ((shard: string) => RoutingContext),
    options: ShardedDecideOptions = NO_OPTIONS,
  ): ShardRouted | Promise<ShardRouted> {
    const started = options.started ?? process.hrtime.bigint()
    const shard = options.shard ?? this.#routeAll(statement, options)
    const engine = this.engine(shard.shard)
    const ctx =
      shard.shard === AGGREGATE
        ? PRIMARY_ONLY
        : typeof context === 'function'
          ? context(shard.shard)
          : context
    // plain literals, no conditional spreads: this runs per statement (spreads cost microseconds here)
    const engineOptions: DecideOptions = {
      dryRun: options.dryRun === true,
      wait: options.wait === true,
      started,
      shard,
    }
    const routed = engine.decide(this.#forEngine(statement, shard), session, ctx, engineOptions)
    if ('then' in routed) {
      return routed.then((r) => ({ decision: r.decision, classification: r.classification, shard, engine }))
    }
    return { decision: routed.decision, classification: routed.classification, shard, engine }
  }

  /**
   * A `ROUTE_TO` hint naming a shard picked the shard: the shard engine must not read it as a node name
   * (it would refuse an unknown node), so it gets the classification without it (cached per classification).
   */
  #forEngine(
    statement: Classification | readonly Classification[],
    shard: ShardDecision,
  ): Classification | readonly Classification[] {
    if (shard.source !== 'route_to') return statement
    const strip = (c: Classification): Classification => {
      const to = c.hints.routeTo
      if (to === undefined || !this.#engines.has(to)) return c
      let out = this.#unhinted.get(c)
      if (!out) {
        const { routeTo: _, ...hints } = c.hints
        out = Object.freeze({ ...c, hints: Object.freeze(hints) })
        this.#unhinted.set(c, out)
      }
      return out
    }
    return Array.isArray(statement) ? statement.map(strip) : strip(statement as Classification)
  }

  #routeAll(
    statement: Classification | readonly Classification[],
    options: ShardedDecideOptions,
  ): ShardDecision {
    if (Array.isArray(statement) || options.sql === undefined) {
      throw new Error(
        'ShardedRouting.decide: give `sql` for one statement, or `shard` (from route) for a batch',
      )
    }
    return this.route(statement as Classification, options.sql, options.key ?? NO_KEY, {
      ...(options.dryRun === true ? { dryRun: true } : {}),
    })
  }

  /**
   * The one shard of several statements of a batch (each `[classification, text]`), or ZF003 when they
   * name different shards (nothing sent). Counts like `route`.
   */
  routeBatch(
    statements: readonly (readonly [Classification, string])[],
    key: ShardKeyInput = NO_KEY,
    options: { dryRun?: boolean } = {},
  ): ShardDecision {
    let first: ShardDecision | null = null
    for (const [c, sql] of statements) {
      const d = this.route(c, sql, key, options)
      if (first === null) first = d
      else if (d.shard !== first.shard) {
        throw new CrossShardError(
          `the statements of one batch are for ${first.shard} and ${d.shard}; nothing was sent`,
          { details: { shards: [first.shard, d.shard] } },
        )
      }
    }
    if (first === null) throw new Error('ShardedRouting.routeBatch: an empty batch')
    return first
  }

  /** Every node of every shard and the aggregate node, each with its shard. */
  snapshot(): ShardNodeSnapshot[] {
    return this.engines().flatMap(([shard, e]) => e.snapshot().map((n) => ({ ...n, shard })))
  }

  /** Changes emergency controls on every engine at once; emits `controls` once. */
  setControls(patch: Partial<FreshetConfig['controls']>): FreshetConfig['controls'] {
    let controls = this.#config.controls
    for (const [, e] of this.engines()) controls = e.setControls(patch)
    this.#config = Object.freeze({ ...this.#config, controls })
    this.emit('controls', controls)
    return controls
  }

  /**
   * Swaps in a newer config: every engine gets its part, the router the new tables and rules. The set of
   * shards and the aggregate node's presence cannot change at run time (ConfigError at `shards`). The map
   * becomes the new config's, unless `setMap` set one: that stays, and the routing-map store re-applies
   * its overlay on the new config map (it listens to `config`).
   */
  reload(next: FreshetConfig): void {
    assertNewerVersion(this.#config, next)
    const setup = shardSetupOf(next)
    if (!setup)
      throw new ConfigError([
        { path: 'shards', message: 'a sharded freshet cannot reload to an unsharded config; restart it' },
      ])
    const names = (next.shards ?? []).map((s) => s.name)
    if (
      names.join(',') !== this.shardNames.join(',') ||
      Boolean(next.sharding?.aggregate) !== (this.#aggregate !== null)
    ) {
      throw new ConfigError([
        {
          path: 'shards',
          message: `adding, removing or renaming shards (or the aggregate node) needs a restart (running: ${this.shardNames.join(', ')}; new: ${names.join(', ')})`,
        },
      ])
    }
    for (const [shard, e] of this.engines()) e.reload(shardEngineConfig(next, shard))
    if (this.#mapSet) setup.router.map = this.#setup.router.map
    this.#setup = { ...setup, map: setup.router.map }
    this.#keys = new ShardKeyExtractor(setup.tables)
    this.#config = next
    this.emit('config', next)
  }
}

/** True when `err` is one of the shard refusals (ZF003 cross-shard, ZF004 shard key). */
export function isShardRefusal(err: unknown): boolean {
  return isFreshetError(err) && (err.code === 'FRESHET_CROSS_SHARD' || err.code === 'FRESHET_SHARD_KEY')
}
