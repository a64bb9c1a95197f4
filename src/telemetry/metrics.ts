// Prometheus metrics (CONTRACT section 8) in a registry of their own, fed by engine events and snapshots.

import {
  AggregatorRegistry,
  Counter,
  Gauge,
  Histogram,
  type MetricObjectWithValues,
  type MetricValue,
  Registry,
} from 'prom-client'
import type { Classification } from '../core/classify/classification.js'
import type { FreshetConfig } from '../core/config/schema.js'
import type { Decision } from '../core/route/decision.js'
import { tierEligibility } from '../core/topology/tier-eligibility.js'
import { BucketHistogram } from './bucket-histogram.js'
import { Tallies, type Tally } from './tally.js'
import type { PoolStatsProvider, TelemetrySource } from './telemetry-source.js'

/** Every metric name freshet exports; the ops files are checked against it. */
export const METRIC_NAMES = Object.freeze([
  'replica_lag_seconds',
  'replica_eligible',
  'routing_decisions_total',
  'routing_fallback_total',
  'routing_decision_latency_seconds',
  'read_staleness_seconds',
  'routing_reads_total',
  'replica_offload_ratio',
  'unannotated_reads_total',
  'consistency_violations_total',
  'circuit_breaker_open',
  'pool_connections',
  'pool_waiting',
  'proxy_backend_errors_total',
  'proxy_backend_failover_total',
  'proxy_routing_latency_seconds',
  'config_version',
  'freshet_node_healthy',
  'freshet_controls',
  'freshet_controls_changes_total',
  'freshet_config_reloads_total',
  'freshet_primary_changes_total',
  'freshet_breaker_transitions_total',
  'shard_decisions_total',
  'cross_shard_statements_total',
  'routing_map_version',
] as const)

/**
 * Metrics of the topology, config and controls: with `proxy.workers`, the process that probes and
 * serves the admin API exports its own; the workers' copies (fed by the same readings) are dropped.
 */
const TOPOLOGY_METRICS: ReadonlySet<string> = new Set([
  'replica_lag_seconds',
  'replica_eligible',
  'circuit_breaker_open',
  'freshet_node_healthy',
  'config_version',
  'freshet_controls',
  'freshet_controls_changes_total',
  'freshet_config_reloads_total',
  'freshet_primary_changes_total',
  'freshet_breaker_transitions_total',
])

/** One process's metrics as prom-client's `getMetricsAsJSON()` gives them. */
export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[]

/** Fine buckets from 1 µs: deciding is microseconds, a slow classification is milliseconds. */
const DECISION_BUCKETS = [
  0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
  0.01, 0.05,
]
/** Staleness of reads: 0 (primary or caught-up replica) up to minutes (eventual tiers). */
const STALENESS_BUCKETS = [0, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
const PROXY_LATENCY_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.01, 0.05]

const FALLBACK_REASONS: ReadonlySet<string> = new Set([
  'fallback_primary',
  'fallback_least_lagged',
  'fallback_error',
  'fallback_rate_limited',
])

/** Reads of one tier that reached a node, and how many of them a replica served. */
export interface OffloadCount {
  reads: number
  replica: number
}

type CounterChild = { inc(value?: number): void }
type HistogramChild = { observe(value: number): void }

/**
 * freshet's metrics. One per process face (library pool or proxy), attached to one routing engine.
 *
 * @example
 * const metrics = new FreshetMetrics()
 * metrics.attachEngine(pool.engine, () => poolStatsOf(pool))
 * res.end(await metrics.metrics())
 */
export class FreshetMetrics {
  /** The registry (never prom-client's global default). */
  readonly registry = new Registry()
  #engine: TelemetrySource | null = null
  #poolStats: PoolStatsProvider | null = null
  #detach: (() => void) | null = null
  /** While > 0, decisions are not counted (admin `explain` runs the real decision path). */
  #muted = 0
  #tierBounds = new Map<string, number>()
  #workers: (() => Promise<MetricsJson[]>) | null = null

