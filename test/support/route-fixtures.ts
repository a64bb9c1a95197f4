// Hand-built node states and a seeded random for the routing, policy and decision tests.

import type { NodeState } from '../../src/core/topology/node-state.js'

/** The `now` of the decision tests: a node's `freshAsOf` defaults to FIXTURE_NOW - lagMs. */
export const FIXTURE_NOW = 1_700_000_000_000

/**
 * A healthy, settled replica with every field filled; override what a case needs. Unless given,
 * `freshAsOf` follows `lagMs` (staleness bound = lagMs at FIXTURE_NOW; unknown lag, unknown bound).
 */
export function node(name: string, over: Partial<NodeState> = {}): NodeState {
  const lagMs = over.lagMs === undefined ? 0 : over.lagMs
  return {
    freshAsOf: lagMs === null ? null : FIXTURE_NOW - lagMs,
    name,
    role: 'replica',
    weight: 100,
    zone: null,
    healthy: true,
    breaker: 'closed',
    lagMs: 0,
    replayLsn: null,
    checkedAt: 0,
    active: 0,
    latencyEwmaMs: null,
    rampFactor: 1,
    ...over,
  }
}

/** Deterministic uniform [0, 1): a small LCG so distribution tests are reproducible. */
export function seeded(seed = 42): () => number {
  let s = seed >>> 0
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s / 2 ** 32
  }
}
