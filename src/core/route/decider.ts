// The routing decision (CONTRACT section 3): one classified statement plus session, context and topology in, a frozen Decision out.

import type { Classification, ClassReason } from '../classify/classification.js'
import type { FreshetConfig } from '../config/schema.js'
import { createPolicy } from '../policy/create-policy.js'
import type { ReplicaPolicy } from '../policy/replica-policy.js'
import { FallbackLimiter } from '../tiers/fallback-limiter.js'
import { type ResolvedTier, TierResolver } from '../tiers/tier-resolver.js'
import type { NodeState, TopologyView } from '../topology/node-state.js'
import { stalenessBoundMs } from '../topology/staleness-bound.js'
import type { Decision, DecisionReason, TargetRole } from './decision.js'
import type { RoutingContext, SessionView } from './routing-context.js'
import { LSN_ORDER, type TokenOrder } from './token-order.js'

/** pg_proc.provolatile: immutable, stable, volatile. */
export type Volatility = 'i' | 's' | 'v'

/** Everything besides the statement that a decision reads. */
export interface DecideInput {
  readonly session: SessionView
  readonly context: RoutingContext
  readonly topology: TopologyView
  /** Epoch ms (injected clock). */
  readonly now: number
  /**
   * Volatility of a function the statement calls (from pg_catalog), or undefined when unknown. A read
   * calling a volatile or unknown function goes to the primary unless the function is listed in
   * `routing.read_only_functions`. Without this callback every function counts as unknown.
   */
  readonly volatility?: (fn: string) => Volatility | undefined
  /**
   * Offers a half-open breaker's single trial: called for a half-open replica that is otherwise
   * eligible; return true (wire it to `Breaker.allowRequest()`) and this statement is the trial and
   * goes to that replica. Without this callback half-open replicas get no reads (the health probe
   * then makes the trial).
   */
  readonly allowTrial?: (node: string) => boolean
  /**
   * Decide without changing anything (explain): no fallback token taken, no round-robin step, no
   * half-open trial offered (the first eligible replica stands for the policy's pick).
   */
  readonly dryRun?: boolean
}

/** The escape-hatch rule a classifier may attach (config `classifier.rules`); read when present. */
interface RuleMatch {
  readonly action: string
}

type Controls = FreshetConfig['controls']
type TierSource = NonNullable<Decision['tierSource']>

export interface DeciderOptions {
  /** Replica policy; by default `createPolicy(config.routing.policy, { localZone, random })`. */
  readonly policy?: ReplicaPolicy
  /** Uniform [0, 1) source for the default policy's slow start and weighted picks. */
  readonly random?: () => number
  /** Epoch ms at creation, for the fallback rate buckets (which start full). */
  readonly now?: number
  /** How tokens compare with node positions: LSNs (default) or, for MySQL/MariaDB, GTID sets. */
  readonly tokens?: TokenOrder
}

