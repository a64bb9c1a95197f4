// The short chaos run in `npm test`: every fault once and a failover under concurrent reads and writes, both faces.

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
      for (const tier of ['strict', 'near_rt', 'eventual', 'ryw']) {
        const t = report.tiers[`${face}/${tier}`]
        assert.ok(t && t.reads - t.errors > 20, `${face}/${tier} checked too few reads\n${text}`)
      }
      assert.ok(
        report.tiers[`${face}/near_rt`]!.replica > 0,
        `${face}: no near_rt read on a replica\n${text}`,
      )
    }
    assert.ok(report.writesAcked > 100, text)
  })
})
