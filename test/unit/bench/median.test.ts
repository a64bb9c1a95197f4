// The benchmarks' median: a failed round (pgbench printed no TPS, so NaN) must not decide a cell.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { median } from '../../../bench/bench-util.js'

describe('bench median', () => {
  it('takes the middle value, or the mean of the two middle ones', () => {
    assert.equal(median([3, 1, 2]), 2)
    assert.equal(median([4, 1, 3, 2]), 2.5)
  })
  it('leaves out rounds that gave no figure', () => {
    assert.equal(median([Number.NaN, 10, 30]), 20)
    assert.equal(median([5, Number.NaN]), 5)
  })
  it('is NaN only when no round gave a figure', () => {
    assert.ok(Number.isNaN(median([Number.NaN, Number.NaN])))
    assert.ok(Number.isNaN(median([])))
  })
})