/**
 * Decides where each statement goes, in the order of CONTRACT section 3. Holds the state decisions
 * share: the policy's counters, the per-tier fallback buckets and caches of frozen primary decisions.
 * Build one per config (a reload builds a new one); `setControls` flips emergency controls in place.
 *
 * Choices where the contract is silent (the routing docs should repeat them):
 * - An open transaction pinned to a node keeps it even under emergency controls: moving a statement
 *   out of its transaction would run it outside the transaction. Session pins yield to controls.
 * - A session pinned to a replica never sends a statement that requires the primary there: such a
 *   statement goes to the primary ('write'). Transaction pins always hold (a standby rejects writes).
 * - `ROUTE_TO: primary` sends anything to the primary. `ROUTE_TO: replica` means any healthy replica
 *   with a closed breaker, ignoring tier bounds (the read-your-writes token still applies), unless a
 *   FRESHNESS hint is also given: then the read is routed by that tier. An explicit hint skips the
 *   volatile-function check, rules, withPrimary and the sticky window: the statement asked.
 *   `ROUTE_TO: <node>`: that node if healthy with a closed breaker (lag and tokens not checked); an
 *   unhealthy one sends the read to the primary ('fallback_primary'); an unknown name is an error
 *   decision (reason 'hint_route', code FRESHET_UNKNOWN_NODE). A statement that requires the primary
 *   never goes to a replica whatever the hint, except BEGIN, which places its transaction (a standby
 *   refuses writes in it).
 * - Rules (route_primary / route_replica / tier:<name>) apply after the write check and before the
 *   volatile-function check; a statement's FRESHNESS hint beats a rule's tier.
 * - Tier order: hint, rule, request context, session default, strictest `domains` table, then
 *   `routing.unannotated`. withPrimary (context.primary) beats every tier. A tier name that
 *   routing.tiers lacks sends the read to the primary (reason 'unknown_tier').
 * - A strict tier (max_lag_ms 0) always goes to the primary ('strict_tier'), before the sticky window
 *   and tokens are looked at. A token that is not a valid LSN also sends the read to the primary
 *   ('read_your_writes').
 * - If replicas are within the bound but none has replayed the token: primary, 'read_your_writes'
 *   (not the tier fallback; least_lagged could not honour the token). Fallbacks to the primary for a
 *   tier, including least_lagged finding no replica, count against `fallback_rate_limit`.
 * - The primary is `topology.primary`, healthy or not: writes go there and fail in the executor.
 * - `disable_lag_checks` drops the lag bound (unknown lag included) but not health, breakers or tokens.
 *
 * @example
 * const decider = new Decider(config)
 * const d = decider.decide(classification, { session: IDLE_SESSION, context: {}, topology, now: Date.now() })
 * d.target // 'replica_2'
 */
export class Decider {
  readonly #tiers: TierResolver
  readonly #limiter: FallbackLimiter
  readonly #policy: ReplicaPolicy
  readonly #stickyMs: number
  readonly #readOnlyFunctions: ReadonlySet<string>
  #controls: Controls
  /** Reused candidate list handed to the policy (policies must not keep it). */
  readonly #scratch: NodeState[] = []
  /** Frozen primary decisions without tier or token, by reason then class reason. */
  readonly #primaryCache = new Map<DecisionReason, Map<ClassReason, Decision>>()
  #cachedPrimary = ''
  /** The last token parsed: a session's reads repeat their token, and parsing one costs a regex and a BigInt. */
  #lastTokenText = ''
  #lastToken: unknown = null
  readonly #tokens: TokenOrder
  /** `now` of the decision being made (decide() is synchronous): replica decisions carry the bound at it. */
  #now = 0

  constructor(config: FreshetConfig, options: DeciderOptions = {}) {
    this.#tiers = new TierResolver(config)
    this.#limiter = new FallbackLimiter(config.routing.tiers, options.now ?? 0)
    this.#policy =
      options.policy ??
      createPolicy(config.routing.policy, {
        localZone: config.routing.local_zone,
        ...(options.random ? { random: options.random } : {}),
      })
    this.#stickyMs = config.consistency.sticky_after_write_ms
    this.#readOnlyFunctions = new Set(config.routing.read_only_functions.map((f) => f.toLowerCase()))
    this.#controls = config.controls
    this.#tokens = options.tokens ?? LSN_ORDER
  }

  /** The tiers this decider knows, for callers that validate a tier name up front. */
  get tiers(): TierResolver {
    return this.#tiers
  }

  /** Applies new emergency controls (POST /api/v1/controls) without rebuilding the decider. */
  setControls(controls: Controls): void {
    this.#controls = controls
  }

