// The chaos checker's verdict on hand-made logs: it must flag each kind of finding, and only those.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ChaosLog, type ReadRecord, verdict } from '../../chaos/checker.js'

const BOUNDS = { maxLagMs: { strict: 0, near_rt: 500, eventual: 2000, fast: 200 }, slackMs: 50 }

function read(patch: Partial<ReadRecord>): ReadRecord {
  return {
    face: 'library',
    tier: 'near_rt',
    startedAt: 0,
    endedAt: 0,
    value: 0,
    node: 'replica_1',
    replica: true,
    reason: 'replica',
    boundMs: 0,
    error: null,
    ...patch,
  }
}

/** Writes 1..5 acknowledged at 1000, 2000, ... 5000 ms. */
function baseLog(): ChaosLog {
  const log = new ChaosLog()
  log.roles.push({ at: 0, primary: 'primary', promoting: null })
  for (let v = 1; v <= 5; v++) log.writes.push({ value: v, lsn: '0/0', node: 'primary', ackAt: v * 1000 })
  return log
}

const ledger = new Set([1, 2, 3, 4, 5])

describe('chaos checker verdict', () => {
  it('accepts fresh reads and reads within bound plus slack', () => {
    const log = baseLog()
    log.reads.push(read({ tier: 'strict', value: 3, startedAt: 3999, node: 'primary', replica: false }))
    log.reads.push(read({ tier: 'near_rt', value: 2, startedAt: 3000 + 550 })) // 550 ms old <= 500 + 50
    log.reads.push(read({ tier: 'eventual', value: 1, startedAt: 2000 + 2050 }))
    log.reads.push(read({ tier: 'fast', value: 3, startedAt: 4000 + 250 }))
    const r = verdict(log, BOUNDS, ledger, new Set())
    assert.deepEqual(r.violations, [])
    assert.equal(r.tiers['library/near_rt']!.maxStalenessMs, 550)
  })

  it('flags a STRICT read older than a write acknowledged before it started', () => {
    const log = baseLog()
    log.reads.push(read({ tier: 'strict', value: 3, startedAt: 4001 }))
    assert.equal(verdict(log, BOUNDS, ledger, new Set()).tiers['library/strict']!.violations, 1)
  })

  it('flags NEAR_RT and a custom tier beyond max_lag plus slack, and least_lagged beyond the bound it reported', () => {
    const log = baseLog()
    log.reads.push(read({ tier: 'near_rt', value: 2, startedAt: 3000 + 551 }))
    log.reads.push(read({ tier: 'fast', value: 2, startedAt: 3000 + 251 }))
    log.reads.push(
      read({
        tier: 'eventual',
        value: 1,
        startedAt: 2000 + 2500,
        reason: 'fallback_least_lagged',
        boundMs: 2400,
      }),
    )
    log.reads.push(
      read({
        tier: 'eventual',
        value: 1,
        startedAt: 2000 + 2500,
        reason: 'fallback_least_lagged',
        boundMs: 2460,
      }),
    )
    const r = verdict(log, BOUNDS, ledger, new Set())
    assert.equal(r.tiers['library/near_rt']!.violations, 1)
    assert.equal(r.tiers['library/fast']!.violations, 1)
    assert.equal(r.tiers['library/eventual']!.violations, 1)
    assert.equal(r.tiers['library/eventual']!.fallbacks, 2)
  })

  it('flags a read-your-writes miss, lost writes and a write decided for a standby', () => {
    const log = baseLog()
    log.reads.push(read({ tier: 'ryw', value: 6, expected: 7 }))
    log.rywWrites.push({ session: 's', n: 7 })
    log.writeDecisions.push({ face: 'library', at: 10, target: 'replica_1' })
    log.writeDecisions.push({ face: 'library', at: 10, target: 'primary' })
    const r = verdict(log, BOUNDS, new Set([1, 2, 3, 5]), new Set())
    assert.equal(r.tiers['library/ryw']!.violations, 1)
    assert.deepEqual(r.lostWrites, [4])
    assert.equal(r.lostRywWrites, 1)
    assert.equal(r.writesOnStandby.length, 1)
  })

  it('allows a write decided for the node being promoted, and for the dead old primary', () => {
    const log = baseLog()
    log.roles.push({ at: 100, primary: 'primary', promoting: 'replica_1' })
    log.roles.push({ at: 200, primary: 'replica_1', promoting: null })
    log.writeDecisions.push({ face: 'proxy', at: 150, target: 'replica_1' })
    log.writeDecisions.push({ face: 'proxy', at: 250, target: 'primary' })
    log.writeDecisions.push({ face: 'proxy', at: 250, target: 'replica_2' })
    assert.equal(verdict(log, BOUNDS, ledger, new Set()).writesOnStandby.length, 1)
  })
})