  readonly #decisions: Counter<'tier' | 'target' | 'reason'>
  readonly #fallbacks: Counter<'tier'>
  readonly #decisionLatency: BucketHistogram
  readonly #staleness: Histogram<'tier'>
  readonly #reads: Counter<'tier' | 'role'>
  /** Per tier: reads sent to a node and those a replica served (the offload ratio). */
  readonly #offload = new Map<string, OffloadCount>()
  readonly #unannotated: Counter
  readonly #violations: Counter<'tier'>
  readonly #backendErrors: Counter<'backend'>
  readonly #failovers: Counter
  readonly #proxyLatency: BucketHistogram
  readonly #controlChanges: Counter<'control'>
  readonly #reloads: Counter<'source' | 'result'>
  readonly #primaryChanges: Counter
  readonly #breakerTransitions: Counter<'host' | 'to'>
  readonly #shardDecisions: Counter<'shard' | 'source'>
  readonly #crossShard: Counter<'table'>
  readonly #shardChildren = new Map<string, Map<string, CounterChild>>()

  // Per-statement counts: tallies (see tally.ts) cached by nested maps, no string keys built per
  // decision; they reach the counters when the registry is read.
  readonly #decisionTallies = new Tallies<'tier' | 'target' | 'reason'>()
  readonly #decisionChildren = new Map<string, Map<string, Map<string, Tally>>>()
  readonly #fallbackTallies = new Tallies<'tier'>()
  readonly #fallbackChildren = new Map<string, Tally>()
  readonly #stalenessChildren = new Map<string, HistogramChild>()
  readonly #readTallies = new Tallies<'tier' | 'role'>()
  readonly #readChildren = new Map<string, { primary: Tally; replica: Tally }>()
  readonly #unannotatedTallies = new Tallies<never>()
  readonly #unannotatedTally = this.#unannotatedTallies.of({})
  readonly #violationTallies = new Tallies<'tier'>()
  readonly #violationChildren = new Map<string, Tally>()

