// The admin server's own lag history (GET /api/v1/lag-history, the dashboard's starting point).

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { LagHistory } from '../../../src/admin/lag-history.js'
import type { NodeSnapshot } from '../../../src/core/topology/node-snapshot.js'

function node(name: string, role: string, lag_ms: number | null): NodeSnapshot {
  return {
    name,
    role,
    lag_ms,
    staleness_bound_ms: lag_ms,
    fresh_as_of: null,
    lag_bytes: null,
    replay_lsn: null,
    healthy: true,
    breaker: 'closed',
    checked_at: null,
    lag_source: null,
    replay_paused: null,
    error: null,
  }
}

describe('LagHistory', () => {
  it('keeps each replica lag (null when unknown) for the window, and drops nodes that left', () => {
    let nodes = [node('primary', 'primary', 0), node('r1', 'replica', 10), node('r2', 'replica', null)]
    const h = new LagHistory({ snapshot: () => nodes }, 3000, 1000)
    for (let t = 0; t <= 5000; t += 1000) h.sample(t)
    const json = h.toJSON(5000)
    assert.deepEqual(Object.keys(json.nodes), ['r1', 'r2'], 'no line for the primary')
    assert.deepEqual(
      json.nodes.r1!.map(([t]) => t),
      [2000, 3000, 4000, 5000],
      'older than the window is gone',
    )
    assert.deepEqual(json.nodes.r2![0], [2000, null])
    assert.equal(json.window_ms, 3000)
    // r2 promoted, r1 removed: only lines for current replicas remain
    nodes = [node('r2', 'primary', 0), node('r3', 'replica', 5)]
    h.sample(6000)
    assert.deepEqual(h.toJSON(6000).nodes, { r3: [[6000, 5]] })
  })
})
