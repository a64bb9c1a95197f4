import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SessionState } from '../../../src/session/session-state.js'
import { TokenStore } from '../../../src/session/token-store.js'

describe('TokenStore', () => {
  it('is empty before a write', () => {
    const t = new TokenStore()
    assert.equal(t.token, undefined)
    assert.equal(t.lastWriteAt, undefined)
    assert.equal(t.minToken(), undefined)
    assert.equal(t.minToken('0/10'), '0/10')
  })

  it('keeps the later token, never moving back, and the time of every write', () => {
    const t = new TokenStore()
    t.record('0/20', 1)
    t.record('0/10', 2) // an older commit finishing after a newer one
    assert.equal(t.token, '0/20')
    assert.equal(t.lastWriteAt, 2)
    t.record(null, 3) // causal consistency off: a write without a token
    assert.equal(t.token, '0/20')
    assert.equal(t.lastWriteAt, 3)
    t.record('1/0', 4)
    assert.equal(t.token, '1/0')
  })

  it('answers the later of its token and one given from outside', () => {
    const t = new TokenStore()
    t.record('0/20', 1)
    for (const [given, expected] of [
      ['0/10', '0/20'],
      ['0/30', '0/30'],
      ['junk', '0/20'],
    ] as const) {
      assert.equal(t.minToken(given), expected, given)
    }
  })

  it('orders GTID positions too (the MySQL face)', () => {
    const t = new TokenStore()
    t.record('0-1-5', 1)
    t.record('0-1-3', 2)
    assert.equal(t.token, '0-1-5')
  })

  it('is the store behind the proxy session state', () => {
    const s = new SessionState()
    s.recordWrite('0/20', 5)
    s.recordWrite('0/10', 6)
    assert.deepEqual({ ...s.context() }, { minLsn: '0/20', lastWriteAt: 6 })
  })
})
