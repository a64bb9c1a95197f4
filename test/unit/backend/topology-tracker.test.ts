// TopologyTracker: monitor readings, breakers and statistics in, the TopologyView the decision reads out.
// Pure logic on an injected clock with hand-made readings (no database).

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { NodeReading } from '../../../src/backend/node-monitor.js'
import { TopologyTracker } from '../../../src/backend/topology-tracker.js'
import { validateConfig } from '../../../src/core/config/parse-config.js'
import type { FreshetConfig, NodeConfig } from '../../../src/core/config/schema.js'
import type { BreakerState, NodeState } from '../../../src/core/topology/node-state.js'

const T0 = 1_700_000_000_000

const PRIMARY: NodeConfig = { name: 'primary', url: 'postgres://app@db-p/main', weight: 100, zone: null }
const R1: NodeConfig = { name: 'replica_1', url: 'postgres://app@db-r1/main', weight: 100, zone: null }
const R2: NodeConfig = { name: 'replica_2', url: 'postgres://app@db-r2/main', weight: 100, zone: null }

/**
 * lag.interval_ms = health.interval_ms = 200 and health.timeout_ms = 400, so "three probe intervals plus
 * the health timeout" is 1000 ms whichever interval one reads as the probe interval.
 */
function configWith(patch: Record<string, unknown> = {}): FreshetConfig {
  const base: Record<string, unknown> = {
    cluster: { primary: PRIMARY, replicas: [R1, R2] },
    lag: { interval_ms: 200 },
    health: { interval_ms: 200, timeout_ms: 400 },
    circuit_breaker: { failure_threshold: 2, cooldown_ms: 1000 },
    pools: { slow_start_ms: 0 },
  }
  return validateConfig({ ...base, ...patch })
}

function replicaReading(at: number, lagMs: number | null = 10, over: Partial<NodeReading> = {}): NodeReading {
  return {
    ok: true,
    at,
    sentAt: at - 1,
    inRecovery: true,
    lsn: '0/3000000',
    lagMs,
    lagSource: 'heartbeat',
    replayPaused: false,
    timeline: null,
    error: null,
    rttMs: 1,
    ...over,
  }
}

function writableReading(at: number, timeline: number | null, over: Partial<NodeReading> = {}): NodeReading {
  return {
    ok: true,
    at,
    sentAt: at - 1,
    inRecovery: false,
    lsn: '0/4000000',
    lagMs: 0,
    lagSource: 'primary',
    replayPaused: null,
    timeline,
    error: null,
    rttMs: 1,
    ...over,
  }
}

function failedReading(at: number): NodeReading {
  return {
    ok: false,
    at,
    sentAt: at,
    inRecovery: null,
    lsn: null,
    lagMs: null,
    lagSource: null,
    replayPaused: null,
    timeline: null,
    error: 'connect ECONNREFUSED',
    rttMs: null,
  }
}

function setup(config: FreshetConfig = configWith()) {
  const clock = { t: T0 }
  const primaryChanges: [string, string][] = []
  const healthChanges: [string, boolean][] = []
  const breakerChanges: [string, BreakerState, BreakerState][] = []
  const tracker = new TopologyTracker(config, {
    now: () => clock.t,
    events: {
      onPrimaryChange: (from, to) => primaryChanges.push([from, to]),
      onHealthChange: (node, healthy) => healthChanges.push([node, healthy]),
      onBreakerChange: (node, from, to) => breakerChanges.push([node, from, to]),
    },
  })
  /** Fresh readings for the configured primary (timeline 1) and both replicas at the current time. */
  const feedAll = (lagMs = 10) => {
    tracker.record('primary', writableReading(clock.t, 1))
    tracker.record('replica_1', replicaReading(clock.t, lagMs))
    tracker.record('replica_2', replicaReading(clock.t, lagMs))
  }
  /** Advances the clock by `ms` in steps, feeding fresh readings and building the view at every step. */
  const advance = (ms: number, step = 250) => {
    for (let left = ms; left > 0; left -= step) {
      clock.t += Math.min(step, left)
      feedAll()
      tracker.view()
    }
  }
  const nodeState = (name: string): NodeState => {
    const n = tracker.view().nodes.get(name)
    assert.ok(n, `${name} is in the view`)
    return n
  }
  return { clock, tracker, feedAll, advance, nodeState, primaryChanges, healthChanges, breakerChanges }
}

