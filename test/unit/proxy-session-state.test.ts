// SessionState (pins, freshet settings, cached views) and the startup `options` tier parser.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Classifier } from '../../src/core/classify/classifier.js'
import { freshnessFromOptions } from '../../src/proxy/client-session.js'
import { SessionState } from '../../src/session/session-state.js'

await Classifier.loadParser()
const classifier = Classifier.createSync({})

describe('SessionState', () => {
  it('consumes SET/RESET freshet.freshness and nothing else', () => {
    const s = new SessionState()
    assert.equal(s.consumeSettings(classifier.classify("SET freshet.freshness = 'EVENTUAL'")), 'SET')
    assert.equal(s.view().sessionTier, 'eventual')
    assert.equal(s.consumeSettings(classifier.classify('RESET freshet.freshness')), 'RESET')
    assert.equal(s.view().sessionTier, undefined)
    assert.equal(s.consumeSettings(classifier.classify('SET statement_timeout = 0')), null)
    assert.equal(s.consumeSettings(classifier.classify('SELECT 1')), null)
  })

  it('caches views until something changes', () => {
    const s = new SessionState()
    const v = s.view()
    assert.equal(s.view(), v)
    s.setPinned('primary', true)
    assert.notEqual(s.view(), v)
    assert.deepEqual(
      { ...s.view() },
      { pinnedNode: 'primary', pinReason: 'transaction', inTransaction: true },
    )
    const c = s.context()
    assert.equal(s.context(), c)
    s.recordWrite('0/16B3748', 5)
    assert.deepEqual({ ...s.context() }, { minLsn: '0/16B3748', lastWriteAt: 5 })
  })

  it('pins for session state, but not for SET inside a transaction, and unpins on DISCARD ALL', () => {
    const s = new SessionState()
    s.applyPins(classifier.classify('CREATE TEMP TABLE t (x int)'), false)
    assert.equal(s.sessionPin, 'temp_table')
    s.applyPins(classifier.classify('DISCARD ALL'), false)
    assert.equal(s.sessionPin, null)
    s.applyPins(classifier.classify('SET statement_timeout = 5'), true)
    assert.equal(s.sessionPin, null)
    s.applyPins(classifier.classify('SET statement_timeout = 5'), false)
    assert.equal(s.sessionPin, 'session_set')
  })
})

describe('freshnessFromOptions', () => {
  for (const [options, tier] of [
    ['-c freshet.freshness=eventual', 'eventual'],
    ['-cfreshet.freshness=NEAR_RT', 'near_rt'],
    ['--freshet.freshness=strict -c search_path=x', 'strict'],
    ['-c search_path=x', undefined],
    [undefined, undefined],
  ] as const) {
    it(`${options ?? '(none)'} -> ${tier ?? 'none'}`, () => assert.equal(freshnessFromOptions(options), tier))
  }
})
