import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Classification } from '../../../../src/core/classify/classification.js'
import { ConfigSchema, type FreshetConfigInput } from '../../../../src/core/config/schema.js'
import { isFreshetError } from '../../../../src/core/errors.js'
import { type DecideInput, Decider } from '../../../../src/core/route/decider.js'
import type { Decision } from '../../../../src/core/route/decision.js'
import { decisionError } from '../../../../src/core/route/decision-error.js'
import { formatDecision } from '../../../../src/core/route/format-decision.js'
import { replicasAtLsn } from '../../../../src/core/route/replicas-at-lsn.js'
import {
  IDLE_SESSION,
  type RoutingContext,
  type SessionView,
} from '../../../../src/core/route/routing-context.js'
import { withDecideNs } from '../../../../src/core/route/with-decide-ns.js'
import type { NodeState, TopologyView } from '../../../../src/core/topology/node-state.js'
import { FIXTURE_NOW, node } from '../../../support/route-fixtures.js'

// ---- fixtures: hand-built classifications, topologies and configs ----

const NOW = FIXTURE_NOW

function read(over: Partial<Classification> = {}): Classification {
  return {
    kind: 'read',
    reason: 'read',
    requiresPrimary: false,
    tables: ['users'],
    functions: [],
    hints: {},
    statementCount: 1,
    ...over,
  }
}
const write = (over: Partial<Classification> = {}): Classification =>
  read({ kind: 'write', reason: 'dml', requiresPrimary: true, ...over })
const begin = (readOnly?: boolean, over: Partial<Classification> = {}): Classification =>
  read({
    kind: 'transaction',
    reason: 'transaction_control',
    requiresPrimary: true,
    tables: [],
    transaction: readOnly === undefined ? { action: 'begin' } : { action: 'begin', readOnly },
    ...over,
  })
const withRule = (c: Classification, action: string): Classification =>
  ({ ...c, rule: { action, pattern: 'x', priority: 0 } }) as Classification

/** primary at 0/3E8; r1 100 ms behind at 0/384; r2 200 ms at 0/3B6 (zone eu-1); r3 2 s at 0/320. */
const BASE_NODES: Record<string, Partial<NodeState>> = {
  primary: { role: 'primary', lagMs: 0, replayLsn: 1000n },
  r1: { lagMs: 100, replayLsn: 900n },
  r2: { lagMs: 200, replayLsn: 950n, zone: 'eu-1' },
  r3: { lagMs: 2000, replayLsn: 800n },
}

function topology(over: Record<string, Partial<NodeState>> = {}, primary = 'primary'): TopologyView {
  const nodes = new Map<string, NodeState>()
  for (const name of ['primary', 'r1', 'r2', 'r3'])
    nodes.set(name, node(name, { ...BASE_NODES[name], ...over[name] }))
  return { primary, nodes, replicas: ['r1', 'r2', 'r3'] }
}

function config(over: Partial<FreshetConfigInput> = {}) {
  return ConfigSchema.parse({
    cluster: {
      primary: { name: 'primary', url: 'postgres://p' },
      replicas: [
        { name: 'r1', url: 'postgres://r1' },
        { name: 'r2', url: 'postgres://r2', zone: 'eu-1' },
        { name: 'r3', url: 'postgres://r3' },
      ],
    },
    domains: { ledger_entries: 'strict', orders: 'near_rt', 'sales.leads': 'eventual' },
    ...over,
    routing: {
      read_only_functions: ['my_ro_fn'],
      ...over.routing,
      tiers: {
        strict: { max_lag_ms: 0 },
        near_rt: { max_lag_ms: 500, fallback: 'primary' },
        eventual: { max_lag_ms: 60000, fallback: 'least_lagged' },
        reports: { max_lag_ms: 150, fallback: 'error' },
        ...over.routing?.tiers,
      },
    },
  })
}

interface Row {
  name: string
  c: Classification
  session?: Partial<SessionView>
  context?: RoutingContext
  nodes?: Record<string, Partial<NodeState>>
  primary?: string
  config?: Partial<FreshetConfigInput>
  input?: Partial<DecideInput>
  expect: Partial<Decision>
  errorIncludes?: string[]
}

const eventual = { freshness: 'eventual' }
const nearRt = { freshness: 'near_rt' }
const txPin = { pinnedNode: 'r1', pinReason: 'transaction' as const, inTransaction: true }