describe('TopologyTracker: reading age', () => {
  it('a reading up to three probe intervals plus the health timeout old is used; one ms older makes lag unknown and the node ineligible', () => {
    const { clock, tracker, nodeState } = setup()
    tracker.record('primary', writableReading(T0, 1))
    tracker.record('replica_1', replicaReading(T0, 42))
    clock.t = T0 + 1000
    assert.equal(nodeState('replica_1').lagMs, 42)
    assert.equal(nodeState('replica_1').healthy, true)
    assert.equal(nodeState('replica_1').checkedAt, T0)
    clock.t = T0 + 1001
    const r1 = nodeState('replica_1')
    assert.equal(r1.lagMs, null, 'a stale reading says nothing about the lag now')
    assert.equal(r1.healthy, false, 'a stale reading does not count as a passed health check')
    assert.equal(r1.role, 'replica')
    // the primary's lag is 0 by definition; its health ages out the same way
    assert.equal(nodeState('primary').lagMs, 0)
    assert.equal(nodeState('primary').healthy, false)
  })

  it('a cached view is rebuilt when a reading ages out, with no new reading or other change', () => {
    const { clock, tracker } = setup()
    tracker.record('replica_1', replicaReading(T0, 42))
    // Built at T0+950: the next probe interval would end at T0+1150, but the reading ages out at T0+1001.
    clock.t = T0 + 950
    const built = tracker.view()
    assert.equal(built.nodes.get('replica_1')?.lagMs, 42)
    clock.t = T0 + 1000
    assert.equal(tracker.view(), built, 'nothing changed yet: the same view object')
    clock.t = T0 + 1001
    const later = tracker.view()
    assert.notEqual(later, built)
    assert.equal(later.nodes.get('replica_1')?.lagMs, null)
    assert.equal(later.nodes.get('replica_1')?.healthy, false)
  })

  it('a fresh reading after a stale one makes the replica eligible again', () => {
    const { clock, tracker, nodeState } = setup()
    tracker.record('replica_1', replicaReading(T0, 42))
    clock.t = T0 + 5000
    assert.equal(nodeState('replica_1').lagMs, null)
    tracker.record('replica_1', replicaReading(clock.t, 7))
    assert.equal(nodeState('replica_1').lagMs, 7)
    assert.equal(nodeState('replica_1').healthy, true)
  })

  it('a failed probe: lag unknown and unhealthy at once; a replica that never reported is the same', () => {
    const { clock, tracker, nodeState } = setup()
    tracker.record('replica_1', replicaReading(T0, 42))
    clock.t = T0 + 10
    tracker.record('replica_1', failedReading(clock.t))
    assert.equal(nodeState('replica_1').lagMs, null)
    assert.equal(nodeState('replica_1').healthy, false)
    assert.equal(nodeState('replica_2').lagMs, null)
    assert.equal(nodeState('replica_2').healthy, false)
    assert.equal(nodeState('replica_2').checkedAt, 0)
  })

  it('a replica reading whose lag is unknown (no heartbeat, no replay timestamp) stays healthy with lag null', () => {
    const { tracker, nodeState } = setup()
    tracker.record('replica_1', replicaReading(T0, null, { lagSource: null }))
    assert.equal(nodeState('replica_1').healthy, true)
    assert.equal(nodeState('replica_1').lagMs, null)
  })

  it('keeps the replay LSN of the last reading as a bigint', () => {
    const { tracker, nodeState } = setup()
    tracker.record('replica_1', replicaReading(T0, 10, { lsn: '0/16B3748' }))
    assert.equal(nodeState('replica_1').replayLsn, 0x16b3748n)
    assert.equal(nodeState('replica_2').replayLsn, null)
  })
})

