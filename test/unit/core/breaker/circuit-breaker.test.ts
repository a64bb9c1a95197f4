import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { CircuitBreaker } from '../../../../src/core/breaker/circuit-breaker.js'
import type { BreakerState } from '../../../../src/core/topology/node-state.js'

function setup(threshold = 3, cooldownMs = 5000) {
  const clock = { t: 1_000_000 }
  const changes: [BreakerState, BreakerState][] = []
  const breaker = new CircuitBreaker({
    failureThreshold: threshold,
    cooldownMs,
    now: () => clock.t,
    onStateChange: (from, to) => changes.push([from, to]),
  })
  return { clock, changes, breaker }
}

describe('CircuitBreaker', () => {
  it('opens after failure_threshold consecutive failures', () => {
    const { breaker, changes } = setup(3)
    breaker.failure()
    breaker.failure()
    assert.equal(breaker.state, 'closed')
    assert.equal(breaker.allowRequest(), true)
    breaker.failure()
    assert.equal(breaker.state, 'open')
    assert.equal(breaker.allowRequest(), false)
    assert.deepEqual(changes, [['closed', 'open']])
  })

  it('a success resets the consecutive count', () => {
    const { breaker } = setup(3)
    breaker.failure()
    breaker.failure()
    breaker.success()
    assert.equal(breaker.consecutiveFailures, 0)
    breaker.failure()
    breaker.failure()
    assert.equal(breaker.state, 'closed')
  })

  it('turns half-open after the cooldown and lets exactly one trial through', () => {
    const { breaker, clock, changes } = setup(1, 5000)
    breaker.failure()
    clock.t += 4999
    assert.equal(breaker.state, 'open')
    assert.equal(breaker.allowRequest(), false)
    clock.t += 1
    assert.equal(breaker.state, 'half_open')
    assert.equal(breaker.allowRequest(), true)
    assert.equal(breaker.allowRequest(), false)
    assert.equal(breaker.allowRequest(), false)
    assert.deepEqual(changes, [
      ['closed', 'open'],
      ['open', 'half_open'],
    ])
  })

  it('a successful trial closes the breaker', () => {
    const { breaker, clock, changes } = setup(2, 100)
    breaker.failure()
    breaker.failure()
    clock.t += 100
    assert.equal(breaker.allowRequest(), true)
    breaker.success()
    assert.equal(breaker.state, 'closed')
    assert.equal(breaker.allowRequest(), true)
    assert.deepEqual(changes.at(-1), ['half_open', 'closed'])
    // and it needs the full threshold again to re-open
    breaker.failure()
    assert.equal(breaker.state, 'closed')
  })

  it('a failed trial re-opens for another full cooldown', () => {
    const { breaker, clock, changes } = setup(1, 100)
    breaker.failure()
    clock.t += 100
    assert.equal(breaker.allowRequest(), true)
    breaker.failure()
    assert.equal(breaker.state, 'open')
    clock.t += 99
    assert.equal(breaker.allowRequest(), false)
    clock.t += 1
    assert.equal(breaker.allowRequest(), true)
    assert.deepEqual(changes, [
      ['closed', 'open'],
      ['open', 'half_open'],
      ['half_open', 'open'],
      ['open', 'half_open'],
    ])
  })

  it('a trial that never reports back expires after another cooldown', () => {
    const { breaker, clock } = setup(1, 100)
    breaker.failure()
    clock.t += 100
    assert.equal(breaker.allowRequest(), true)
    clock.t += 99
    assert.equal(breaker.allowRequest(), false)
    clock.t += 1
    assert.equal(breaker.allowRequest(), true)
  })

  it('ignores a late success while open and extra failures while open', () => {
    const { breaker, clock } = setup(1, 100)
    breaker.failure()
    breaker.success()
    assert.equal(breaker.state, 'open')
    clock.t += 50
    breaker.failure()
    clock.t += 50
    assert.equal(breaker.state, 'half_open', 'failures while open do not extend the cooldown')
  })

  it('refuses nonsense options', () => {
    assert.throws(() => new CircuitBreaker({ failureThreshold: 0, cooldownMs: 1, now: () => 0 }), RangeError)
    assert.throws(() => new CircuitBreaker({ failureThreshold: 1, cooldownMs: -1, now: () => 0 }), RangeError)
  })
})