// Rows follow CONTRACT section 3 in order; every fallback has a row.
const ROWS: Row[] = [
  // 1. emergency controls
  {
    name: '1: route_all_to_primary sends a hinted read to the primary',
    c: read({ hints: eventual }),
    config: { controls: { route_all_to_primary: true } },
    expect: { target: 'primary', role: 'primary', reason: 'emergency_primary', tier: null, lagMs: 0 },
  },
  {
    name: '1: disable_replica_pools also routes everything to the primary',
    c: read({ hints: { routeTo: 'replica' } }),
    config: { controls: { disable_replica_pools: true } },
    expect: { target: 'primary', reason: 'emergency_primary' },
  },
  {
    name: '1: an open transaction pinned to a replica finishes there even under emergency controls',
    c: read(),
    session: txPin,
    config: { controls: { route_all_to_primary: true } },
    expect: { target: 'r1', role: 'replica', reason: 'pinned_transaction', lagMs: 100 },
  },
  // 2. pins
  {
    name: '2: a transaction pinned to the primary keeps reads there',
    c: read({ hints: eventual }),
    session: { pinnedNode: 'primary', pinReason: 'transaction', inTransaction: true },
    expect: { target: 'primary', role: 'primary', reason: 'pinned_transaction', tier: null, lagMs: 0 },
  },
  {
    name: '2: ROUTE_TO inside a transaction cannot move a statement off the pinned node',
    c: read({ hints: { routeTo: 'primary' } }),
    session: txPin,
    expect: { target: 'r1', reason: 'pinned_transaction' },
  },
  {
    name: '2: COMMIT of a read-only transaction on a replica stays on it',
    c: read({
      kind: 'transaction',
      reason: 'transaction_control',
      requiresPrimary: true,
      transaction: { action: 'commit' },
    }),
    session: txPin,
    expect: { target: 'r1', reason: 'pinned_transaction', classReason: 'transaction_control' },
  },
  {
    name: '2: session state pins to its node',
    c: read({ hints: eventual }),
    session: { pinnedNode: 'primary', pinReason: 'temp_table', inTransaction: false },
    expect: { target: 'primary', reason: 'pinned_session' },
  },
  {
    name: '2: a session pinned to a replica still reads there',
    c: read(),
    session: { pinnedNode: 'r2', pinReason: 'session_set', inTransaction: false },
    expect: { target: 'r2', role: 'replica', reason: 'pinned_session', lagMs: 200 },
  },
  {
    name: '2: a session pin never sends a write to a replica',
    c: write(),
    session: { pinnedNode: 'r2', pinReason: 'session_set', inTransaction: false },
    expect: { target: 'primary', reason: 'write' },
  },
  {
    name: '2: session pins yield to emergency controls',
    c: read(),
    session: { pinnedNode: 'r2', pinReason: 'session_set', inTransaction: false },
    config: { controls: { route_all_to_primary: true } },
    expect: { target: 'primary', reason: 'emergency_primary' },
  },
  // 3. explicit ROUTE_TO
  {
    name: '3: ROUTE_TO primary',
    c: read({ hints: { routeTo: 'primary', freshness: 'eventual' } }),
    expect: { target: 'primary', reason: 'hint_route', tier: null },
  },
  {
    name: '3: ROUTE_TO replica: any healthy replica, tier bounds ignored',
    c: read({ hints: { routeTo: 'replica' } }),
    nodes: { r1: { healthy: false }, r2: { breaker: 'open' }, r3: { lagMs: 999_999 } },
    expect: { target: 'r3', role: 'replica', reason: 'hint_route', tier: null, lagMs: 999_999 },
  },
  {
    name: '3: ROUTE_TO replica beats withPrimary and volatile functions',
    c: read({ hints: { routeTo: 'replica' }, functions: ['random'] }),
    context: { primary: true },
    expect: { target: 'r1', reason: 'hint_route' },
  },
  {
    name: '3: ROUTE_TO replica with a FRESHNESS hint routes by that tier',
    c: read({ hints: { routeTo: 'replica', freshness: 'reports' } }),
    expect: { target: 'r1', reason: 'replica', tier: 'reports', tierSource: 'hint' },
  },
  {
    name: '3: ROUTE_TO replica with a FRESHNESS hint takes the tier fallback',
    c: read({ hints: { routeTo: 'replica', freshness: 'reports' } }),
    nodes: { r1: { lagMs: 400 } },
    expect: { target: null, reason: 'fallback_error', tier: 'reports' },
  },
  {
    name: '3: ROUTE_TO replica with no healthy replica falls back to the primary',
    c: read({ hints: { routeTo: 'replica' } }),
    nodes: { r1: { healthy: false }, r2: { healthy: false }, r3: { breaker: 'half_open' } },
    expect: { target: 'primary', reason: 'fallback_primary', tier: null },
  },
  {
    name: '3: ROUTE_TO replica still honours a read-your-writes token',
    c: read({ hints: { routeTo: 'replica', minLsn: '0/3C0' } }),
    expect: { target: 'primary', reason: 'read_your_writes', minLsn: '0/3C0' },
  },
  {
    name: '3: ROUTE_TO replica picks among replicas that reached the token',
    c: read({ hints: { routeTo: 'replica' } }),
    context: { minLsn: '0/3B0' },
    expect: { target: 'r2', reason: 'hint_route', minLsn: '0/3B0' },
  },
  {
    name: '3: ROUTE_TO replica never moves a write',
    c: write({ hints: { routeTo: 'replica' } }),
    expect: { target: 'primary', reason: 'write', classReason: 'dml' },
  },
  {
    name: '3: ROUTE_TO <node> never moves a write',
    c: write({ hints: { routeTo: 'r2' } }),
    expect: { target: 'primary', reason: 'write' },
  },
  {
    name: '3: ROUTE_TO replica at BEGIN places the transaction',
    c: begin(undefined, { hints: { routeTo: 'replica' } }),
    expect: { target: 'r1', reason: 'hint_route' },
  },
  {
    name: '3: ROUTE_TO a node by name, whatever its lag',
    c: read({ hints: { routeTo: 'r3', freshness: 'strict' } }),
    expect: { target: 'r3', role: 'replica', reason: 'hint_route', lagMs: 2000, tier: null },
  },
  {
    name: '3: ROUTE_TO the primary by name',
    c: read({ hints: { routeTo: 'primary' } }),
    expect: { target: 'primary', reason: 'hint_route' },
  },
  {
    name: '3: ROUTE_TO an unhealthy node sends the read to the primary',
    c: read({ hints: { routeTo: 'r2' } }),
    nodes: { r2: { healthy: false } },
    expect: { target: 'primary', reason: 'fallback_primary' },
  },
  {
    name: '3: ROUTE_TO a node with an open breaker sends the read to the primary',
    c: read({ hints: { routeTo: 'r2' } }),
    nodes: { r2: { breaker: 'open' } },
    expect: { target: 'primary', reason: 'fallback_primary' },
  },
  {
    name: '3: ROUTE_TO an unknown node is an error decision',
    c: read({ hints: { routeTo: 'r9' } }),
    expect: { target: null, role: null, reason: 'hint_route' },
    errorIncludes: ["freshet: ROUTE_TO names unknown node 'r9'", 'r1'],
  },
  // 4. statement class, rules, functions
  {
    name: '4: writes go to the primary with the class reason kept',
    c: write({ reason: 'ddl', hints: eventual }),
    expect: { target: 'primary', reason: 'write', classReason: 'ddl', tier: null, lagMs: 0 },
  },
  {
    name: '4: an unparsable statement goes to the primary with its parse error',
    c: write({ kind: 'unknown', reason: 'unparsable', parseError: 'syntax error at or near "SELEC"' }),
    expect: {
      target: 'primary',
      reason: 'write',
      classReason: 'unparsable',
      parseError: 'syntax error at or near "SELEC"',
    },
  },
  {
    name: '4: SET outside a transaction goes to the primary',
    c: read({ kind: 'session', reason: 'session_state', requiresPrimary: true }),
    expect: { target: 'primary', reason: 'write', classReason: 'session_state' },
  },
  {
    name: '4: BEGIN (read write) goes to the primary',
    c: begin(false, { hints: eventual }),
    expect: { target: 'primary', reason: 'write', classReason: 'transaction_control' },
  },
  {
    name: '4: plain BEGIN goes to the primary',
    c: begin(),
    context: { tier: 'eventual' },
    expect: { target: 'primary', reason: 'write' },
  },
  {
    name: '4: BEGIN READ ONLY is decided like a read with its tier',
    c: begin(true),
    context: { tier: 'eventual' },
    expect: {
      target: 'r1',
      reason: 'replica',
      tier: 'eventual',
      tierSource: 'context',
      classReason: 'transaction_control',
    },
  },
  {
    name: '4: BEGIN READ ONLY without a tier is unannotated',
    c: begin(true),
    expect: { target: 'primary', reason: 'unannotated_primary' },
  },
  {
    name: '4: a rule route_primary',
    c: withRule(read({ hints: eventual }), 'route_primary'),
    expect: { target: 'primary', reason: 'rule' },
  },
  {
    name: '4: a rule route_replica picks any healthy replica',
    c: withRule(read(), 'route_replica'),
    nodes: { r1: { lagMs: 100_000 } },
    expect: { target: 'r1', reason: 'rule', tier: null },
  },
  {
    name: '4: a rule never moves a write',
    c: withRule(write(), 'route_replica'),
    expect: { target: 'primary', reason: 'write' },
  },
  {
    name: '4: a rule tier:<name> sets the tier',
    c: withRule(read(), 'tier:eventual'),
    context: { tier: 'strict' },
    expect: { target: 'r1', reason: 'replica', tier: 'eventual', tierSource: 'rule' },
  },
  {
    name: "4: a FRESHNESS hint beats a rule's tier",
    c: withRule(read({ hints: { freshness: 'strict' } }), 'tier:eventual'),
    expect: { target: 'primary', reason: 'strict_tier', tier: 'strict', tierSource: 'hint' },
  },
  {
    name: '4: a read calling a volatile function goes to the primary',
    c: read({ hints: eventual, functions: ['gen_random_uuid'] }),
    input: { volatility: () => 'v' },
    expect: { target: 'primary', reason: 'volatile_function', classReason: 'read' },
  },
  {
    name: '4: a function of unknown volatility counts as volatile',
    c: read({ hints: eventual, functions: ['my_fn'] }),
    expect: { target: 'primary', reason: 'volatile_function' },
  },
  {
    name: '4: stable and immutable functions may read on a replica',
    c: read({ hints: eventual, functions: ['lower', 'now'] }),
    input: { volatility: (fn) => (fn === 'lower' ? 'i' : 's') },
    expect: { target: 'r1', reason: 'replica' },
  },
  {
    name: '4: routing.read_only_functions allows a volatile function (schema-qualified too)',
    c: read({ hints: eventual, functions: ['app.my_ro_fn'] }),
    input: { volatility: () => 'v' },
    expect: { target: 'r1', reason: 'replica' },
  },
  // 5. the tier
  {
    name: '5: withPrimary sends reads to the primary, even hinted ones',
    c: read({ hints: eventual }),
    context: { primary: true },
    expect: { target: 'primary', reason: 'context_primary', tier: null },
  },
  {
    name: '5: tier from the hint beats context and session',
    c: read({ hints: { freshness: 'reports' } }),
    context: { tier: 'eventual' },
    session: { sessionTier: 'strict' },
    expect: { target: 'r1', tier: 'reports', tierSource: 'hint', reason: 'replica', lagMs: 100 },
  },
  {
    name: '5: tier from the request context beats the session',
    c: read({ tables: ['ledger_entries'] }),
    context: { tier: 'eventual' },
    session: { sessionTier: 'strict' },
    expect: { target: 'r1', tier: 'eventual', tierSource: 'context' },
  },
  {
    name: '5: tier from the session default (case-insensitive)',
    c: read(),
    session: { sessionTier: 'EVENTUAL' },
    expect: { target: 'r1', tier: 'eventual', tierSource: 'session' },
  },
  {
    name: '5: tier from a domains table',
    c: read({ tables: ['orders'] }),
    expect: { target: 'r1', tier: 'near_rt', tierSource: 'domain', domainTable: 'orders' },
  },
  {
    name: '5: a table without a domain makes the read unannotated (its data was never declared stale-tolerant)',
    c: read({ tables: ['users', 'orders'] }),
    expect: { target: 'primary', reason: 'unannotated_primary', tierSource: 'unannotated' },
  },
  {
    name: '5: the strictest domains table wins',
    c: read({ tables: ['sales.leads', 'public.ledger_entries', 'orders'] }),
    expect: {
      target: 'primary',
      reason: 'strict_tier',
      tier: 'strict',
      tierSource: 'domain',
      domainTable: 'ledger_entries',
    },
  },
  {
    name: '5: a schema-qualified domains key matches the qualified table',
    c: read({ tables: ['sales.leads'] }),
    nodes: { r1: { lagMs: 30_000 } },
    expect: { target: 'r1', tier: 'eventual', domainTable: 'sales.leads' },
  },
  {
    name: '5: unannotated primary (the default)',
    c: read(),
    expect: { target: 'primary', reason: 'unannotated_primary', tier: null, tierSource: 'unannotated' },
  },
  {
    name: '5: unannotated error',
    c: read(),
    config: { routing: { unannotated: 'error' } },
    expect: { target: null, reason: 'unannotated_error', tierSource: 'unannotated' },
    errorIncludes: ['freshet:', 'routing.unannotated'],
  },
  {
    name: '5: unannotated <tier>',
    c: read(),
    config: { routing: { unannotated: 'near_rt' } },
    expect: { target: 'r1', reason: 'replica', tier: 'near_rt', tierSource: 'unannotated' },
  },
  {
    name: '5: an unknown tier name goes to the primary',
    c: read({ hints: { freshness: 'bogus' } }),
    expect: { target: 'primary', reason: 'unknown_tier', tier: 'bogus', tierSource: 'hint' },
  },
  // 6. read-your-writes
  {
    name: '6: only replicas that replayed the context token are eligible',
    c: read({ hints: eventual }),
    context: { minLsn: '0/3A0' },
    expect: { target: 'r2', reason: 'replica', minLsn: '0/3A0' },
  },
  {
    name: "6: the hint's token beats the context's",
    c: read({ hints: { freshness: 'eventual', minLsn: '0/3E8' } }),
    context: { minLsn: '0/1' },
    expect: { target: 'primary', reason: 'read_your_writes', minLsn: '0/3E8', tier: 'eventual' },
  },
  {
    name: '6: no replica at the token: primary',
    c: read({ hints: nearRt }),
    context: { minLsn: '0/3E8' },
    expect: { target: 'primary', reason: 'read_your_writes' },
  },
  {
    name: '6: a replica with an unknown replay LSN has not reached the token',
    c: read({ hints: nearRt }),
    context: { minLsn: '0/1' },
    nodes: { r1: { replayLsn: null }, r2: { replayLsn: null } },
    expect: { target: 'primary', reason: 'read_your_writes' },
  },
  {
    name: '6: an invalid token reads from the primary',
    c: read({ hints: { freshness: 'eventual', minLsn: 'garbage' } }),
    expect: { target: 'primary', reason: 'read_your_writes', minLsn: 'garbage' },
  },
  {
    name: '6: within sticky_after_write_ms of a write: primary',
    c: read({ hints: eventual }),
    context: { lastWriteAt: NOW - 999 },
    config: { consistency: { sticky_after_write_ms: 1000 } },
    expect: { target: 'primary', reason: 'sticky_after_write', tier: 'eventual' },
  },
  {
    name: '6: after the sticky window: replica',
    c: read({ hints: eventual }),
    context: { lastWriteAt: NOW - 1000 },
    config: { consistency: { sticky_after_write_ms: 1000 } },
    expect: { target: 'r1', reason: 'replica' },
  },
  // 7. eligibility, policy, fallbacks
  {
    name: '7: a strict tier reads from the primary',
    c: read({ hints: { freshness: 'strict' } }),
    expect: { target: 'primary', reason: 'strict_tier', tier: 'strict', lagMs: 0 },
  },
  {
    name: '7: unhealthy, open-breaker, unknown-lag, over-bound and promoted replicas are not eligible',
    c: read({ hints: nearRt }),
    nodes: {
      r1: { healthy: false },
      r2: { breaker: 'open' },
      r3: { lagMs: null },
    },
    expect: { target: 'primary', reason: 'fallback_primary', tier: 'near_rt' },
  },
  {
    name: '7: the bound is inclusive',
    c: read({ hints: nearRt }),
    nodes: { r1: { lagMs: 501 }, r2: { lagMs: 500 } },
    expect: { target: 'r2', reason: 'replica', lagMs: 500, stalenessBoundMs: 500 },
  },
  {
    name: '7: eligibility is the staleness bound at dispatch, not the lag of the last reading',
    c: read({ hints: nearRt }),
    // r1 read 10 ms of lag, but that reading proves freshness only as of 600 ms ago
    nodes: { r1: { lagMs: 10, freshAsOf: FIXTURE_NOW - 600 }, r2: { lagMs: 300 } },
    expect: { target: 'r2', reason: 'replica', lagMs: 300, stalenessBoundMs: 300 },
  },
  {
    name: '7: a replica with nothing proven is not eligible, whatever its last lag',
    c: read({ hints: nearRt }),
    nodes: {
      r1: { lagMs: 0, freshAsOf: null },
      r2: { lagMs: 0, freshAsOf: null },
      r3: { lagMs: 0, freshAsOf: null },
    },
    expect: { target: 'primary', reason: 'fallback_primary', stalenessBoundMs: 0 },
  },
  {
    name: '7: a replica whose lag cannot be measured (stopped replication) is not eligible, however fresh its proof',
    c: read({ hints: nearRt }),
    nodes: {
      r1: { lagMs: null, freshAsOf: FIXTURE_NOW - 10 },
      r2: { lagMs: null, freshAsOf: FIXTURE_NOW - 10 },
      r3: { lagMs: 5 },
    },
    expect: { target: 'r3', reason: 'replica', stalenessBoundMs: 5 },
  },
  {
    name: '7: a replica that reports the primary role is not eligible',
    c: read({ hints: nearRt }),
    nodes: { r1: { role: 'primary' } },
    expect: { target: 'r2' },
  },
  {
    name: '7: half-open replicas get no reads without a trial hook',
    c: read({ hints: nearRt }),
    nodes: { r1: { breaker: 'half_open' } },
    expect: { target: 'r2' },
  },
  {
    name: '7: a half-open replica granted its trial takes this read',
    c: read({ hints: nearRt }),
    nodes: { r2: { breaker: 'half_open' } },
    input: { allowTrial: (n) => n === 'r2' },
    expect: { target: 'r2', reason: 'replica' },
  },
  {
    name: '7: disable_lag_checks ignores the bound but not health',
    c: read({ hints: { freshness: 'reports' } }),
    nodes: { r1: { healthy: false }, r2: { lagMs: null }, r3: { lagMs: 50_000 } },
    config: { controls: { disable_lag_checks: true } },
    expect: { target: 'r2', reason: 'replica', lagMs: null },
  },
  {
    name: '7: routing.local_zone prefers same-zone replicas',
    c: read({ hints: nearRt }),
    config: { routing: { local_zone: 'eu-1' } },
    expect: { target: 'r2', reason: 'replica' },
  },
  {
    name: '7: the configured policy picks (least_lag)',
    c: read({ hints: eventual }),
    config: { routing: { policy: 'least_lag' } },
    nodes: { r1: { lagMs: 300 }, r2: { lagMs: 20 } },
    expect: { target: 'r2', reason: 'replica', lagMs: 20 },
  },
  {
    name: '7: least_lag ranks by staleness bound',
    c: read({ hints: eventual }),
    config: { routing: { policy: 'least_lag' } },
    nodes: { r1: { lagMs: 5, freshAsOf: FIXTURE_NOW - 400 }, r2: { lagMs: 20 } },
    expect: { target: 'r2', reason: 'replica', stalenessBoundMs: 20 },
  },
  {
    name: '7: fallback primary',
    c: read({ hints: nearRt }),
    nodes: { r1: { lagMs: 900 }, r2: { lagMs: 800 } },
    expect: { target: 'primary', role: 'primary', reason: 'fallback_primary', tier: 'near_rt', lagMs: 0 },
  },
  {
    name: '7: fallback error names the tier, its bound and the staleness bounds',
    c: read({ hints: { freshness: 'reports' } }),
    nodes: { r1: { lagMs: 900 }, r2: { healthy: false } },
    expect: { target: null, role: null, reason: 'fallback_error', tier: 'reports', lagMs: null },
    errorIncludes: [
      "freshet: no replica within tier 'reports' (max_lag_ms 150)",
      'r1 staleness bound 900 ms',
      'r2 unhealthy',
      'r3 staleness bound 2000 ms',
    ],
  },
  {
    name: '7: fallback least_lagged goes over the bound to the freshest healthy replica',
    c: read({ hints: eventual }),
    nodes: { r1: { lagMs: 90_000 }, r2: { lagMs: 70_000 }, r3: { lagMs: 65_000, healthy: false } },
    expect: {
      target: 'r2',
      role: 'replica',
      reason: 'fallback_least_lagged',
      tier: 'eventual',
      lagMs: 70_000,
      stalenessBoundMs: 70_000,
    },
  },
  {
    name: '7: fallback least_lagged with no healthy replica: primary',
    c: read({ hints: eventual }),
    nodes: { r1: { healthy: false }, r2: { breaker: 'open' }, r3: { lagMs: null } },
    expect: { target: 'primary', reason: 'fallback_primary', tier: 'eventual' },
  },
  // topology
  {
    name: 'after a promotion the new primary takes writes',
    c: write(),
    primary: 'r1',
    nodes: { r1: { role: 'primary' }, primary: { role: 'unknown', healthy: false } },
    expect: { target: 'r1', role: 'primary', reason: 'write' },
  },
  {
    name: 'an unhealthy primary still takes writes (the executor fails them)',
    c: write(),
    nodes: { primary: { healthy: false } },
    expect: { target: 'primary', reason: 'write' },
  },
]