describe('TopologyTracker: slow start (pools.slow_start_ms)', () => {
  it('a replica back from exclusion ramps its share from 5% to 100% over slow_start_ms; the others stay at 1', () => {
    const { clock, tracker, feedAll, advance, nodeState } = setup(
      configWith({ pools: { slow_start_ms: 10_000 } }),
    )
    feedAll()
    tracker.view()
    advance(10_500) // past any ramp of the first inclusion
    assert.equal(nodeState('replica_1').rampFactor, 1)

    // excluded: a failed probe, seen by a view
    tracker.record('replica_1', failedReading(clock.t))
    assert.equal(nodeState('replica_1').healthy, false)
    // back
    tracker.record('replica_1', replicaReading(clock.t, 10))
    const back = clock.t
    assert.equal(nodeState('replica_1').healthy, true)
    assert.equal(nodeState('replica_1').rampFactor, 0.05, 'the share starts at the 5% floor')
    assert.equal(nodeState('replica_2').rampFactor, 1)

    advance(2500)
    assert.equal(clock.t - back, 2500)
    assert.equal(nodeState('replica_1').rampFactor, 0.25)
    advance(2500)
    assert.equal(nodeState('replica_1').rampFactor, 0.5)
    advance(4999, 4999)
    assert.ok(nodeState('replica_1').rampFactor > 0.99 && nodeState('replica_1').rampFactor < 1)
    advance(1, 1)
    assert.equal(nodeState('replica_1').rampFactor, 1, 'settled at slow_start_ms')
    advance(1000)
    assert.equal(nodeState('replica_1').rampFactor, 1)
    assert.equal(nodeState('replica_2').rampFactor, 1)
  })

  it('a replica whose reading went stale and came back ramps too', () => {
    const { clock, tracker, feedAll, advance, nodeState } = setup(
      configWith({ pools: { slow_start_ms: 4000 } }),
    )
    feedAll()
    advance(4500)
    assert.equal(nodeState('replica_1').rampFactor, 1)
    // replica_1 stops reporting while the others go on: after 1000 ms its reading is stale
    for (let i = 0; i < 6; i++) {
      clock.t += 250
      tracker.record('primary', writableReading(clock.t, 1))
      tracker.record('replica_2', replicaReading(clock.t, 10))
      tracker.view()
    }
    assert.equal(nodeState('replica_1').healthy, false)
    tracker.record('replica_1', replicaReading(clock.t, 10))
    assert.equal(nodeState('replica_1').rampFactor, 0.05)
    advance(2000)
    assert.equal(nodeState('replica_1').rampFactor, 0.5)
  })

  it('a replica whose breaker opened ramps up again once the breaker closes', () => {
    const { tracker, feedAll, advance, nodeState, breakerChanges } = setup(
      configWith({ pools: { slow_start_ms: 4000 } }),
    )
    feedAll()
    advance(4500)
    assert.equal(nodeState('replica_1').rampFactor, 1)
    const breaker = tracker.breaker('replica_1')!
    breaker.failure()
    breaker.failure()
    assert.equal(nodeState('replica_1').breaker, 'open', 'a breaker change invalidates the cached view')
    advance(1000) // cooldown
    assert.equal(nodeState('replica_1').breaker, 'half_open')
    breaker.success()
    assert.equal(nodeState('replica_1').breaker, 'closed')
    assert.equal(nodeState('replica_1').rampFactor, 0.05)
    advance(1000)
    assert.equal(nodeState('replica_1').rampFactor, 0.25)
    assert.deepEqual(breakerChanges, [
      ['replica_1', 'closed', 'open'],
      ['replica_1', 'open', 'half_open'],
      ['replica_1', 'half_open', 'closed'],
    ])
  })

  it('slow_start_ms 0: a replica back from exclusion takes its full share at once', () => {
    const { clock, tracker, feedAll, nodeState } = setup(configWith({ pools: { slow_start_ms: 0 } }))
    feedAll()
    tracker.record('replica_1', failedReading(clock.t))
    assert.equal(nodeState('replica_1').healthy, false)
    tracker.record('replica_1', replicaReading(clock.t, 10))
    assert.equal(nodeState('replica_1').rampFactor, 1)
  })

  it('the primary never ramps', () => {
    const { clock, tracker, feedAll, nodeState } = setup(configWith({ pools: { slow_start_ms: 10_000 } }))
    feedAll()
    assert.equal(nodeState('primary').rampFactor, 1)
    tracker.record('primary', failedReading(clock.t))
    assert.equal(nodeState('primary').healthy, false)
    tracker.record('primary', writableReading(clock.t, 1))
    assert.equal(nodeState('primary').healthy, true)
    assert.equal(nodeState('primary').rampFactor, 1)
  })

  it('a ramping view is refreshed while time passes (the ramp does not freeze in a cached view)', () => {
    // lag.interval_ms 2000: without the ramp the view would be cached up to 2 s
    const config = configWith({
      lag: { interval_ms: 2000 },
      health: { interval_ms: 2000, timeout_ms: 400 },
      pools: { slow_start_ms: 4000 },
    })
    const { clock, tracker, nodeState } = setup(config)
    tracker.record('primary', writableReading(clock.t, 1))
    tracker.record('replica_1', replicaReading(clock.t, 10))
    assert.equal(nodeState('replica_1').rampFactor, 0.05)
    clock.t += 1000
    assert.equal(nodeState('replica_1').rampFactor, 0.25, 'no new reading, yet the ramp moved on')
  })
})

