// BucketHistogram: the same exposition text as prom-client's Histogram for the same observations, and a reset.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Histogram, Registry } from 'prom-client'
import { BucketHistogram } from '../../../src/telemetry/bucket-histogram.js'

const BUCKETS = [0.000001, 0.00001, 0.0001, 0.001, 0.01]

describe('BucketHistogram', () => {
  it('exposes what prom-client Histogram exposes for the same values', async () => {
    const ours = new Registry()
    const theirs = new Registry()
    const a = new BucketHistogram({
      name: 'x_seconds',
      help: 'help text',
      buckets: BUCKETS,
      registers: [ours],
    })
    const b = new Histogram({ name: 'x_seconds', help: 'help text', buckets: BUCKETS, registers: [theirs] })
    // on a bound, between bounds, below the first, above the last
    for (const v of [0.000001, 0.0000005, 0.00005, 0.00005, 0.001, 0.5, 0]) {
      a.observe(v)
      b.observe(v)
    }
    assert.equal(await ours.metrics(), await theirs.metrics())
    assert.match(await ours.metrics(), /^x_seconds_count 7$/m)
    assert.match(await ours.metrics(), /^x_seconds_bucket\{le="\+Inf"\} 7$/m)
    assert.match(await ours.metrics(), /^x_seconds_bucket\{le="0.000001"\} 3$/m)
  })

  it('ignores non-finite values and resets with the registry', async () => {
    const registry = new Registry()
    const h = new BucketHistogram({ name: 'y_seconds', help: 'h', buckets: [1], registers: [registry] })
    h.observe(Number.NaN)
    h.observe(2)
    assert.match(await registry.metrics(), /^y_seconds_count 1$/m)
    registry.resetMetrics()
    assert.match(await registry.metrics(), /^y_seconds_count 0$/m)
    assert.match(await registry.metrics(), /^y_seconds_sum 0$/m)
  })
})