function run(row: Row): Decision {
  const decider = new Decider(config(row.config))
  return decider.decide(row.c, {
    session: { ...IDLE_SESSION, ...row.session },
    context: row.context ?? {},
    topology: topology(row.nodes, row.primary),
    now: NOW,
    ...row.input,
  })
}

describe('decide: CONTRACT section 3, row by row', () => {
  for (const row of ROWS) {
    it(row.name, () => {
      const d = run(row)
      assert.ok(Object.isFrozen(d), 'decisions are frozen')
      for (const [key, value] of Object.entries(row.expect)) {
        assert.deepEqual(d[key as keyof Decision], value, `${key}: ${formatDecision(d)}`)
      }
      if (row.errorIncludes) {
        assert.ok(d.error !== null, 'an error decision')
        for (const part of row.errorIncludes)
          assert.ok(d.error.includes(part), `error ${JSON.stringify(d.error)} lacks ${part}`)
      } else if (d.target !== null) {
        assert.equal(d.error, null)
      }
      if (d.target === null) assert.ok(d.error?.startsWith('freshet:'))
      assert.equal(d.decideNs, 0)
    })
  }
})

describe('decide: state across decisions', () => {
  const input = (over: Partial<DecideInput> = {}): DecideInput => ({
    session: IDLE_SESSION,
    context: {},
    topology: topology(),
    now: NOW,
    ...over,
  })

  it('round robin rotates over eligible replicas across decisions', () => {
    const decider = new Decider(config())
    const c = read({ hints: eventual })
    const targets = Array.from({ length: 6 }, () => decider.decide(c, input()).target)
    assert.deepEqual(targets, ['r1', 'r2', 'r3', 'r1', 'r2', 'r3'])
  })

  it('fallback_rate_limit caps fallbacks to the primary per tier, refilling on the clock', () => {
    const decider = new Decider(
      config({ routing: { tiers: { near_rt: { max_lag_ms: 50, fallback_rate_limit: 2 } } } }),
      {
        now: NOW,
      },
    )
    const c = read({ hints: nearRt })
    const at = (now: number) => decider.decide(c, input({ now })).reason
    assert.deepEqual(
      [at(NOW), at(NOW), at(NOW)],
      ['fallback_primary', 'fallback_primary', 'fallback_rate_limited'],
    )
    const limited = decider.decide(c, input({ now: NOW + 1 }))
    assert.equal(limited.target, null)
    assert.match(limited.error!, /^freshet: .*near_rt.*fallback_rate_limit 2\/s/)
    assert.equal(at(NOW + 500), 'fallback_primary')
    assert.equal(at(NOW + 500), 'fallback_rate_limited')
    // other tiers are not capped
    assert.equal(decider.decide(read({ hints: { freshness: 'strict' } }), input()).reason, 'strict_tier')
  })

  it('a dry run (explain) changes nothing: no round-robin step, no fallback token, no breaker trial', () => {
    const decider = new Decider(
      config({ routing: { tiers: { near_rt: { max_lag_ms: 50, fallback_rate_limit: 1 } } } }),
      { now: NOW },
    )
    const dry = input({ dryRun: true })
    const c = read({ hints: eventual })
    assert.deepEqual(
      [decider.decide(c, dry).target, decider.decide(c, dry).target, decider.decide(c, input()).target],
      ['r1', 'r1', 'r1'],
      'explain did not advance the rotation',
    )
    const slow = read({ hints: nearRt })
    for (let i = 0; i < 3; i++) assert.equal(decider.decide(slow, dry).reason, 'fallback_primary')
    assert.equal(decider.decide(slow, input()).reason, 'fallback_primary', 'the token is still there')
    assert.equal(decider.decide(slow, dry).reason, 'fallback_rate_limited', 'explain reports the cap')
    let trials = 0
    const allowTrial = () => {
      trials++
      return true
    }
    const halfOpen = topology({ r1: { breaker: 'half_open' } })
    decider.decide(c, input({ dryRun: true, allowTrial, topology: halfOpen }))
    assert.equal(trials, 0, 'explain took no half-open trial')
    assert.equal(decider.decide(c, input({ allowTrial, topology: halfOpen })).target, 'r1')
    assert.equal(trials, 1, 'a real decision does (so the check above could fail)')
  })

  it('least_lagged finding no replica counts against the rate cap too', () => {
    const decider = new Decider(
      config({
        routing: { tiers: { eventual: { max_lag_ms: 1, fallback: 'least_lagged', fallback_rate_limit: 1 } } },
      }),
    )
    const down = topology({ r1: { healthy: false }, r2: { healthy: false }, r3: { healthy: false } })
    const c = read({ hints: eventual })
    assert.equal(decider.decide(c, input({ topology: down })).reason, 'fallback_primary')
    assert.equal(decider.decide(c, input({ topology: down })).reason, 'fallback_rate_limited')
  })

  it('each decision checks its own token (the parsed-token cache follows the text)', () => {
    const decider = new Decider(config())
    const at = (minLsn: string) =>
      decider.decide(read({ hints: { freshness: 'eventual', minLsn } }), input()).target
    assert.deepEqual(
      [at('0/3A0'), at('0/3E8'), at('0/3A0'), at('bad'), at('0/3A0')],
      ['r2', 'primary', 'r2', 'primary', 'r2'],
    )
  })

  it('shares frozen decisions for the common primary cases', () => {
    const decider = new Decider(config())
    const a = decider.decide(write(), input())
    const b = decider.decide(write(), input())
    assert.equal(a, b)
    assert.notEqual(decider.decide(write({ reason: 'ddl' }), input()), a)
    // a promotion changes the primary: cached decisions must not survive it
    const promoted = topology({ r1: { role: 'primary' } }, 'r1')
    assert.equal(decider.decide(write(), input({ topology: promoted })).target, 'r1')
    assert.equal(decider.decide(write(), input()).target, 'primary')
  })

  it('setControls flips emergency controls in place', () => {
    const decider = new Decider(config())
    const c = read({ hints: eventual })
    const cfg = config()
    decider.setControls({ ...cfg.controls, route_all_to_primary: true })
    assert.equal(decider.decide(c, input()).reason, 'emergency_primary')
    decider.setControls(cfg.controls)
    assert.equal(decider.decide(c, input()).reason, 'replica')
  })
})