describe('TopologyTracker: primary election', () => {
  it('starts with the configured primary and the replicas in config order', () => {
    const { tracker, feedAll } = setup()
    feedAll()
    const view = tracker.view()
    assert.equal(view.primary, 'primary')
    assert.equal(tracker.primary, 'primary')
    assert.deepEqual(view.replicas, ['replica_1', 'replica_2'])
    assert.equal(view.nodes.get('primary')?.role, 'primary')
    assert.equal(view.nodes.get('replica_1')?.role, 'replica')
  })

  it('the primary down and a replica out of recovery: that replica becomes the primary (onPrimaryChange)', () => {
    const { clock, tracker, feedAll, nodeState, primaryChanges } = setup()
    feedAll()
    clock.t += 100
    tracker.record('primary', failedReading(clock.t))
    assert.equal(tracker.primary, 'primary', 'no other writable node yet: the primary stays')
    tracker.record('replica_1', writableReading(clock.t, 2))
    assert.equal(tracker.primary, 'replica_1')
    assert.deepEqual(primaryChanges, [['primary', 'replica_1']])
    const view = tracker.view()
    assert.equal(view.primary, 'replica_1')
    assert.deepEqual([...view.replicas].sort(), ['primary', 'replica_2'])
    assert.equal(nodeState('replica_1').role, 'primary')
    assert.equal(nodeState('replica_1').lagMs, 0)
    assert.equal(nodeState('primary').role, 'replica')
    assert.equal(nodeState('primary').healthy, false)
    // the old primary comes back as a standby of the new one: an ordinary healthy replica
    tracker.record('primary', replicaReading(clock.t, 20))
    assert.equal(tracker.primary, 'replica_1')
    assert.equal(nodeState('primary').role, 'replica')
    assert.equal(nodeState('primary').healthy, true)
    assert.equal(nodeState('primary').lagMs, 20)
    assert.equal(primaryChanges.length, 1)
  })

  it('two writable nodes: the newer timeline wins and the old primary is no replica (it receives nothing)', () => {
    const { clock, tracker, feedAll, nodeState, primaryChanges } = setup()
    feedAll()
    clock.t += 100
    tracker.record('replica_1', writableReading(clock.t, 2))
    assert.equal(tracker.primary, 'replica_1')
    assert.deepEqual(primaryChanges, [['primary', 'replica_1']])
    assert.equal(nodeState('replica_1').role, 'primary')
    const old = nodeState('primary')
    assert.equal(old.role, 'unknown', 'the writable node on the older timeline is not a replica')
    assert.notEqual(old.role, 'replica')
    // its further readings (still writable, timeline 1) change nothing
    tracker.record('primary', writableReading(clock.t, 1))
    assert.equal(tracker.primary, 'replica_1')
    assert.equal(primaryChanges.length, 1)
  })

  it('a writable node on an older timeline does not take over from the current primary', () => {
    const { clock, tracker, nodeState, primaryChanges } = setup()
    tracker.record('primary', writableReading(clock.t, 3))
    tracker.record('replica_1', writableReading(clock.t, 2))
    tracker.record('replica_2', replicaReading(clock.t, 10))
    assert.equal(tracker.primary, 'primary')
    assert.deepEqual(primaryChanges, [])
    assert.equal(nodeState('replica_1').role, 'unknown')
    assert.equal(nodeState('replica_2').role, 'replica')
  })

  it('two writable nodes on the same timeline: the current primary stays (no flapping)', () => {
    const { clock, tracker, primaryChanges } = setup()
    tracker.record('primary', writableReading(clock.t, 2))
    for (let i = 0; i < 3; i++) {
      clock.t += 100
      tracker.record('replica_1', writableReading(clock.t, 2))
      tracker.record('primary', writableReading(clock.t, 2))
    }
    assert.equal(tracker.primary, 'primary')
    assert.deepEqual(primaryChanges, [])
  })

  it('the current primary not writable: among the writable nodes the highest timeline is chosen', () => {
    const { clock, tracker, primaryChanges } = setup()
    tracker.record('primary', replicaReading(clock.t, 0)) // demoted: in recovery
    tracker.record('replica_1', writableReading(clock.t, 4))
    assert.equal(tracker.primary, 'replica_1')
    tracker.record('replica_2', writableReading(clock.t, 5))
    assert.equal(tracker.primary, 'replica_2')
    assert.deepEqual(primaryChanges, [
      ['primary', 'replica_1'],
      ['replica_1', 'replica_2'],
    ])
    assert.equal(tracker.view().nodes.get('replica_1')?.role, 'unknown')
  })

  it('no writable node at all: the primary stays where it was', () => {
    const { clock, tracker, primaryChanges } = setup()
    tracker.record('primary', failedReading(clock.t))
    tracker.record('replica_1', replicaReading(clock.t, 10))
    tracker.record('replica_2', failedReading(clock.t))
    assert.equal(tracker.primary, 'primary')
    assert.equal(tracker.view().primary, 'primary')
    assert.deepEqual(primaryChanges, [])
  })
})