  /**
   * Decides where one classified statement goes. Pure apart from the decider's own counters and
   * buckets; never throws for routine input: failures are error decisions (target null, `error` set).
   */
  decide(c: Classification, input: DecideInput): Decision {
    const { session, context, topology } = input
    this.#now = input.now
    if (topology.primary !== this.#cachedPrimary) {
      this.#primaryCache.clear()
      this.#cachedPrimary = topology.primary
    }

    // 1-2. an open transaction finishes where it started; controls; then session pins
    const pinned = session.pinnedNode
    if (pinned !== null && (session.pinReason === 'transaction' || session.inTransaction)) {
      return this.#pinned(c, pinned, 'pinned_transaction', topology)
    }
    const controls = this.#controls
    if (controls.route_all_to_primary || controls.disable_replica_pools) {
      return this.#primary('emergency_primary', c)
    }
    const tx = c.transaction
    const replicaAllowed = !c.requiresPrimary || (tx?.action === 'begin' && tx.readOnly === true)
    if (pinned !== null) {
      if (!replicaAllowed && pinned !== topology.primary && topology.nodes.get(pinned)?.role !== 'primary') {
        return this.#primary('write', c)
      }
      return this.#pinned(c, pinned, 'pinned_session', topology)
    }

    // 3. explicit ROUTE_TO
    const hints = c.hints
    let hinted = false
    if (hints.routeTo !== undefined) {
      const to = hints.routeTo
      if (to === 'primary') return this.#primary('hint_route', c)
      if (!replicaAllowed && tx?.action !== 'begin') return this.#primary('write', c)
      if (to === 'replica') {
        if (hints.freshness === undefined) return this.#anyReplica(c, input, 'hint_route')
        hinted = true
      } else {
        return this.#namedNode(c, to, topology)
      }
    }

    // 4. statement class, rules, volatile functions
    let ruleTier: string | undefined
    if (!hinted) {
      if (!replicaAllowed) return this.#primary('write', c)
      const action = (c as { readonly rule?: RuleMatch }).rule?.action
      if (action !== undefined) {
        if (action === 'route_primary') return this.#primary('rule', c)
        if (action === 'route_replica') return this.#anyReplica(c, input, 'rule')
        if (action.startsWith('tier:')) ruleTier = action.slice(5)
      }
      const fns = c.functions
      for (let i = 0; i < fns.length; i++) {
        if (!this.#readOnly(fns[i]!, input.volatility)) return this.#primary('volatile_function', c)
      }
      if (context.primary === true) return this.#primary('context_primary', c)
    }

    // 5. the tier
    let tierName: string | undefined
    let source: TierSource
    let domainTable: string | null = null
    let tier: ResolvedTier | undefined
    if (hints.freshness !== undefined) {
      tierName = hints.freshness
      source = 'hint'
    } else if (ruleTier !== undefined) {
      tierName = ruleTier
      source = 'rule'
    } else if (context.tier !== undefined) {
      tierName = context.tier
      source = 'context'
    } else if (session.sessionTier !== undefined) {
      tierName = session.sessionTier
      source = 'session'
    } else {
      const match = this.#tiers.strictestDomain(c.tables)
      if (match !== null) {
        tier = match.tier
        source = 'domain'
        domainTable = match.table
      } else {
        const u = this.#tiers.unannotated
        if (u === 'primary') return this.#primary('unannotated_primary', c, 'unannotated')
        if (u === 'error') {
          return this.#error(
            'unannotated_error',
            c,
            null,
            'unannotated',
            null,
            null,
            'freshet: read has no freshness tier (no hint, context, session tier or domains table) and routing.unannotated is error',
          )
        }
        tier = u
        source = 'unannotated'
      }
    }
    if (tier === undefined) {
      tier = this.#tiers.byName(tierName!)
      if (tier === undefined) {
        return this.#make(
          this.#cachedPrimary,
          'primary',
          tierName!,
          'unknown_tier',
          0,
          null,
          source,
          null,
          c,
          null,
        )
      }
    }
    const minLsn = hints.minLsn ?? context.minLsn ?? null
    if (tier.strict) return this.#read(c, 'strict_tier', null, tier, source, domainTable, minLsn)

    // 6. read-your-writes: the time window, then the LSN token
    if (
      !hinted &&
      this.#stickyMs > 0 &&
      context.lastWriteAt !== undefined &&
      input.now - context.lastWriteAt < this.#stickyMs
    ) {
      return this.#read(c, 'sticky_after_write', null, tier, source, domainTable, minLsn)
    }
    let token: unknown = null
    if (minLsn !== null) {
      token = this.#token(minLsn)
      if (token === null) {
        return this.#read(c, 'read_your_writes', null, tier, source, domainTable, minLsn)
      }
    }

