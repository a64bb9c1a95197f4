// The staleness bound on a fake clock: primary position samples and replica replay positions in, the
// proven-fresh moment and the bound at dispatch out; the tracker feeds it from monitor readings.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { NodeReading } from '../../../../src/backend/node-monitor.js'
import { TopologyTracker } from '../../../../src/backend/topology-tracker.js'
import { validateConfig } from '../../../../src/core/config/parse-config.js'
import { formatLsn } from '../../../../src/core/lsn.js'
import { FreshnessProof, stalenessBoundMs } from '../../../../src/core/topology/staleness-bound.js'

describe('FreshnessProof', () => {
  it('proves a replica fresh as of the send time of the newest primary sample it has replayed', () => {
    const p = new FreshnessProof()
    p.primarySample(1000, 100n)
    p.primarySample(1250, 200n)
    p.primarySample(1500, 300n)
    p.replicaReading('r', 250n)
    assert.equal(p.freshAsOf('r'), 1250)
    assert.equal(stalenessBoundMs(p.freshAsOf('r'), 1600), 350)
    p.replicaReading('r', 300n)
    assert.equal(p.freshAsOf('r'), 1500)
  })

  it('knows nothing of a replica behind every sample, or of one never read', () => {
    const p = new FreshnessProof()
    p.primarySample(1000, 100n)
    p.replicaReading('r', 99n)
    assert.equal(p.freshAsOf('r'), null)
    assert.equal(p.freshAsOf('other'), null)
    assert.equal(stalenessBoundMs(null, 5000), null)
  })

  it('a later primary sample proves more for a replica that already reached its position (idle primary)', () => {
    const p = new FreshnessProof()
    p.primarySample(1000, 100n)
    p.replicaReading('r', 100n)
    // the replica's probe hangs from here on; the primary, idle, keeps answering 100
    p.primarySample(1250, 100n)
    p.primarySample(1500, 100n)
    assert.equal(p.freshAsOf('r'), 1500)
  })

  it('the bound of a paused replica grows with time: every new write leaves it further behind', () => {
    const p = new FreshnessProof()
    p.primarySample(1000, 100n)
    p.replicaReading('r', 100n)
    for (let t = 1250, lsn = 200n; t <= 3000; t += 250, lsn += 100n) {
      p.primarySample(t, lsn)
      p.replicaReading('r', 100n) // replay paused: the same position every probe
    }
    assert.equal(p.freshAsOf('r'), 1000)
    assert.equal(stalenessBoundMs(p.freshAsOf('r'), 3100), 2100)
  })

  it('a replica that went backwards (another server) starts over', () => {
    const p = new FreshnessProof()
    p.primarySample(1000, 100n)
    p.primarySample(2000, 200n)
    p.replicaReading('r', 200n)
    assert.equal(p.freshAsOf('r'), 2000)
    p.replicaReading('r', 150n)
    assert.equal(p.freshAsOf('r'), 1000)
    p.forget('r')
    assert.equal(p.freshAsOf('r'), null)
  })

  it('a primary change drops the samples but keeps what replicas were proven to hold', () => {
    const p = new FreshnessProof()
    p.primarySample(1000, 100n)
    p.replicaReading('r', 100n)
    p.primaryChanged()
    assert.equal(p.freshAsOf('r'), 1000)
    p.replicaReading('s', 100n)
    assert.equal(p.freshAsOf('s'), null, 'no sample of the new primary yet')
    p.primarySample(1500, 90n)
    assert.equal(p.freshAsOf('s'), 1500)
  })

  it('a sample going backwards without a reported primary change resets the history', () => {
    const p = new FreshnessProof()
    p.primarySample(1000, 500n)
    p.primarySample(1100, 100n)
    assert.equal(p.provenAt(400n), 1100)
    assert.equal(p.provenAt(99n), null)
  })

  it('never reports a negative bound', () => {
    assert.equal(stalenessBoundMs(2000, 1990), 0)
  })
})

// ---- through the tracker, as the engine feeds it ----------------------------------------------

const config = validateConfig({
  cluster: {
    primary: { name: 'primary', url: 'postgres://app@p/main' },
    replicas: [{ name: 'replica_1', url: 'postgres://app@r1/main' }],
  },
  lag: { interval_ms: 250 },
  health: { interval_ms: 1000, timeout_ms: 500 },
  pools: { slow_start_ms: 0 },
})

function reading(sentAt: number, at: number, inRecovery: boolean, lsn: bigint): NodeReading {
  return {
    ok: true,
    at,
    sentAt,
    inRecovery,
    lsn: formatLsn(lsn),
    lagMs: inRecovery ? 1 : 0,
    lagSource: inRecovery ? 'heartbeat' : 'primary',
    replayPaused: inRecovery ? false : null,
    timeline: inRecovery ? null : 1,
    error: null,
    rttMs: at - sentAt,
  }
}

describe('TopologyTracker: staleness bounds from readings', () => {
  it('counts a reading from when its probe was sent, and a hanging probe makes the replica ineligible at once', () => {
    let clock = 10_000
    const tracker = new TopologyTracker(config, { now: () => clock })
    // the primary sample is sent at 10 000 and answers 2 ms later; the replica probe right after
    tracker.record('primary', reading(10_000, 10_002, false, 0x5000n))
    tracker.record('replica_1', reading(10_002, 10_004, true, 0x5000n))
    const r = () => tracker.view().nodes.get('replica_1')!
    assert.equal(r().freshAsOf, 10_000, 'the send time of the primary sample it reached')
    clock = 10_300
    assert.equal(stalenessBoundMs(r().freshAsOf, clock), 300)
    // writes continue; the replica's next probe hangs: nothing new is proven while the bound keeps growing
    tracker.record('primary', reading(10_250, 10_251, false, 0x6000n))
    clock = 10_501
    assert.equal(stalenessBoundMs(r().freshAsOf, clock), 501, 'over NEAR_RT 500 ms long before any timeout')
    assert.equal(r().healthy, true, 'health is a separate question (the reading is within its age limit)')
  })

  it('a replica behind the newest sample is proven as of the older sample it did reach', () => {
    const tracker = new TopologyTracker(config, { now: () => 20_000 })
    tracker.record('primary', reading(19_000, 19_001, false, 0x1000n))
    tracker.record('primary', reading(19_250, 19_251, false, 0x2000n))
    tracker.record('replica_1', reading(19_260, 19_262, true, 0x1800n))
    assert.equal(tracker.view().nodes.get('replica_1')!.freshAsOf, 19_000)
  })
})
