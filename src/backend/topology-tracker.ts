// Turns monitor readings, breaker states and pool statistics into the TopologyView the decision reads:
// which node is the primary now, who is healthy, how far behind each replica is.

import { CircuitBreaker } from '../core/breaker/circuit-breaker.js'
import type { FreshetConfig, NodeConfig } from '../core/config/schema.js'
import { parseLsn } from '../core/lsn.js'
import type { BreakerState, NodeRole, NodeState, TopologyView } from '../core/topology/node-state.js'
import { FreshnessProof, LSN_POSITIONS, type PositionOrder } from '../core/topology/staleness-bound.js'
import type { NodeReading } from './node-monitor.js'

/** A node as the tracker keeps it: config, latest reading, breaker, live statistics. */
interface TrackedNode {
  config: NodeConfig
  reading: NodeReading | null
  breaker: CircuitBreaker
  latencyEwmaMs: number | null
  /** When the node last became eligible again after exclusion (for slow start), or null. */
  rampStart: number | null
  excluded: boolean
}

export interface TrackerEvents {
  onPrimaryChange?(from: string, to: string): void
  onBreakerChange?(node: string, from: BreakerState, to: BreakerState): void
  onHealthChange?(node: string, healthy: boolean): void
}

const EWMA_ALPHA = 0.2

/**
 * The single source of the topology view. Readings arrive a few times a second; the view is rebuilt
 * lazily when something changed or a reading may have gone stale, so deciding stays a pointer read.
 */
export class TopologyTracker {
  readonly #nodes = new Map<string, TrackedNode>()
  #replicaNames: string[] = []
  #primary: string
  /** The newest timeline a writable node has reported: an older one is a stale primary. */
  #newestTimeline = 0
  #config: FreshetConfig
  #view: TopologyView | null = null
  /** Epoch ms after which the cached view must be rebuilt because a reading ages out. */
  #viewExpiresAt = 0
  readonly #now: () => number
  readonly #events: TrackerEvents
  #activeCount: (node: string) => number = () => 0
  /** Primary position samples and what each replica is proven to hold: the staleness bounds. */
  readonly #proof: FreshnessProof<unknown>

  /** `positions`: how replay positions compare (LSNs by default; GTID sets for freshet/mysql). */
  constructor(
    config: FreshetConfig,
    options: { now?: () => number; events?: TrackerEvents; positions?: PositionOrder } = {},
  ) {
    this.#proof = new FreshnessProof<unknown>(options.positions ?? (LSN_POSITIONS as PositionOrder))
    this.#now = options.now ?? Date.now
    this.#events = options.events ?? {}
    this.#config = config
    this.#primary = config.cluster.primary.name
    this.setNodes(config)
  }

