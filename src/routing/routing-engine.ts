// The routing core both faces share: config, classifier, decision, lag and health monitors, topology.
// The library and the proxy own their connections; this owns where each statement goes.

import { EventEmitter } from 'node:events'
import type pg from 'pg'
import type { NodeReading } from '../backend/node-monitor.js'
import { TopologyTracker } from '../backend/topology-tracker.js'
import { VolatilityCache } from '../backend/volatility-cache.js'
import type { Classification } from '../core/classify/classification.js'
import { assertNewerVersion } from '../core/config/parse-config.js'
import type { FreshetConfig, NodeConfig } from '../core/config/schema.js'
import { parseLsn } from '../core/lsn.js'
import { Decider } from '../core/route/decider.js'
import type { Decision } from '../core/route/decision.js'
import { replicasAtLsn } from '../core/route/replicas-at-lsn.js'
import type { RoutingContext, SessionView } from '../core/route/routing-context.js'
import { shadowDecision } from '../core/route/shadow-decision.js'
import { strictestRead } from '../core/route/strictest-read.js'
import { withDecideNs } from '../core/route/with-decide-ns.js'
import type { ShardDecision } from '../core/shard/shard-router.js'
import { refuseUnroutedSharding } from '../core/shard/unrouted-sharding.js'
import type { NodeSnapshot } from '../core/topology/node-snapshot.js'
import type { TopologyView } from '../core/topology/node-state.js'
import { stalenessBoundMs } from '../core/topology/staleness-bound.js'
import type { EngineEvents } from '../telemetry/telemetry-source.js'
import {
  type EngineDriver,
  type EngineHeartbeat,
  type EngineMonitor,
  POSTGRES_DRIVER,
  type StatementClassifier,
} from './engine-driver.js'

/** A decision with the classification it was made from. */
export interface Routed {
  readonly decision: Decision
  readonly classification: Classification
}

const DRY_RUN = Object.freeze({ dryRun: true })
const NO_OPTIONS: DecideOptions = Object.freeze({})

/** How {@link RoutingEngine.decide} runs (an options object, not positional flags). */
export interface DecideOptions {
  /**
   * Explain: where it would go now and why, without side effects: no 'decision' event (metrics, logs,
   * dev guard), no fallback token, no round-robin step, no breaker trial.
   */
  readonly dryRun?: boolean
  /** Wait for a replica to replay a read-your-writes token when none has yet (see decide). */
  readonly wait?: boolean
  /** process.hrtime.bigint() when the statement arrived, so `decideNs` counts its classification too. */
  readonly started?: bigint
  /** Sharded configs (ShardedRouting): the shard decision, carried on the Decision as `shard`. */
  readonly shard?: ShardDecision
}

function isBatch(
  statement: Classification | readonly Classification[],
): statement is readonly Classification[] {
  return Array.isArray(statement)
}

/**
 * Where a following engine (a proxy worker, `proxy.workers`) gets its readings: another process
 * probes and passes them to `applyReading`; `refresh()` asks it for a fresh round of probes.
 */
export interface ReadingsSource {
  refresh(): Promise<void>
}

/** A replica probe starts this long (plus twice its last round trip) before its bound would cross a tier's. */
const PROBE_MARGIN_MS = 25
/** The shortest gap between two probes of one replica, however close to a tier bound it is. */
const MIN_PROBE_DELAY_MS = 20
/** How long a replica probe waits for the primary position sample sent just before it. */
const PRIMARY_SAMPLE_WAIT_MS = 100