describe('decision helpers', () => {
  const input: DecideInput = { session: IDLE_SESSION, context: {}, topology: topology(), now: NOW }

  it('decisionError maps error decisions to FreshetErrors with stable codes', () => {
    const decider = new Decider(config({ routing: { unannotated: 'error' } }))
    const cases: [Classification, string][] = [
      [read({ hints: { routeTo: 'nowhere' } }), 'FRESHET_UNKNOWN_NODE'],
      [read(), 'FRESHET_UNANNOTATED_READ'],
    ]
    for (const [c, code] of cases) {
      const err = decisionError(decider.decide(c, input))
      assert.ok(isFreshetError(err))
      assert.equal(err.code, code)
      assert.match(err.message, /^freshet: /)
    }
    const fell = decider.decide(read({ hints: { freshness: 'reports' } }), {
      ...input,
      topology: topology({ r1: { lagMs: 1000 }, r2: { lagMs: 1000 } }),
    })
    assert.equal(decisionError(fell)?.code, 'FRESHET_NO_ELIGIBLE_NODE')
    assert.equal(decisionError(decider.decide(write(), input)), null)
  })

  it('formatDecision renders one line', () => {
    const decider = new Decider(config())
    const d = decider.decide(read({ tables: ['orders'] }), { ...input, context: { minLsn: '0/1' } })
    assert.equal(
      formatDecision(d),
      'r1 (replica) reason=replica tier=near_rt (domain) domain=orders lag=100ms staleness_bound=100ms min_lsn=0/1 class=read',
    )
    assert.equal(
      formatDecision(decider.decide(write(), input)),
      'primary (primary) reason=write lag=0ms staleness_bound=0ms class=dml',
    )
    const err = decider.decide(read({ hints: { routeTo: 'x' } }), input)
    assert.match(
      formatDecision(err),
      /^ERROR reason=hint_route class=read: freshet: ROUTE_TO names unknown node 'x'/,
    )
    const shadow = Object.freeze({
      ...decider.decide(write(), input),
      reason: 'shadow' as const,
      wouldBe: { target: 'r2', reason: 'replica' as const, lagMs: 10 },
    })
    assert.match(formatDecision(shadow), /^primary \(primary\) reason=shadow would_be=r2 \(replica\) /)
  })

  it('withDecideNs stamps a frozen copy', () => {
    const d = new Decider(config()).decide(write(), input)
    const timed = withDecideNs(d, 1234)
    assert.equal(timed.decideNs, 1234)
    assert.equal(d.decideNs, 0)
    assert.ok(Object.isFrozen(timed))
    assert.match(formatDecision(timed), /took=1\.2us/)
    // every other field unchanged, for a plain and for a shadow decision (wouldBe kept)
    assert.deepEqual({ ...timed, decideNs: 0 }, { ...d })
    const shadow = Object.freeze({ ...d, wouldBe: { target: 'r2', reason: 'replica' as const, lagMs: 10 } })
    assert.deepEqual(withDecideNs(shadow, 5), { ...shadow, decideNs: 5 })
  })

  it('replicasAtLsn lists healthy closed replicas at or past a token', () => {
    const t = topology({ r2: { breaker: 'open' } })
    assert.deepEqual(
      replicasAtLsn(t, '0/384').map((n) => n.name),
      ['r1'],
    )
    assert.deepEqual(
      replicasAtLsn(topology(), 0x320n).map((n) => n.name),
      ['r1', 'r2', 'r3'],
    )
    assert.deepEqual(replicasAtLsn(t, 'bad'), [])
  })
})