describe('TopologyTracker: setNodes', () => {
  it('a node removed by setNodes disappears from the view, has(), nodes() and breaker(); its readings are ignored', () => {
    const { clock, tracker, feedAll, healthChanges } = setup()
    feedAll()
    const before = tracker.view()
    assert.ok(before.nodes.has('replica_2'))
    tracker.setNodes(configWith({ cluster: { primary: PRIMARY, replicas: [R1] } }))
    const view = tracker.view()
    assert.notEqual(view, before, 'the cached view is dropped')
    assert.equal(view.nodes.has('replica_2'), false)
    assert.deepEqual(view.replicas, ['replica_1'])
    assert.deepEqual([...view.nodes.keys()].sort(), ['primary', 'replica_1'])
    assert.equal(tracker.has('replica_2'), false)
    assert.equal(tracker.nodeConfig('replica_2'), undefined)
    assert.equal(tracker.breaker('replica_2'), undefined)
    assert.deepEqual(
      tracker
        .nodes()
        .map((n) => n.name)
        .sort(),
      ['primary', 'replica_1'],
    )
    const events = healthChanges.length
    clock.t += 10
    tracker.record('replica_2', failedReading(clock.t))
    assert.equal(tracker.view().nodes.has('replica_2'), false)
    assert.equal(healthChanges.length, events, 'a late reading of a removed node raises no event')
  })

  it('the explicit replica list (discovery) wins over the config replicas', () => {
    const { tracker, feedAll } = setup()
    feedAll()
    const r3: NodeConfig = { name: 'replica_3', url: 'postgres://app@db-r3/main', weight: 50, zone: 'b' }
    tracker.setNodes(configWith(), [R2, r3])
    const view = tracker.view()
    assert.deepEqual(view.replicas, ['replica_2', 'replica_3'])
    assert.equal(view.nodes.has('replica_1'), false)
    const n3 = view.nodes.get('replica_3')
    assert.equal(n3?.healthy, false, 'a new node has no reading yet')
    assert.equal(n3?.lagMs, null)
    assert.equal(n3?.weight, 50)
    assert.equal(n3?.zone, 'b')
  })

  it('a node that stays keeps its reading, breaker and latency; a new URL under its name forgets reading and latency', () => {
    const { tracker, feedAll } = setup()
    feedAll(33)
    tracker.observeLatency('replica_1', 12)
    const breaker = tracker.breaker('replica_1')
    tracker.setNodes(configWith({ cluster: { primary: PRIMARY, replicas: [{ ...R1, weight: 7 }, R2] } }))
    let r1 = tracker.view().nodes.get('replica_1')
    assert.equal(r1?.lagMs, 33)
    assert.equal(r1?.healthy, true)
    assert.equal(r1?.latencyEwmaMs, 12)
    assert.equal(r1?.weight, 7, 'the new config of the node is used')
    assert.equal(tracker.breaker('replica_1'), breaker)

    const moved = { ...R1, url: 'postgres://app@db-r1-new/main' }
    tracker.setNodes(configWith({ cluster: { primary: PRIMARY, replicas: [moved, R2] } }))
    r1 = tracker.view().nodes.get('replica_1')
    assert.equal(r1?.lagMs, null, 'what was measured of the old server says nothing of the new one')
    assert.equal(r1?.healthy, false)
    assert.equal(r1?.latencyEwmaMs, null)
    assert.equal(tracker.nodeConfig('replica_1')?.url, moved.url)
    assert.equal(tracker.view().nodes.get('replica_2')?.lagMs, 33, 'other nodes keep their state')
  })
})