export class RoutingEngine extends EventEmitter<EngineEvents> {
  #config: FreshetConfig
  readonly #driver: EngineDriver
  #classifier: StatementClassifier
  #decider: Decider
  readonly tracker: TopologyTracker
  readonly #monitors = new Map<string, EngineMonitor>()
  readonly #readings = new Map<string, NodeReading>()
  #heartbeat: EngineHeartbeat | null = null
  readonly volatility = new VolatilityCache()
  #primaryMark: { lsn: bigint; at: number } | null = null
  #started = false
  #stopped = false
  /** Shared in-flight refresh of replica readings, so many RYW waiters cost one probe round. */
  #refreshing: Promise<void> | null = null
  /** Replicas set by discovery, used instead of `cluster.replicas` (kept across reloads); null = config's. */
  #replicaOverride: readonly NodeConfig[] | null = null
  /** Set by `start({ follow })`: no monitors or heartbeat here, readings come from elsewhere. */
  #follow: ReadingsSource | null = null
  readonly #readingListeners = new Set<(name: string, reading: NodeReading) => void>()

  /**
   * @param driver the engine-specific parts (parser, monitors, heartbeat, tokens); PostgreSQL's by default,
   *   `freshet/mysql` passes MySQL/MariaDB's.
   */
  constructor(config: FreshetConfig, driver: EngineDriver = POSTGRES_DRIVER) {
    super()
    refuseUnroutedSharding(config)
    this.#config = config
    this.#driver = driver
    this.#classifier = driver.createClassifier(config)
    this.tracker = new TopologyTracker(config, {
      ...(driver.positions ? { positions: driver.positions } : {}),
      events: {
        onPrimaryChange: (from, to) => {
          this.emit('log', 'warn', `primary changed from ${from} to ${to}`, { from, to })
          this.emit('primary_change', from, to)
        },
        onBreakerChange: (node, from, to) => this.emit('breaker', node, from, to),
        onHealthChange: (node, healthy) => this.emit('health', node, healthy),
      },
    })
    this.#decider = new Decider(config, { tokens: driver.tokens })
  }

  get config(): FreshetConfig {
    return this.#config
  }