  /** Applies a (new) config: adds and removes nodes, keeping state of nodes that stay. */
  setNodes(config: FreshetConfig, replicas: readonly NodeConfig[] = config.cluster.replicas): void {
    this.#config = config
    const wanted = [config.cluster.primary, ...replicas]
    const names = new Set(wanted.map((n) => n.name))
    for (const name of [...this.#nodes.keys()]) {
      if (names.has(name)) continue
      this.#nodes.delete(name)
      this.#proof.forget(name)
    }
    for (const node of wanted) {
      const existing = this.#nodes.get(node.name)
      if (existing) {
        if (existing.config.url !== node.url) {
          // another server under the same name: what was measured of the old one says nothing of it
          existing.reading = null
          existing.latencyEwmaMs = null
          this.#proof.forget(node.name)
        }
        existing.config = node
      } else
        this.#nodes.set(node.name, {
          config: node,
          reading: null,
          breaker: this.#breaker(node.name),
          latencyEwmaMs: null,
          rampStart: null,
          excluded: true,
        })
    }
    if (!this.#nodes.has(this.#primary)) {
      // the elected primary left the topology (a reload, discovery): back to the configured one, said
      // out loud, then whoever is really writable now
      const from = this.#primary
      this.#primary = config.cluster.primary.name
      this.#newestTimeline = 0
      this.#proof.primaryChanged()
      this.#events.onPrimaryChange?.(from, this.#primary)
      this.#electPrimary()
    }
    this.#replicaNames = [...this.#nodes.keys()].filter((n) => n !== this.#primary)
    this.#view = null
  }

  /** True while `name` is a tracked node (no array built, unlike `nodes()`: the proxy asks per release). */
  has(name: string): boolean {
    return this.#nodes.has(name)
  }

  /** The config of a tracked node (its URL may change on reload or discovery). */
  nodeConfig(name: string): NodeConfig | undefined {
    return this.#nodes.get(name)?.config
  }

  /** Node configs currently tracked. */
  nodes(): NodeConfig[] {
    return [...this.#nodes.values()].map((n) => n.config)
  }

  get primary(): string {
    return this.#primary
  }

  /** Where pools report how many connections are in use (least_connections). */
  setActiveCounter(count: (node: string) => number): void {
    this.#activeCount = count
  }

  breaker(name: string): CircuitBreaker | undefined {
    return this.#nodes.get(name)?.breaker
  }

  /** Records a monitor reading and re-evaluates the primary. */
  record(name: string, reading: NodeReading): void {
    const node = this.#nodes.get(name)
    if (!node) return
    const wasHealthy = node.reading?.ok ?? false
    node.reading = reading
    if (wasHealthy !== reading.ok) this.#events.onHealthChange?.(name, reading.ok)
    this.#electPrimary()
    const lsn = reading.ok && reading.lsn ? this.#proof.parse(reading.lsn) : null
    if (lsn !== null) {
      if (name === this.#primary && reading.inRecovery === false)
        this.#proof.primarySample(reading.sentAt, lsn)
      else if (reading.inRecovery === true) this.#proof.replicaReading(name, lsn)
    }
    this.#view = null
  }

  /** Feeds the response time of a query on a node into its EWMA (least_latency). */
  observeLatency(name: string, ms: number): void {
    const node = this.#nodes.get(name)
    if (!node) return
    node.latencyEwmaMs =
      node.latencyEwmaMs === null ? ms : node.latencyEwmaMs + EWMA_ALPHA * (ms - node.latencyEwmaMs)
  }

  /** Marks the view stale (pool counts changed and the policy reads them). */
  invalidate(): void {
    this.#view = null
  }

  /** The current view, rebuilt only when something changed or a reading aged out. */
  view(): TopologyView {
    const now = this.#now()
    if (this.#view !== null && now < this.#viewExpiresAt) return this.#view
    return this.#build(now)
  }

  #build(now: number): TopologyView {
    const lagCfg = this.#config.lag
    const interval = Math.max(lagCfg.interval_ms, 1)
    // A reading older than three probe intervals plus the probe timeout says nothing about now: the lag
    // is unknown. The monitors probe every min(lag, health) interval (health only with lag checks off).
    const probeEvery = this.#config.controls.disable_lag_checks
      ? this.#config.health.interval_ms
      : Math.min(interval, this.#config.health.interval_ms)
    const maxAge = 3 * Math.max(probeEvery, 1) + this.#config.health.timeout_ms
    const slowStart = this.#config.pools.slow_start_ms
    let expires = now + interval
    const states = new Map<string, NodeState>()
    for (const [name, node] of this.#nodes) {
      const r = node.reading
      const fresh = r?.ok === true && now - r.at <= maxAge
      if (r?.ok) expires = Math.min(expires, r.at + maxAge + 1)
      const role: NodeRole =
        name === this.#primary
          ? 'primary'
          : r === null || !r.ok
            ? 'replica'
            : r.inRecovery
              ? 'replica'
              : 'unknown'
      const breaker = node.breaker.state
      const healthy = fresh && (role !== 'replica' || r?.inRecovery === true)
      const included = healthy && breaker === 'closed'
      if (included && node.excluded) node.rampStart = node.reading === null ? null : now
      node.excluded = !included
      let rampFactor = 1
      if (node.rampStart !== null && slowStart > 0 && role === 'replica') {
        const elapsed = now - node.rampStart
        if (elapsed >= slowStart) node.rampStart = null
        else {
          rampFactor = Math.max(0.05, elapsed / slowStart)
          expires = Math.min(expires, now + Math.min(500, slowStart))
        }
      }
      states.set(
        name,
        Object.freeze({
          name,
          role,
          weight: node.config.weight,
          zone: node.config.zone,
          healthy,
          breaker,
          lagMs: role === 'primary' ? 0 : fresh ? r!.lagMs : null,
          replayLsn: r?.lsn ? parseLsn(r.lsn) : null,
          checkedAt: r?.at ?? 0,
          freshAsOf: role === 'replica' ? this.#proof.freshAsOf(name) : null,
          active: this.#activeCount(name),
          latencyEwmaMs: node.latencyEwmaMs,
          rampFactor,
        }),
      )
    }
    this.#view = Object.freeze({ primary: this.#primary, nodes: states, replicas: this.#replicaNames })
    this.#viewExpiresAt = expires
    return this.#view
  }

  #electPrimary(): void {
    const current = this.#nodes.get(this.#primary)
    const timelineOf = (n: TrackedNode) => n.reading!.timeline ?? 0
    const writable = [...this.#nodes.values()].filter((n) => n.reading?.ok && n.reading.inRecovery === false)
    for (const n of writable) this.#newestTimeline = Math.max(this.#newestTimeline, timelineOf(n))
    // a writable node on an older timeline than one already seen is an old primary that came back after
    // a failover: it never becomes (or becomes again) the primary, even while the new one misses a probe
    const eligible = writable.filter((n) => timelineOf(n) >= this.#newestTimeline)
    if (eligible.length === 0) return
    const currentWritable = current?.reading?.ok === true && current.reading.inRecovery === false
    let next = this.#primary
    if (!currentWritable) {
      next = eligible.sort((a, b) => timelineOf(b) - timelineOf(a))[0]!.config.name
    } else {
      // Two writable nodes: the one on the newer timeline is the real primary (the other is an old
      // primary that came back after a failover and must receive nothing).
      const newest = writable.reduce((a, b) =>
        (b.reading!.timeline ?? 0) > (a.reading!.timeline ?? 0) ? b : a,
      )
      if ((newest.reading!.timeline ?? 0) > (current.reading!.timeline ?? 0)) next = newest.config.name
    }
    if (next !== this.#primary) {
      const from = this.#primary
      this.#primary = next
      this.#replicaNames = [...this.#nodes.keys()].filter((n) => n !== next)
      this.#proof.primaryChanged()
      this.#events.onPrimaryChange?.(from, next)
    }
  }

  #breaker(name: string): CircuitBreaker {
    return new CircuitBreaker({
      failureThreshold: this.#config.circuit_breaker.failure_threshold,
      cooldownMs: this.#config.circuit_breaker.cooldown_ms,
      now: this.#now,
      onStateChange: (from, to) => {
        this.#view = null
        this.#events.onBreakerChange?.(name, from, to)
      },
    })
  }
}