describe('TopologyTracker: health events', () => {
  it('calls onHealthChange when a node turns healthy or unhealthy, once per change', () => {
    const { clock, tracker, healthChanges } = setup()
    tracker.record('replica_1', replicaReading(clock.t, 10))
    tracker.record('replica_1', replicaReading(clock.t + 100, 10))
    assert.deepEqual(healthChanges, [['replica_1', true]])
    tracker.record('replica_1', failedReading(clock.t + 200))
    tracker.record('replica_1', failedReading(clock.t + 300))
    assert.deepEqual(healthChanges, [
      ['replica_1', true],
      ['replica_1', false],
    ])
    tracker.record('replica_1', replicaReading(clock.t + 400, 10))
    assert.deepEqual(healthChanges, [
      ['replica_1', true],
      ['replica_1', false],
      ['replica_1', true],
    ])
  })

  it('a node that was never healthy and fails its first probe raises no event (no change); unknown nodes raise none', () => {
    const { clock, tracker, healthChanges } = setup()
    tracker.record('replica_2', failedReading(clock.t))
    tracker.record('nobody', replicaReading(clock.t, 1))
    assert.deepEqual(healthChanges, [])
    assert.equal(tracker.has('nobody'), false)
  })
})

describe('TopologyTracker: latency EWMA and statistics', () => {
  it('observeLatency: the first sample as is, then an EWMA with alpha 0.2', () => {
    const { tracker } = setup()
    tracker.observeLatency('replica_1', 100)
    tracker.invalidate()
    assert.equal(tracker.view().nodes.get('replica_1')?.latencyEwmaMs, 100)
    tracker.observeLatency('replica_1', 200)
    tracker.invalidate()
    assert.equal(tracker.view().nodes.get('replica_1')?.latencyEwmaMs, 120)
    tracker.observeLatency('replica_1', 20)
    tracker.invalidate()
    assert.equal(tracker.view().nodes.get('replica_1')?.latencyEwmaMs, 100)
    for (let i = 0; i < 60; i++) tracker.observeLatency('replica_1', 5)
    tracker.invalidate()
    const settled = tracker.view().nodes.get('replica_1')?.latencyEwmaMs ?? Number.NaN
    assert.ok(Math.abs(settled - 5) < 0.01, `converges to a steady latency, got ${settled}`)
    assert.equal(tracker.view().nodes.get('replica_2')?.latencyEwmaMs, null, 'null until measured')
    tracker.observeLatency('nobody', 1) // unknown node: ignored
    assert.equal(tracker.has('nobody'), false)
  })

  it('a latency sample shows in the view at the latest one probe interval later', () => {
    const { clock, tracker } = setup()
    const built = tracker.view()
    tracker.observeLatency('replica_1', 50)
    clock.t += 200
    const next = tracker.view()
    assert.notEqual(next, built)
    assert.equal(next.nodes.get('replica_1')?.latencyEwmaMs, 50)
  })

  it('reports the pools active counts (least_connections) once the view is invalidated', () => {
    const { tracker } = setup()
    const active: Record<string, number> = { replica_1: 3 }
    tracker.setActiveCounter((n) => active[n] ?? 0)
    tracker.invalidate()
    assert.equal(tracker.view().nodes.get('replica_1')?.active, 3)
    assert.equal(tracker.view().nodes.get('replica_2')?.active, 0)
    active.replica_1 = 5
    tracker.invalidate()
    assert.equal(tracker.view().nodes.get('replica_1')?.active, 5)
  })
})