    // 7. eligible replicas, the policy, the tier's fallback
    const ignoreLag = controls.disable_lag_checks
    const bound = tier.maxLagMs
    const nodes = topology.nodes
    const names = topology.replicas
    const scratch = this.#scratch
    scratch.length = 0
    let withinBound = 0
    for (let i = 0; i < names.length; i++) {
      const n = nodes.get(names[i]!)
      if (n === undefined || n.role !== 'replica' || !n.healthy) continue
      // the staleness bound, not the lag of the last reading: a reading ages from its probe's send time.
      // A replica whose monitor cannot measure its lag (stopped replication threads, no lag source) is
      // unknown whatever it has been proven to hold (CONTRACT section 10).
      const staleness = stalenessBoundMs(n.freshAsOf, input.now)
      if (!ignoreLag && (staleness === null || staleness > bound || n.lagMs === null)) continue
      if (n.breaker !== 'closed') {
        if (
          n.breaker === 'half_open' &&
          input.allowTrial !== undefined &&
          input.dryRun !== true &&
          (token === null || this.#tokens.reached(n, token))
        ) {
          if (input.allowTrial(n.name)) {
            scratch.length = 0
            return this.#read(c, 'replica', n, tier, source, domainTable, minLsn)
          }
        }
        continue
      }
      withinBound++
      if (token !== null && !this.#tokens.reached(n, token)) continue
      scratch.push(n)
    }
    if (scratch.length > 0) {
      const picked =
        scratch.length === 1 || input.dryRun === true ? scratch[0]! : this.#policy.pick(scratch, input.now)
      scratch.length = 0
      return this.#read(c, 'replica', picked, tier, source, domainTable, minLsn)
    }
    if (withinBound > 0) {
      return this.#read(c, 'read_your_writes', null, tier, source, domainTable, minLsn)
    }
    switch (tier.fallback) {
      case 'error':
        return this.#error(
          'fallback_error',
          c,
          tier.name,
          source,
          domainTable,
          minLsn,
          noReplicaMessage(tier, topology, input.now),
        )
      case 'least_lagged': {
        let best: NodeState | undefined
        for (let i = 0; i < names.length; i++) {
          const n = nodes.get(names[i]!)
          if (
            n === undefined ||
            n.role !== 'replica' ||
            !n.healthy ||
            n.breaker !== 'closed' ||
            n.freshAsOf === null ||
            n.lagMs === null
          )
            continue
          if (token !== null && !this.#tokens.reached(n, token)) continue
          // least lagged = smallest staleness bound = proven fresh as of the latest moment
          if (best === undefined || n.freshAsOf > best.freshAsOf!) best = n
        }
        if (best !== undefined) {
          return this.#read(c, 'fallback_least_lagged', best, tier, source, domainTable, minLsn)
        }
        // no replica at all: the primary, as fallback `primary` does
        return this.#fallbackPrimary(c, tier, source, domainTable, minLsn, input.now, input.dryRun === true)
      }
      default:
        return this.#fallbackPrimary(c, tier, source, domainTable, minLsn, input.now, input.dryRun === true)
    }
  }

  #fallbackPrimary(
    c: Classification,
    tier: ResolvedTier,
    source: TierSource,
    domainTable: string | null,
    minLsn: string | null,
    now: number,
    dryRun: boolean,
  ): Decision {
    const allowed = dryRun
      ? this.#limiter.wouldAllow(tier.name, now)
      : this.#limiter.tryFallback(tier.name, now)
    if (!allowed) {
      return this.#error(
        'fallback_rate_limited',
        c,
        tier.name,
        source,
        domainTable,
        minLsn,
        `freshet: no replica within tier '${tier.name}' (max_lag_ms ${tier.maxLagMs}) and fallbacks to the primary are over fallback_rate_limit ${tier.fallbackRateLimit}/s`,
      )
    }
    return this.#read(c, 'fallback_primary', null, tier, source, domainTable, minLsn)
  }

  /** ROUTE_TO: replica (or a route_replica rule): any healthy replica with a closed breaker, tokens honoured. */
  #anyReplica(c: Classification, input: DecideInput, reason: 'hint_route' | 'rule'): Decision {
    const { topology, context } = input
    const minLsn = c.hints.minLsn ?? context.minLsn ?? null
    const token = minLsn === null ? null : this.#token(minLsn)
    if (minLsn !== null && token === null) {
      return this.#make(
        this.#cachedPrimary,
        'primary',
        null,
        'read_your_writes',
        0,
        minLsn,
        null,
        null,
        c,
        null,
      )
    }
    const scratch = this.#scratch
    scratch.length = 0
    let healthy = 0
    for (const name of topology.replicas) {
      const n = topology.nodes.get(name)
      if (n === undefined || n.role !== 'replica' || !n.healthy || n.breaker !== 'closed') continue
      healthy++
      if (token !== null && !this.#tokens.reached(n, token)) continue
      scratch.push(n)
    }
    if (scratch.length > 0) {
      const picked =
        scratch.length === 1 || input.dryRun === true ? scratch[0]! : this.#policy.pick(scratch, input.now)
      scratch.length = 0
      return this.#make(
        picked.name,
        'replica',
        null,
        reason,
        picked.lagMs,
        minLsn,
        null,
        null,
        c,
        null,
        this.#boundOf(picked),
      )
    }
    const why: DecisionReason = healthy > 0 ? 'read_your_writes' : 'fallback_primary'
    return minLsn === null
      ? this.#primary(why, c)
      : this.#make(this.#cachedPrimary, 'primary', null, why, 0, minLsn, null, null, c, null)
  }

  /** ROUTE_TO: <node name>. */
  #namedNode(c: Classification, wanted: string, topology: TopologyView): Decision {
    const node = findNode(topology, wanted)
    if (node === undefined) {
      const known = [...topology.nodes.keys()].join(', ')
      return this.#error(
        'hint_route',
        c,
        null,
        null,
        null,
        null,
        `freshet: ROUTE_TO names unknown node '${wanted}' (nodes: ${known})`,
      )
    }
    if (node.name === topology.primary) return this.#primary('hint_route', c)
    if (node.role !== 'replica' || !node.healthy || node.breaker !== 'closed')
      return this.#primary('fallback_primary', c)
    return this.#make(
      node.name,
      'replica',
      null,
      'hint_route',
      node.lagMs,
      null,
      null,
      null,
      c,
      null,
      this.#boundOf(node),
    )
  }

  #pinned(
    c: Classification,
    pinned: string,
    reason: 'pinned_transaction' | 'pinned_session',
    topology: TopologyView,
  ): Decision {
    if (pinned === topology.primary) return this.#primary(reason, c)
    const node = topology.nodes.get(pinned)
    const role: TargetRole | null =
      node?.role === 'replica' ? 'replica' : node?.role === 'primary' ? 'primary' : null
    const bound =
      role === 'replica' && node !== undefined ? this.#boundOf(node) : role === 'primary' ? 0 : null
    return this.#make(pinned, role, null, reason, node?.lagMs ?? null, null, null, null, c, null, bound)
  }

  /** A primary decision with no tier and no token: cached frozen per reason and class reason. */
  #primary(reason: DecisionReason, c: Classification, source: TierSource | null = null): Decision {
    if (c.parseError !== undefined)
      return this.#make(this.#cachedPrimary, 'primary', null, reason, 0, null, source, null, c, null)
    let byClass = this.#primaryCache.get(reason)
    if (byClass === undefined) {
      byClass = new Map()
      this.#primaryCache.set(reason, byClass)
    }
    let d = byClass.get(c.reason)
    if (d === undefined) {
      d = this.#make(this.#cachedPrimary, 'primary', null, reason, 0, null, source, null, c, null)
      byClass.set(c.reason, d)
    }
    return d
  }

  /** A decision of the tier phase: to `node`, or to the primary when `node` is null. */
  #read(
    c: Classification,
    reason: DecisionReason,
    node: NodeState | null,
    tier: ResolvedTier,
    source: TierSource,
    domainTable: string | null,
    minLsn: string | null,
  ): Decision {
    return node === null
      ? this.#make(this.#cachedPrimary, 'primary', tier.name, reason, 0, minLsn, source, domainTable, c, null)
      : this.#make(
          node.name,
          'replica',
          tier.name,
          reason,
          node.lagMs,
          minLsn,
          source,
          domainTable,
          c,
          null,
          this.#boundOf(node),
        )
  }

  #error(
    reason: DecisionReason,
    c: Classification,
    tier: string | null,
    source: TierSource | null,
    domainTable: string | null,
    minLsn: string | null,
    message: string,
  ): Decision {
    return this.#make(null, null, tier, reason, null, minLsn, source, domainTable, c, message)
  }

  #make(
    target: string | null,
    role: TargetRole | null,
    tier: string | null,
    reason: DecisionReason,
    lagMs: number | null,
    minLsn: string | null,
    tierSource: TierSource | null,
    domainTable: string | null,
    c: Classification,
    error: string | null,
    stalenessBound: number | null = role === 'primary' ? 0 : null,
  ): Decision {
    return Object.freeze({
      target,
      role,
      tier,
      reason,
      lagMs,
      stalenessBoundMs: stalenessBound,
      minLsn,
      tierSource,
      domainTable,
      classReason: c.reason,
      error,
      decideNs: 0,
      parseError: c.parseError ?? null,
    })
  }

  /** A replica's staleness bound at the decision's `now` (ms), or null when nothing is proven. */
  #boundOf(n: NodeState): number | null {
    const b = stalenessBoundMs(n.freshAsOf, this.#now)
    return b === null ? null : Math.round(b)
  }

  #token(text: string): unknown {
    if (text !== this.#lastTokenText) {
      this.#lastToken = this.#tokens.parse(text)
      this.#lastTokenText = text
    }
    return this.#lastToken
  }

  #readOnly(fn: string, volatility: DecideInput['volatility']): boolean {
    if (this.#readOnlyFunctions.size > 0) {
      if (this.#readOnlyFunctions.has(fn)) return true
      const dot = fn.lastIndexOf('.')
      if (dot >= 0 && this.#readOnlyFunctions.has(fn.slice(dot + 1))) return true
    }
    const v = volatility?.(fn)
    return v === 'i' || v === 's'
  }
}

