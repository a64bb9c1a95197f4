// The one breaker policy: which outcomes of a node's use count as success, failure or nothing.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type NodeOutcome, reportOutcome } from '../../../../src/core/breaker/breaker-policy.js'
import { CircuitBreaker } from '../../../../src/core/breaker/circuit-breaker.js'

describe('reportOutcome', () => {
  const rows: { outcomes: NodeOutcome[]; state: string }[] = [
    { outcomes: ['connection_failed', 'connection_failed'], state: 'open' },
    { outcomes: ['login_refused', 'login_refused', 'login_refused'], state: 'closed' },
    { outcomes: ['connection_failed', 'answered', 'connection_failed'], state: 'closed' },
    { outcomes: ['answered', 'answered'], state: 'closed' },
  ]
  for (const row of rows) {
    it(`${row.outcomes.join(', ')} -> ${row.state}`, () => {
      const breaker = new CircuitBreaker({ failureThreshold: 2, cooldownMs: 1000, now: () => 0 })
      for (const o of row.outcomes) reportOutcome(breaker, o)
      assert.equal(breaker.state, row.state)
    })
  }
  it('a half-open trial answered (even with an SQL error) closes the breaker', () => {
    let now = 0
    const breaker = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 1000, now: () => now })
    reportOutcome(breaker, 'connection_failed')
    now = 1500
    assert.equal(breaker.state, 'half_open')
    assert.equal(breaker.allowRequest(), true)
    reportOutcome(breaker, 'answered')
    assert.equal(breaker.state, 'closed')
  })
  it('a node without a breaker is ignored', () => {
    reportOutcome(undefined, 'connection_failed')
  })
})