describe('TopologyTracker: the cached view', () => {
  it('is the same frozen object while nothing changes, and a new one after a reading or a probe interval', () => {
    const { clock, tracker, feedAll } = setup()
    feedAll()
    const a = tracker.view()
    assert.ok(Object.isFrozen(a))
    assert.ok(Object.isFrozen(a.nodes.get('replica_1')))
    clock.t += 199
    assert.equal(tracker.view(), a)
    tracker.record('replica_1', replicaReading(clock.t, 11))
    const b = tracker.view()
    assert.notEqual(b, a)
    assert.equal(b.nodes.get('replica_1')?.lagMs, 11)
    assert.equal(a.nodes.get('replica_1')?.lagMs, 10, 'an earlier view is not mutated')
    clock.t += 200
    assert.notEqual(tracker.view(), b)
  })
})

describe('TopologyTracker: stale primaries, reading age, removing the elected primary', () => {
  it('docs/routing.md: a reading older than three probe intervals (lag.interval_ms) plus the health timeout is unknown', () => {
    // Defaults: lag.interval_ms 250 (the probe interval, "lag.interval_ms, ±20%"), health.interval_ms 1000,
    // health.timeout_ms 500. Documented limit: 3 × 250 + 500 = 1250 ms. The tracker uses
    // 3 × max(lag.interval_ms, health.interval_ms) + timeout = 3500 ms.
    const config = validateConfig({ cluster: { primary: PRIMARY, replicas: [R1, R2] } })
    assert.equal(config.lag.interval_ms, 250)
    assert.equal(config.health.interval_ms, 1000)
    assert.equal(config.health.timeout_ms, 500)
    const { clock, tracker, nodeState } = setup(config)
    tracker.record('replica_1', replicaReading(T0, 42))
    clock.t = T0 + 1250
    assert.equal(nodeState('replica_1').lagMs, 42)
    clock.t = T0 + 1251
    assert.equal(nodeState('replica_1').lagMs, null, 'a 1251 ms old reading is still used as the lag')
  })

  it('an old primary on an older timeline gets no writes while the newer primary misses a probe', () => {
    // docs/routing.md: "with two writable nodes, the one on the newer timeline wins and the other receives
    // nothing"; #electPrimary: "the other is an old primary that came back after a failover and must
    // receive nothing".
    const { clock, tracker, primaryChanges } = setup()
    tracker.record('primary', writableReading(clock.t, 1))
    tracker.record('replica_2', replicaReading(clock.t, 10))
    clock.t += 100
    tracker.record('replica_1', writableReading(clock.t, 2)) // promoted: timeline 2
    assert.equal(tracker.primary, 'replica_1')
    clock.t += 100
    tracker.record('primary', writableReading(clock.t, 1)) // the old primary is still writable (split brain)
    assert.equal(tracker.primary, 'replica_1')
    // one failed probe of the new primary (a network blip, a probe timeout)
    clock.t += 100
    tracker.record('replica_1', failedReading(clock.t))
    assert.equal(
      tracker.primary,
      'replica_1',
      'writes were sent to the old primary on timeline 1 after one missed probe of the timeline-2 primary',
    )
    assert.deepEqual(primaryChanges, [['primary', 'replica_1']])
  })

  it('setNodes removing the elected primary: the primary falls back to the configured one, announced and not listed as a replica', () => {
    const { clock, tracker, primaryChanges } = setup()
    tracker.record('primary', failedReading(clock.t))
    tracker.record('replica_1', writableReading(clock.t, 2))
    tracker.record('replica_2', replicaReading(clock.t, 10))
    assert.equal(tracker.primary, 'replica_1')
    // discovery (mode replace) lists replicas only: the promoted node is no longer one of them
    tracker.setNodes(configWith(), [R2])
    const view = tracker.view()
    assert.equal(view.nodes.has('replica_1'), false)
    assert.equal(view.primary, 'primary')
    assert.equal(
      view.replicas.includes(view.primary),
      false,
      `view.replicas lists the primary: ${JSON.stringify(view.replicas)}`,
    )
    assert.deepEqual(primaryChanges, [
      ['primary', 'replica_1'],
      ['replica_1', 'primary'],
    ])
  })
})