  /**
   * Loads the parser, starts probes and the heartbeat, reads function volatility; resolves after first
   * readings. With `follow`, starts no probes and no heartbeat: readings arrive through `applyReading`
   * (a proxy worker following the process that probes).
   */
  async start(options: { follow?: ReadingsSource } = {}): Promise<void> {
    if (this.#started) return
    this.#started = true
    await this.#driver.loadParser()
    if (options.follow) {
      this.#follow = options.follow
      await this.#loadVolatility()
      return
    }
    this.#syncMonitors()
    const hb = this.#config.lag.heartbeat
    if (hb.enabled) {
      this.#heartbeat = this.#driver.createHeartbeat({
        table: hb.table,
        intervalMs: hb.interval_ms,
        timeoutMs: this.#config.health.timeout_ms,
        primaryUrl: () => this.#nodeUrl(this.tracker.primary),
        onUnavailable: (reason) => {
          this.emit('log', 'warn', `heartbeat table unavailable: ${reason}`)
          for (const m of this.#monitors.values()) m.heartbeatAvailable(null)
        },
        onAvailable: () => {
          for (const m of this.#monitors.values()) m.heartbeatAvailable(hb.table)
        },
      })
      await this.#heartbeat.beat()
      this.#heartbeat.start()
    }
    // First readings of every node, so the first decisions already see lag (a node that is down just
    // reports unhealthy; it does not block start).
    await Promise.all([...this.#monitors.values()].map((m) => m.probe()))
    // A replica probed while a write was in flight may not have reached the primary position sampled
    // just before it: probe those once more, so the first reads can already use a proven replica.
    const first = this.tracker.view()
    const unproven = [...this.#monitors.values()].filter((m) => {
      const n = first.nodes.get(m.name)
      return n?.role === 'replica' && n.healthy && n.freshAsOf === null
    })
    await Promise.all(unproven.map((m) => m.probe()))
    for (const m of this.#monitors.values()) m.start()
    await this.#loadVolatility()
  }

  async #loadVolatility(): Promise<void> {
    await this.#driver
      .loadVolatility(
        this.volatility,
        this.#nodeUrl(this.tracker.primary),
        this.#config.health.timeout_ms * 4,
      )
      .catch((err) => this.emit('log', 'warn', `function volatility not loaded: ${(err as Error).message}`))
  }

  /** A reading taken elsewhere (see `start({ follow })`), applied as if this engine's monitor took it. */
  applyReading(name: string, reading: NodeReading): void {
    this.#onReading(name, reading)
  }

  /** Every reading this engine applies, as it applies it (a proxy primary passes them to its workers). */
  onReading(listener: (name: string, reading: NodeReading) => void): () => void {
    this.#readingListeners.add(listener)
    return () => this.#readingListeners.delete(listener)
  }

  /** The readings applied so far, by node (a worker that starts late gets them first). */
  readings(): [string, NodeReading][] {
    return [...this.#readings]
  }

  /** The replica list set by `setReplicas` (discovery), or null while the config's list applies. */
  get replicaOverride(): readonly NodeConfig[] | null {
    return this.#replicaOverride
  }

  /** Probes the primary, then every replica, now (shared with concurrent callers). */
  refreshReadings(): Promise<void> {
    return this.#refreshReplicas()
  }

  /** Classifies a statement (cached by text). */
  classify(sql: string): Classification {
    return this.#classifier.classify(sql)
  }

  /**
   * The one way into a decision: where a classified statement goes now and why. Given several reads
   * of one batch, decides the strictest of them (strictestRead) and says which in `classification`.
   * Emits 'decision' once per call, unless `dryRun`. With `wait`, a read whose read-your-writes token
   * (or MIN_LSN hint) no replica has replayed yet waits up to `consistency.max_wait_for_sync_ms` for
   * one (probing) and is decided again: only then is the result a promise.
   *
   * @example
   * const { decision } = engine.decide(engine.classify(sql), session.view(), session.context())
   * const explained = engine.decide(engine.classify(sql), IDLE_SESSION, {}, { dryRun: true }).decision
   * const routed = engine.decide(c, view, context, { wait: true }) // Routed | Promise<Routed>
   */
  decide(
    statement: Classification | readonly Classification[],
    session: SessionView,
    context: RoutingContext,
    options?: DecideOptions & { readonly wait?: false },
  ): Routed
  decide(
    statement: Classification | readonly Classification[],
    session: SessionView,
    context: RoutingContext,
    options: DecideOptions,
  ): Routed | Promise<Routed>
  decide(
    statement: Classification | readonly Classification[],
    session: SessionView,
    context: RoutingContext,
    options: DecideOptions = NO_OPTIONS,
  ): Routed | Promise<Routed> {
    const started = options.started ?? process.hrtime.bigint()
    const dryRun = options.dryRun === true
    const batch = isBatch(statement) ? statement : null
    const c =
      batch === null ? (statement as Classification) : this.#strictest(batch, session, context, started)
    const shard = options.shard
    const decision = this.#decide(c, session, context, started, dryRun, shard)
    const routed: Routed = { decision, classification: c }
    if (dryRun) return routed
    const lsn = batch === null ? (c.hints.minLsn ?? context.minLsn) : decision.minLsn
    const maxWait = this.#config.consistency.max_wait_for_sync_ms
    // Shadow mode runs everything on the primary: waiting for a replica would only add latency.
    if (
      options.wait !== true ||
      decision.reason !== 'read_your_writes' ||
      !lsn ||
      maxWait <= 0 ||
      this.#config.routing.shadow
    ) {
      this.emit('decision', decision, c)
      return routed
    }
    // No replica has replayed the token yet: wait for one (probing), then decide again. Only this
    // path decides twice, so policy counters (round robin) advance once per statement otherwise.
    return this.waitForReplay(lsn, maxWait, decision.tier ?? undefined).then((reached) => {
      if (!reached) {
        this.emit('decision', decision, c)
        return routed
      }
      const again = batch === null ? c : this.#strictest(batch, session, context, started)
      const final = this.#decide(again, session, context, started, false, shard)
      this.emit('decision', final, again)
      return { decision: final, classification: again }
    })
  }

  /** The read of a batch to decide by (see strictestRead), judged on dry runs. */
  #strictest(
    reads: readonly Classification[],
    session: SessionView,
    context: RoutingContext,
    started: bigint,
  ): Classification {
    const dryRun = (c: Classification) => this.#decide(c, session, context, started, true)
    return strictestRead(reads, dryRun, this.tracker.primary, this.#config.routing.tiers)
  }

  /** One decision, without the event: shadow mode applied, decideNs counted from `started`. */
  #decide(
    c: Classification,
    session: SessionView,
    context: RoutingContext,
    started: bigint,
    dryRun: boolean,
    shard?: ShardDecision,
  ): Decision {
    const topology = this.tracker.view()
    let d = this.#decider.decide(c, {
      session,
      context,
      topology,
      now: Date.now(),
      volatility: this.#volatilityOf,
      allowTrial: this.#allowTrial,
      ...(dryRun ? DRY_RUN : {}),
    })
    // routing.shadow: decided and reported as configured, executed on the primary.
    if (this.#config.routing.shadow) d = shadowDecision(d, topology.primary)
    return withDecideNs(d, Number(process.hrtime.bigint() - started), shard)
  }

  // Bound once: the decision input must not allocate closures per statement.
  readonly #volatilityOf = (fn: string) => this.volatility.get(fn)
  readonly #allowTrial = (node: string) => this.tracker.breaker(node)?.allowRequest() ?? false

  /**
   * Resolves true when some healthy replica with a closed breaker has replayed `lsn` (replicasAtLsn)
   * and, given a `tier`, is within that tier's staleness bound (the decision's own test), or false
   * after `timeoutMs`.
   */
  async waitForReplay(lsn: string, timeoutMs: number, tier?: string): Promise<boolean> {
    const order = this.#driver.tokens
    const target = order.parse(lsn)
    if (target === null) return false
    const deadline = Date.now() + timeoutMs
    const maxBound =
      this.#config.controls.disable_lag_checks || tier === undefined
        ? undefined
        : this.#decider.tiers.byName(tier)?.maxLagMs
    const reached = () =>
      replicasAtLsn(
        this.tracker.view(),
        lsn,
        order,
        maxBound === undefined ? undefined : { now: Date.now(), maxBoundMs: maxBound },
      ).length > 0
    if (reached()) return true
    if (this.#driver.waitForToken) {
      // The replicas wait for the token themselves (MariaDB MASTER_GTID_WAIT); the one that reached it
      // is probed again so the decision sees its new position.
      const replicas = [...this.#monitors.values()].filter((m) => m.name !== this.tracker.primary)
      const node = await this.#driver.waitForToken(lsn, replicas, timeoutMs)
      if (node === null) return false
      await this.#monitors.get(node)?.probe()
      return reached()
    }
    while (!reached()) {
      const left = deadline - Date.now()
      if (left <= 0 || this.#stopped) return false
      await Promise.race([this.#refreshReplicas(), sleep(Math.min(left, 50))])
    }
    return true
  }

  /** The WAL LSN of the primary now, through the given client (after a write commits). */
  static async currentLsn(client: { query(sql: string): Promise<pg.QueryResult> }): Promise<string> {
    const res = await client.query('SELECT pg_current_wal_lsn()::text AS lsn')
    return (res.rows[0] as { lsn: string }).lsn
  }

  /** The topology the decisions see right now. */
  topology(): TopologyView {
    return this.tracker.view()
  }

  /** Nodes with role, lag, replay LSN, health, breaker and check time. */
  snapshot(): NodeSnapshot[] {
    const view = this.tracker.view()
    const now = Date.now()
    const primaryLsn = parseLsn(this.#readings.get(view.primary)?.lsn ?? '')
    return [...view.nodes.values()].map((n) => {
      const r = this.#readings.get(n.name)
      const replayed = n.role === 'replica' && r?.lsn ? parseLsn(r.lsn) : null
      const lagBytes =
        primaryLsn === null || replayed === null
          ? null
          : Number(primaryLsn > replayed ? primaryLsn - replayed : 0n)
      return {
        name: n.name,
        role: n.role,
        lag_ms: n.lagMs === null ? null : Math.round(n.lagMs),
        staleness_bound_ms: n.role === 'primary' ? 0 : roundOrNull(stalenessBoundMs(n.freshAsOf, now)),
        fresh_as_of:
          n.role === 'replica' && n.freshAsOf !== null ? new Date(n.freshAsOf).toISOString() : null,
        lag_bytes: lagBytes,
        replay_lsn: r?.lsn ?? null,
        healthy: n.healthy,
        breaker: n.breaker,
        checked_at: r ? new Date(r.at).toISOString() : null,
        lag_source: r?.lagSource ?? null,
        replay_paused: r?.replayPaused ?? null,
        error: r?.error ?? null,
      }
    })
  }

  /**
   * Swaps in a new config atomically: refused (throws ConfigError) unless its version is higher.
   * Decisions after this call use the new config; monitors follow the new node list.
   */
  reload(next: FreshetConfig): void {
    assertNewerVersion(this.#config, next)
    refuseUnroutedSharding(next)
    this.#apply(next)
  }

  /** Changes emergency controls at once (POST /api/v1/controls), without a version bump. */
  setControls(patch: Partial<FreshetConfig['controls']>): FreshetConfig['controls'] {
    const controls = Object.freeze({ ...this.#config.controls, ...patch })
    this.#config = Object.freeze({ ...this.#config, controls })
    this.#decider.setControls(controls)
    this.emit('controls', controls)
    this.emit('log', 'warn', 'emergency controls changed', { ...controls })
    return controls
  }

  /**
   * Replaces the replica list without a config reload (replica discovery); `null` goes back to the
   * config's `cluster.replicas`. The list survives reloads until changed again. Emits 'config' so
   * pools follow (nodes that left drain).
   * @example
   * engine.setReplicas([{ name: 'replica_3', url: 'postgres://app@db-r3/main', weight: 100, zone: null }])
   */
  setReplicas(replicas: readonly NodeConfig[] | null): void {
    this.#replicaOverride = replicas
    this.tracker.setNodes(this.#config, replicas ?? this.#config.cluster.replicas)
    if (this.#started && this.#follow === null) this.#syncMonitors()
    this.emit('config', this.#config)
  }

  async stop(): Promise<void> {
    this.#stopped = true
    await Promise.all([...this.#monitors.values()].map((m) => m.stop()))
    this.#monitors.clear()
    await this.#heartbeat?.stop()
  }

  #apply(next: FreshetConfig): void {
    const before = this.#config.controls
    this.#config = next
    this.#classifier = this.#driver.createClassifier(next)
    this.#decider = new Decider(next, { tokens: this.#driver.tokens })
    this.tracker.setNodes(next, this.#replicaOverride ?? next.cluster.replicas)
    if (this.#started && this.#follow === null) this.#syncMonitors()
    this.emit('config', next)
    // A reload sets the controls to the new config's values: a change is as much news as setControls().
    const after = next.controls
    const changed = (Object.keys(after) as (keyof typeof after)[]).filter((k) => before[k] !== after[k])
    if (changed.length > 0) {
      this.emit('controls', after)
      this.emit('log', 'warn', 'emergency controls changed', {
        ...after,
        changed,
        source: 'config reload',
        version: next.version,
      })
    }
  }

  #nodeUrl(name: string): string {
    const node = this.tracker.nodes().find((n) => n.name === name)
    if (!node) throw new Error(`unknown node ${name}`)
    return node.url
  }

  #syncMonitors(): void {
    const cfg = this.#config
    const nodes = this.tracker.nodes()
    const intervalMs = cfg.controls.disable_lag_checks
      ? cfg.health.interval_ms
      : Math.min(cfg.lag.interval_ms, cfg.health.interval_ms)
    const timeoutMs = cfg.health.timeout_ms
    const byName = new Map(nodes.map((n) => [n.name, n]))
    for (const [name, m] of this.#monitors) {
      const node = byName.get(name)
      // gone, or moved to another URL, or probed on another schedule: a new monitor takes over
      if (!node || node.url !== m.url || m.intervalMs !== intervalMs || m.timeoutMs !== timeoutMs) {
        void m.stop()
        this.#monitors.delete(name)
        this.#readings.delete(name)
      }
    }
    for (const node of nodes) {
      if (this.#monitors.has(node.name)) continue
      const monitor = this.#driver.createMonitor({
        name: node.name,
        url: node.url,
        intervalMs,
        timeoutMs,
        heartbeatTable: cfg.lag.heartbeat.enabled ? cfg.lag.heartbeat.table : null,
        primaryMark: () => this.#primaryMark,
        onReading: (name, reading) => this.#onReading(name, reading),
        beforeProbe: () => this.#primarySampleFor(node.name),
        beforeProbeMaxMs: Math.min(timeoutMs, PRIMARY_SAMPLE_WAIT_MS),
        nextDelayMs: this.#nextProbeDelay,
      })
      this.#monitors.set(node.name, monitor)
      if (this.#started && !this.#stopped) monitor.start()
    }
  }

  #onReading(name: string, reading: NodeReading): void {
    this.#readings.set(name, reading)
    const breaker = this.tracker.breaker(name)
    if (reading.ok) breaker?.success()
    else breaker?.failure()
    const primaryLsn =
      reading.ok && reading.inRecovery === false && reading.lsn ? parseLsn(reading.lsn) : null
    // timed by the probe's send time: the position held at some moment after it
    if (primaryLsn !== null && name === this.tracker.primary)
      this.#primaryMark = { lsn: primaryLsn, at: reading.sentAt }
    this.tracker.record(name, reading)
    for (const listener of this.#readingListeners) listener(name, reading)
  }

  /**
   * Before a replica's probe: a primary position sample sent just before it (shared with any sample in
   * flight), so that a replica keeping up is proven fresh as of a moment a round trip old, not as of the
   * primary's last scheduled probe.
   */
  #primarySampleFor(name: string): Promise<unknown> {
    if (name === this.tracker.primary || this.#stopped) return Promise.resolve()
    return this.#monitors.get(this.tracker.primary)?.probe() ?? Promise.resolve()
  }

  /**
   * The delay until a replica's next probe: the jittered interval, or sooner when its staleness bound
   * would otherwise cross the bound of a tier it is within now (so a replica that keeps up stays
   * eligible without a gap, and a 200 ms tier is served by replicas with 250 ms probes).
   */
  readonly #nextProbeDelay = (name: string, jittered: number): number => {
    if (name === this.tracker.primary || this.#config.controls.disable_lag_checks) return jittered
    const bound = stalenessBoundMs(this.tracker.view().nodes.get(name)?.freshAsOf ?? null, Date.now())
    if (bound === null) return jittered
    let next = Number.POSITIVE_INFINITY
    for (const t of Object.values(this.#config.routing.tiers)) {
      const max = t.max_lag_ms
      if (max > bound && max < next) next = max
    }
    if (next === Number.POSITIVE_INFINITY) return jittered
    const margin = PROBE_MARGIN_MS + 2 * (this.#readings.get(name)?.rttMs ?? 0)
    return Math.max(MIN_PROBE_DELAY_MS, Math.min(jittered, next - bound - margin))
  }

  #refreshReplicas(): Promise<void> {
    if (this.#refreshing) return this.#refreshing
    if (this.#follow !== null) {
      this.#refreshing = this.#follow.refresh().finally(() => {
        this.#refreshing = null
      })
      return this.#refreshing
    }
    const primary = this.#monitors.get(this.tracker.primary)
    const replicas = [...this.#monitors.values()].filter((m) => m.name !== this.tracker.primary)
    this.#refreshing = (async () => {
      // Primary first, so "caught up" compares against a fresh primary LSN.
      await primary?.probe()
      await Promise.all(replicas.map((m) => m.probe()))
    })().finally(() => {
      this.#refreshing = null
    })
    return this.#refreshing
  }
}

function roundOrNull(ms: number | null): number | null {
  return ms === null ? null : Math.round(ms)
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}