function findNode(topology: TopologyView, wanted: string): NodeState | undefined {
  const exact = topology.nodes.get(wanted)
  if (exact !== undefined) return exact
  // hints are lower-cased; config names may not be
  for (const n of topology.nodes.values()) if (n.name.toLowerCase() === wanted) return n
  return undefined
}

/** The fallback_error message: names the tier, its bound, and why each replica did not qualify. */
function noReplicaMessage(tier: ResolvedTier, topology: TopologyView, now: number): string {
  const parts: string[] = []
  for (const name of topology.replicas) {
    const n = topology.nodes.get(name)
    if (n === undefined) parts.push(`${name} unknown`)
    else if (n.role !== 'replica') parts.push(`${name} role ${n.role}`)
    else if (!n.healthy) parts.push(`${name} unhealthy`)
    else if (n.breaker !== 'closed') parts.push(`${name} breaker ${n.breaker}`)
    else {
      const b = stalenessBoundMs(n.freshAsOf, now)
      parts.push(`${name} staleness bound ${b === null ? 'unknown' : `${Math.round(b)} ms`}`)
    }
  }
  const list = parts.length > 0 ? parts.join(', ') : 'no replicas configured'
  return `freshet: no replica within tier '${tier.name}' (max_lag_ms ${tier.maxLagMs}): ${list}`
}
