// The return-or-close rule both faces ask when a session lets its connection go, and the transaction
// status the session machine owns (fed from ReadyForQuery).

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Classifier } from '../../../src/core/classify/classifier.js'
import { reusesConnection, SessionState, type TxStatus } from '../../../src/session/session-state.js'

await Classifier.loadParser()
const classifier = Classifier.createSync({})

describe('reusesConnection', () => {
  const clean = { txStatus: 'I' as TxStatus, sessionPin: null, touched: false, unknownState: false }
  const rows = [
    ['a clean connection', clean, true],
    ['a transaction still open', { ...clean, txStatus: 'T' as TxStatus }, false],
    ['a failed transaction still open', { ...clean, txStatus: 'E' as TxStatus }, false],
    ['session state held', { ...clean, sessionPin: 'listen' as const }, false],
    ['session state made or released on it', { ...clean, touched: true }, false],
    ['a state the face cannot vouch for', { ...clean, unknownState: true }, false],
  ] as const
  for (const [name, facts, reuse] of rows) {
    it(name, () => assert.equal(reusesConnection(facts), reuse))
  }
})

describe('SessionState.releaseConnection', () => {
  /** Runs statements as one job each, outside a transaction, and lets the connection go. */
  function release(...sql: string[]): boolean {
    const s = new SessionState()
    s.setPinned('primary')
    for (const text of sql)
      s.applyPins([classifier.classify(text)], { before: 'I', after: 'I', failed: false })
    return s.releaseConnection()
  }

  it('reuses a connection that only ran reads and writes', () => {
    assert.equal(release('SELECT 1', 'INSERT INTO t VALUES (1)'), true)
  })

  it('closes one on which session state was made, even after its release', () => {
    assert.equal(release('LISTEN c', 'UNLISTEN *'), false)
    assert.equal(release('SET search_path = x', 'RESET ALL'), false)
    assert.equal(release('DEALLOCATE ALL'), false)
  })

  it('forgets the connection: the next one starts clean and the session is held nowhere', () => {
    const s = new SessionState()
    s.setPinned('primary')
    s.applyPins([classifier.classify('LISTEN c')], { before: 'I', after: 'I', failed: false })
    s.applyPins([classifier.classify('UNLISTEN *')], { before: 'I', after: 'I', failed: false })
    assert.equal(s.releaseConnection(), false)
    assert.equal(s.view().pinnedNode, null)
    s.setPinned('primary')
    assert.equal(s.releaseConnection(), true)
  })

  it('closes a connection released mid-transaction or in an unknown state', () => {
    const s = new SessionState()
    s.setPinned('primary')
    s.ready('T')
    assert.equal(s.releaseConnection(), false)
    s.ready('I')
    assert.equal(s.releaseConnection({ unknownState: true }), false)
  })
})

describe('SessionState.ready', () => {
  it('owns the transaction status: returns the one before, and the view follows it', () => {
    const s = new SessionState()
    assert.equal(s.txStatus, 'I')
    s.setPinned('primary')
    const idle = s.view()
    assert.equal(s.ready('T'), 'I')
    assert.equal(s.inTransaction, true)
    assert.notEqual(s.view(), idle)
    assert.equal(s.view().pinReason, 'transaction')
    assert.equal(s.ready('E'), 'T')
    assert.equal(s.ready('I'), 'E')
    assert.equal(s.inTransaction, false)
    const again = s.view()
    assert.equal(s.ready('I'), 'I')
    assert.equal(s.view(), again, 'no change, same cached view')
  })
})
