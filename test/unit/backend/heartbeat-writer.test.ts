// The heartbeat writer's retry delay after failed beats (a primary that refuses the table, or is down).

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { retryDelayMs } from '../../../src/backend/heartbeat-writer.js'

describe('heartbeat retry delay', () => {
  it('is the interval while beats succeed, then doubles per failure up to 30 s', () => {
    assert.equal(retryDelayMs(250, 0), 250)
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 8].map((n) => retryDelayMs(250, n)),
      [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000],
    )
    assert.equal(retryDelayMs(250, 1000), 30_000, 'no overflow after many failures')
  })

  it('never waits less than the interval, even when the interval is over 30 s', () => {
    assert.equal(retryDelayMs(60_000, 3), 60_000)
  })
})
