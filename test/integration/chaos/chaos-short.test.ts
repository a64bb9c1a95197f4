// The short chaos run in `npm test`: every fault once and a failover under concurrent reads and writes, both faces,
// default probe settings, 50 ms of measurement slack on every tier (NEAR_RT, EVENTUAL and a custom 200 ms tier).

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { formatReport } from '../../chaos/checker.js'
import { runChaos } from '../../chaos/run-chaos.js'

describe('chaos (short)', () => {
  it('keeps every tier within its bound, loses no acknowledged write and never writes to a standby', async () => {
    const report = await runChaos({ short: true, seed: 7 })
    const text = formatReport(report)
    console.log(text)
    assert.deepEqual(report.violations, [], text)
    assert.deepEqual(report.lostWrites, [], text)
    assert.equal(report.lostRywWrites, 0, text)
    assert.deepEqual(report.writesOnStandby, [], text)
    // The run must have exercised something: reads of every tier on both faces, some served by replicas.
    for (const face of ['library', 'proxy']) {
      for (const tier of ['strict', 'near_rt', 'eventual', 'fast', 'ryw']) {
        const t = report.tiers[`${face}/${tier}`]
        assert.ok(t && t.reads - t.errors > 20, `${face}/${tier} checked too few reads\n${text}`)
      }
      // one replica is faulted at a time and the other fresh: replicas must still serve most reads
      // (the bound must not cost the replicas their share)
      for (const tier of ['near_rt', 'eventual', 'fast']) {
        const t = report.tiers[`${face}/${tier}`]!
        assert.ok(
          t.replica >= 0.5 * (t.reads - t.errors),
          `${face}/${tier}: replicas served under half\n${text}`,
        )
      }
    }
    // replay pauses alone never make a read fail (the failover may: the primary is killed)
    const afterPause = report.readErrorWindows.filter((w) => w.near.startsWith('pause replay'))
    assert.deepEqual(afterPause, [], text)
    assert.ok(report.writesAcked > 100, text)
  })
})
