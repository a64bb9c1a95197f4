// The replica x tier matrix: every reason a replica may not serve a tier, most basic cause first.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { NodeSnapshot } from '../../../../src/core/topology/node-snapshot.js'
import { tierEligibility } from '../../../../src/core/topology/tier-eligibility.js'

const TIERS = { strict: { max_lag_ms: 0 }, near_rt: { max_lag_ms: 500 }, eventual: { max_lag_ms: 60_000 } }
const OFF = { route_all_to_primary: false, disable_replica_pools: false }

/** A replica snapshot; its staleness bound follows lag_ms unless given. */
function node(over: Partial<NodeSnapshot> = {}): NodeSnapshot {
  const lag = over.lag_ms === undefined ? 0 : over.lag_ms
  return {
    name: 'replica_1',
    role: 'replica',
    lag_ms: lag,
    staleness_bound_ms: lag,
    fresh_as_of: null,
    lag_bytes: 0,
    replay_lsn: '0/1',
    healthy: true,
    breaker: 'closed',
    checked_at: '2026-01-01T00:00:00Z',
    lag_source: 'heartbeat',
    replay_paused: false,
    error: null,
    ...over,
  }
}

describe('tierEligibility', () => {
  const rows: [string, NodeSnapshot, typeof OFF, Record<string, string>][] = [
    ['caught up: every tier', node(), OFF, { strict: 'eligible', near_rt: 'eligible', eventual: 'eligible' }],
    [
      '800 ms behind',
      node({ lag_ms: 800 }),
      OFF,
      { strict: 'over_bound', near_rt: 'over_bound', eventual: 'eligible' },
    ],
    [
      'staleness bound wins over the last reading',
      node({ lag_ms: 100, staleness_bound_ms: 900 }),
      OFF,
      { strict: 'over_bound', near_rt: 'over_bound', eventual: 'eligible' },
    ],
    [
      'a small last lag but nothing proven: no tier with a bound',
      node({ lag_ms: 5, staleness_bound_ms: null }),
      OFF,
      { strict: 'lag_unknown', near_rt: 'lag_unknown', eventual: 'lag_unknown' },
    ],
    [
      'no reading',
      node({ lag_ms: null }),
      OFF,
      { strict: 'lag_unknown', near_rt: 'lag_unknown', eventual: 'lag_unknown' },
    ],
    [
      'unhealthy',
      node({ healthy: false }),
      OFF,
      { strict: 'unhealthy', near_rt: 'unhealthy', eventual: 'unhealthy' },
    ],
    [
      'breaker open',
      node({ breaker: 'open' }),
      OFF,
      { strict: 'breaker_open', near_rt: 'breaker_open', eventual: 'breaker_open' },
    ],
    [
      'half-open',
      node({ breaker: 'half_open' }),
      OFF,
      { strict: 'breaker_half_open', near_rt: 'breaker_half_open', eventual: 'breaker_half_open' },
    ],
    [
      'controls first',
      node({ healthy: false }),
      { ...OFF, route_all_to_primary: true },
      { strict: 'controls', near_rt: 'controls', eventual: 'controls' },
    ],
  ]
  for (const [name, n, controls, expected] of rows) {
    it(name, () => {
      const matrix = tierEligibility([node({ name: 'primary', role: 'primary' }), n], {
        routing: { tiers: TIERS },
        controls,
      })
      assert.deepEqual(Object.keys(matrix), ['replica_1'], 'the primary has no row')
      const row = matrix.replica_1!
      assert.deepEqual(Object.fromEntries(Object.entries(row).map(([t, c]) => [t, c.reason])), expected)
      for (const c of Object.values(row)) assert.equal(c.eligible, c.reason === 'eligible')
    })
  }
  it('says why in words', () => {
    const row = tierEligibility([node({ lag_ms: 812 })], { routing: { tiers: TIERS }, controls: OFF })
      .replica_1!
    assert.equal(row.near_rt!.detail, 'staleness 812 ms > near_rt 500 ms')
  })
})