  constructor() {
    const registers = [this.registry]
    this.#decisions = new Counter({
      name: 'routing_decisions_total',
      help: 'Routing decisions by freshness tier (none for writes and pins), target node (none on error) and reason',
      labelNames: ['tier', 'target', 'reason'],
      registers,
      collect: () => this.#decisionTallies.flush(this.#decisions),
    })
    this.#fallbacks = new Counter({
      name: 'routing_fallback_total',
      help: "Reads for which no replica qualified and the tier's fallback ran",
      labelNames: ['tier'],
      registers,
      collect: () => this.#fallbackTallies.flush(this.#fallbacks),
    })
    // observed per statement: a plain bucket counter, not prom-client's label-checking observe
    this.#decisionLatency = new BucketHistogram({
      name: 'routing_decision_latency_seconds',
      help: 'Time to classify and decide one statement',
      buckets: DECISION_BUCKETS,
      registers,
    })
    this.#staleness = new Histogram({
      name: 'read_staleness_seconds',
      help: 'Staleness bound at dispatch of the node each read was sent to (0 for the primary): no read missed a write acknowledged longer ago',
      labelNames: ['tier'],
      buckets: STALENESS_BUCKETS,
      registers,
    })
    this.#reads = new Counter({
      name: 'routing_reads_total',
      help: 'Tiered reads sent to a node, by tier and role of the node (replica share = offload)',
      labelNames: ['tier', 'role'],
      registers,
      collect: () => this.#readTallies.flush(this.#reads),
    })
    this.#unannotated = new Counter({
      name: 'unannotated_reads_total',
      help: 'Reads with no freshness tier from hint, context, session or domains (routing.unannotated applied)',
      registers,
      collect: () => this.#unannotatedTallies.flush(this.#unannotated),
    })
    this.#violations = new Counter({
      name: 'consistency_violations_total',
      help: "Reads sent to a replica whose staleness bound was over the tier's max_lag_ms or unknown (least_lagged fallback, ROUTE_TO)",
      labelNames: ['tier'],
      registers,
      collect: () => this.#violationTallies.flush(this.#violations),
    })
    this.#backendErrors = new Counter({
      name: 'proxy_backend_errors_total',
      help: 'Proxy: errors talking to a backend node',
      labelNames: ['backend'],
      registers,
    })
    this.#failovers = new Counter({
      name: 'proxy_backend_failover_total',
      help: 'Proxy: statements retried on another node after a backend failed',
      registers,
    })
    this.#proxyLatency = new BucketHistogram({
      name: 'proxy_routing_latency_seconds',
      help: 'Proxy: time from a client message to its forwarding to a backend',
      buckets: PROXY_LATENCY_BUCKETS,
      registers,
    })
    this.#controlChanges = new Counter({
      name: 'freshet_controls_changes_total',
      help: 'Changes of an emergency control (route_all_to_primary, disable_replica_pools, disable_lag_checks)',
      labelNames: ['control'],
      registers,
    })
    this.#reloads = new Counter({
      name: 'freshet_config_reloads_total',
      help: 'Config reload attempts by source (file, sighup, api) and result (applied, invalid, version)',
      labelNames: ['source', 'result'],
      registers,
    })
    this.#primaryChanges = new Counter({
      name: 'freshet_primary_changes_total',
      help: 'Times the primary moved to another node',
      registers,
    })
    this.#breakerTransitions = new Counter({
      name: 'freshet_breaker_transitions_total',
      help: 'Circuit breaker state changes by node and new state',
      labelNames: ['host', 'to'],
      registers,
    })
    this.#shardDecisions = new Counter({
      name: 'shard_decisions_total',
      help: 'Sharded configs: statements by the shard that served them (@aggregate: the aggregate node) and where the shard came from (route_to, hint, context, session, statement, transaction, any, cross_shard)',
      labelNames: ['shard', 'source'],
      registers,
    })
    this.#crossShard = new Counter({
      name: 'cross_shard_statements_total',
      help: 'Sharded configs: statements naming no single shard, by sharded table, sent to the aggregate node or refused',
      labelNames: ['table'],
      registers,
    })
    this.#snapshotGauges()
  }

  /** Content type of `metrics()`. */
  get contentType(): string {
    return this.registry.contentType
  }

  /** The Prometheus text exposition of every metric (summed with the workers', see `setWorkerSource`). */
  async metrics(): Promise<string> {
    return (await this.#aggregated()).metrics()
  }

  /** One metric's values (summed with the workers'), e.g. for the dashboard's decision counts. */
  async values(name: string): Promise<readonly MetricValue<string>[]> {
    return (await (await this.#aggregated()).getSingleMetric(name)?.get())?.values ?? []
  }

  async #aggregated(): Promise<Registry> {
    if (this.#workers === null) return this.registry
    const [own, workers] = await Promise.all([this.registry.getMetricsAsJSON(), this.#workers()])
    const theirs = workers.map((w) => w.filter((m) => !TOPOLOGY_METRICS.has(m.name)))
    return AggregatorRegistry.aggregate([own as MetricsJson, ...theirs])
  }

  /**
   * `proxy.workers`: where the workers' metrics come from. Counters, histograms and pool gauges are
   * summed over this process and the workers; topology, config and controls metrics are this process's.
   */
  setWorkerSource(source: (() => Promise<MetricsJson[]>) | null): void {
    this.#workers = source
  }

  /**
   * Listens to an engine's events and reads its snapshots on scrape. Returns a function that detaches.
   * `poolStats` gives per-node pool counts (library pool or proxy server pools).
   */
  attachEngine(engine: TelemetrySource, poolStats?: PoolStatsProvider): () => void {
    this.#detach?.()
    this.#engine = engine
    if (poolStats) this.#poolStats = poolStats
    this.#onConfig(engine.config)
    let controls = { ...engine.config.controls }
    const onDecision = (d: Decision, c: Classification) => this.#onDecision(d, c)
    const onConfig = (config: FreshetConfig) => this.#onConfig(config)
    const onControls = (next: FreshetConfig['controls']) => {
      for (const key of Object.keys(next) as (keyof typeof next)[]) {
        if (next[key] !== controls[key]) this.#controlChanges.labels(key).inc()
      }
      controls = { ...next }
    }
    const onPrimary = () => this.#primaryChanges.inc()
    const onBreaker = (node: string, _from: string, to: string) =>
      this.#breakerTransitions.labels(node, to).inc()
    const onCrossShard = (tables: readonly string[]) => {
      if (this.#muted > 0) return
      for (const t of tables) this.#crossShard.labels(t).inc()
    }
    engine.on('cross_shard', onCrossShard)
    engine.on('decision', onDecision)
    engine.on('config', onConfig)
    engine.on('controls', onControls)
    engine.on('primary_change', onPrimary)
    engine.on('breaker', onBreaker)
    this.#detach = () => {
      engine.off('decision', onDecision)
      engine.off('config', onConfig)
      engine.off('controls', onControls)
      engine.off('primary_change', onPrimary)
      engine.off('breaker', onBreaker)
      engine.off('cross_shard', onCrossShard)
      this.#detach = null
    }
    return this.#detach
  }

  /** Sets where pool gauges come from (the proxy's server pools, or a library pool). */
  setPoolStatsProvider(provider: PoolStatsProvider | null): void {
    this.#poolStats = provider
  }

  /** Runs `fn` without counting the decisions it makes (explain must not look like traffic). */
  uncounted<T>(fn: () => T): T {
    this.#muted++
    try {
      return fn()
    } finally {
      this.#muted--
    }
  }

  /** Proxy: an error talking to backend node `backend`. */
  backendError(backend: string): void {
    this.#backendErrors.labels(backend).inc()
  }

  /** Proxy: a statement moved to another node after its backend failed. */
  backendFailover(): void {
    this.#failovers.inc()
  }

  /** Proxy: seconds from a client message to its forwarding. */
  observeProxyRoutingLatency(seconds: number): void {
    this.#proxyLatency.observe(seconds)
  }

  /** A config reload attempt: `result` is applied, invalid or version. */
  configReload(source: 'file' | 'sighup' | 'api', result: 'applied' | 'invalid' | 'version'): void {
    this.#reloads.labels(source, result).inc()
  }

  #onConfig(config: FreshetConfig): void {
    const bounds = new Map<string, number>()
    for (const [name, tier] of Object.entries(config.routing.tiers)) bounds.set(name, tier.max_lag_ms)
    this.#tierBounds = bounds
  }

  // Hot path: runs synchronously inside every route(). Map lookups and prom-client increments only.
  #onDecision(d: Decision, c: Classification): void {
    if (this.#muted > 0) return
    const tier = d.tier ?? 'none'
    const target = d.target ?? 'none'
    let byTarget = this.#decisionChildren.get(tier)
    if (byTarget === undefined) {
      byTarget = new Map()
      this.#decisionChildren.set(tier, byTarget)
    }
    let byReason = byTarget.get(target)
    if (byReason === undefined) {
      byReason = new Map()
      byTarget.set(target, byReason)
    }
    let child = byReason.get(d.reason)
    if (child === undefined) {
      child = this.#decisionTallies.of({ tier, target, reason: d.reason })
      byReason.set(d.reason, child)
    }
    child.n++
    if (d.shard !== undefined) {
      let bySource = this.#shardChildren.get(d.shard.shard)
      if (bySource === undefined) {
        bySource = new Map()
        this.#shardChildren.set(d.shard.shard, bySource)
      }
      let shardChild = bySource.get(d.shard.source)
      if (shardChild === undefined) {
        shardChild = this.#shardDecisions.labels(d.shard.shard, d.shard.source)
        bySource.set(d.shard.source, shardChild)
      }
      shardChild.inc()
    }
    this.#decisionLatency.observe(d.decideNs / 1e9)
    if (d.tierSource === 'unannotated') this.#unannotatedTally.n++
    if (FALLBACK_REASONS.has(d.reason)) tallyOf(this.#fallbackChildren, this.#fallbackTallies, tier).n++
    if (d.tier !== null && d.target !== null && c.kind === 'read') {
      const staleness = d.stalenessBoundMs
      if (staleness !== null) cached(this.#stalenessChildren, this.#staleness, tier).observe(staleness / 1000)
      const bound = this.#tierBounds.get(d.tier)
      const onReplica = d.role === 'replica'
      if (onReplica && bound !== undefined && (staleness === null || staleness > bound)) {
        tallyOf(this.#violationChildren, this.#violationTallies, tier).n++
      }
      let reads = this.#readChildren.get(tier)
      if (reads === undefined) {
        reads = {
          primary: this.#readTallies.of({ tier, role: 'primary' }),
          replica: this.#readTallies.of({ tier, role: 'replica' }),
        }
        this.#readChildren.set(tier, reads)
      }
      let offload = this.#offload.get(tier)
      if (offload === undefined) {
        offload = { reads: 0, replica: 0 }
        this.#offload.set(tier, offload)
      }
      offload.reads++
      if (onReplica) {
        offload.replica++
        reads.replica.n++
      } else reads.primary.n++
    }
  }

  /**
   * Per tier, reads sent to a node since start and how many a replica served (cumulative: rates come
   * from successive calls, as for routing_decisions_total).
   * @example
   * metrics.offload() // { near_rt: { reads: 120, replica: 97 } }
   */
  offload(): Record<string, OffloadCount> {
    const out: Record<string, OffloadCount> = {}
    for (const [tier, o] of this.#offload) out[tier] = { ...o }
    return out
  }

  /** Gauges read from the engine snapshot (and pool stats) when Prometheus scrapes. */
  #snapshotGauges(): void {
    const registers = [this.registry]
    const self = this
    new Gauge({
      name: 'replica_offload_ratio',
      help: "Share of each tier's reads since start that replicas served (0..1); for a window use rate(routing_reads_total)",
      labelNames: ['tier'],
      registers,
      collect() {
        this.reset()
        for (const [tier, o] of self.#offload) if (o.reads > 0) this.labels(tier).set(o.replica / o.reads)
      },
    })
    new Gauge({
      name: 'replica_lag_seconds',
      help: 'Replication lag of each node (0 for the primary); absent while unknown',
      labelNames: ['host'],
      registers,
      collect() {
        this.reset()
        for (const n of self.#engine?.snapshot() ?? []) {
          if (n.lag_ms !== null) this.labels(n.name).set(n.lag_ms / 1000)
        }
      },
    })
    new Gauge({
      name: 'replica_eligible',
      help: 'Whether a replica may serve a tier now: healthy, breaker closed, staleness bound within max_lag_ms',
      labelNames: ['host', 'tier'],
      registers,
      collect() {
        this.reset()
        const engine = self.#engine
        if (!engine) return
        for (const [host, row] of Object.entries(tierEligibility(engine.snapshot(), engine.config))) {
          for (const [tier, cell] of Object.entries(row)) this.labels(host, tier).set(cell.eligible ? 1 : 0)
        }
      },
    })
    new Gauge({
      name: 'circuit_breaker_open',
      help: "1 while a node's circuit breaker is open (0.5 half-open, probing), else 0",
      labelNames: ['host'],
      registers,
      collect() {
        this.reset()
        for (const n of self.#engine?.snapshot() ?? []) {
          this.labels(n.name).set(n.breaker === 'open' ? 1 : n.breaker === 'half_open' ? 0.5 : 0)
        }
      },
    })
    new Gauge({
      name: 'freshet_node_healthy',
      help: "1 while a node's last health check succeeded",
      labelNames: ['host', 'role'],
      registers,
      collect() {
        this.reset()
        for (const n of self.#engine?.snapshot() ?? []) this.labels(n.name, n.role).set(n.healthy ? 1 : 0)
      },
    })
    new Gauge({
      name: 'pool_connections',
      help: 'Connections in each node pool by state (active, idle)',
      labelNames: ['host', 'state'],
      registers,
      collect() {
        this.reset()
        const stats = self.#poolStats?.() ?? {}
        for (const [host, s] of Object.entries(stats)) {
          if (!s) continue
          this.labels(host, 'active').set(s.active)
          this.labels(host, 'idle').set(s.idle)
        }
      },
    })
    new Gauge({
      name: 'pool_waiting',
      help: 'Requests waiting for a connection in each node pool',
      labelNames: ['host'],
      registers,
      collect() {
        this.reset()
        const stats = self.#poolStats?.() ?? {}
        for (const [host, s] of Object.entries(stats)) if (s) this.labels(host).set(s.waiting)
      },
    })
    new Gauge({
      name: 'routing_map_version',
      help: 'Sharded configs: version of the routing map in force (1: the config map; each change adds one); 0 without shards',
      registers,
      collect() {
        this.set(self.#engine?.mapVersion ?? 0)
      },
    })
    new Gauge({
      name: 'config_version',
      help: 'Version of the running config',
      registers,
      collect() {
        if (self.#engine) this.set(self.#engine.config.version)
      },
    })
    new Gauge({
      name: 'freshet_controls',
      help: 'Emergency controls (1 = on)',
      labelNames: ['control'],
      registers,
      collect() {
        const controls = self.#engine?.config.controls
        if (!controls) return
        for (const [k, v] of Object.entries(controls)) this.labels(k).set(v ? 1 : 0)
      },
    })
  }
}

function tallyOf(cache: Map<string, Tally>, tallies: Tallies<'tier'>, tier: string): Tally {
  let tally = cache.get(tier)
  if (tally === undefined) {
    tally = tallies.of({ tier })
    cache.set(tier, tally)
  }
  return tally
}

function cached<C>(cache: Map<string, C>, metric: { labels(...values: string[]): C }, value: string): C {
  let child = cache.get(value)
  if (child === undefined) {
    child = metric.labels(value)
    cache.set(value, child)
  }
  return child
}
