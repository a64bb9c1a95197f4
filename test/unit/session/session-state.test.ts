// SessionState (pins, transactions, freshet settings, cached views) and the startup tier parsers.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Classifier } from '../../../src/core/classify/classifier.js'
import { freshnessFromOptions, freshnessFromStartup } from '../../../src/proxy/client-startup.js'
import { localOutsideTransaction, SessionState, type TxStatus } from '../../../src/session/session-state.js'

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
    s.setPinned('primary')
    assert.equal(s.ready('T'), 'I')
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

  /** Runs `sql` statements one job each, outside or inside transactions, as the proxy reports them. */
  function run(s: SessionState, ...jobs: (string | [string, 'failed'])[]): void {
    for (const job of jobs) {
      const [sql, failed] = typeof job === 'string' ? [job, false] : [job[0], true]
      const c = classifier.classify(sql)
      const before = status
      const action = c.transaction?.action
      if (action === 'begin') status = 'T'
      else if (action === 'commit' || action === 'rollback') status = 'I'
      else if (failed && status === 'T') status = 'E'
      s.applyPins([c], { before, after: status, failed })
    }
  }
  let status: TxStatus = 'I'

  it('pins for session state outside a transaction and unpins on DISCARD ALL', () => {
    status = 'I'
    const s = new SessionState()
    run(s, 'CREATE TEMP TABLE t (x int)')
    assert.equal(s.sessionPin, 'temp_table')
    run(s, 'DISCARD ALL')
    assert.equal(s.sessionPin, null)
    run(s, 'SET statement_timeout = 5')
    assert.equal(s.sessionPin, 'session_set')
  })

  it('keeps each pin reason on its own: a release drops only its own', () => {
    status = 'I'
    const s = new SessionState()
    run(s, 'CREATE TEMP TABLE t ()', 'SET search_path = x', 'RESET ALL')
    assert.deepEqual(s.sessionPins, ['temp_table'])
    run(s, 'LISTEN c', 'DISCARD TEMP')
    assert.deepEqual(s.sessionPins, ['listen'])
    run(s, 'SELECT pg_advisory_lock(1)', 'UNLISTEN *')
    assert.deepEqual(s.sessionPins, ['advisory_lock'])
    run(s, 'DECLARE cur CURSOR WITH HOLD FOR SELECT 1', 'PREPARE p AS SELECT 1')
    assert.equal(s.sessionPin, 'advisory_lock', 'the oldest reason is the one shown')
    run(s, 'SELECT pg_advisory_unlock_all()', 'CLOSE ALL')
    assert.deepEqual(s.sessionPins, ['prepared_statement'])
    run(s, 'DEALLOCATE ALL')
    assert.equal(s.sessionPin, null)
    run(s, 'LISTEN c', 'SET a.b = 1', 'CREATE TEMP TABLE u ()', 'DISCARD ALL')
    assert.equal(s.sessionPin, null)
  })

  it('a failed release keeps the pin; a failed pin still pins', () => {
    status = 'I'
    const s = new SessionState()
    run(s, 'LISTEN c', ['UNLISTEN *', 'failed'])
    assert.deepEqual(s.sessionPins, ['listen'])
    run(s, ['CREATE TEMP TABLE t ()', 'failed'])
    assert.deepEqual(s.sessionPins, ['listen', 'temp_table'])
  })

  it('inside a transaction: pins at COMMIT, not at ROLLBACK, except what PostgreSQL keeps', () => {
    status = 'I'
    const s = new SessionState()
    run(s, 'BEGIN', 'SET statement_timeout = 5')
    assert.equal(s.sessionPin, null, 'not before COMMIT')
    run(s, 'COMMIT')
    assert.deepEqual(s.sessionPins, ['session_set'])

    const r = new SessionState()
    run(
      r,
      'BEGIN',
      'SET work_mem = 1',
      'LISTEN c',
      'CREATE TEMP TABLE t ()',
      'DECLARE k CURSOR WITH HOLD FOR SELECT 1',
    )
    run(r, 'ROLLBACK')
    assert.equal(r.sessionPin, null)
    // a session advisory lock and an SQL PREPARE outlive the ROLLBACK
    run(r, 'BEGIN', 'SELECT pg_advisory_lock(1)', 'PREPARE p AS SELECT 1', 'ROLLBACK')
    assert.deepEqual(r.sessionPins, ['advisory_lock', 'prepared_statement'])
    // a release inside a transaction: at COMMIT (and in order with the pins around it)
    const d = new SessionState()
    run(d, 'CREATE TEMP TABLE t ()', 'BEGIN', 'DISCARD TEMP', 'ROLLBACK')
    assert.deepEqual(d.sessionPins, ['temp_table'])
    run(d, 'BEGIN', 'DISCARD TEMP', 'CREATE TEMP TABLE u ()', 'COMMIT')
    assert.deepEqual(d.sessionPins, ['temp_table'])
    run(d, 'BEGIN', 'CREATE TEMP TABLE v ()', 'DISCARD TEMP', 'COMMIT')
    assert.deepEqual(d.sessionPins, [])
  })

  it('a failed transaction ends in ROLLBACK, even by COMMIT', () => {
    status = 'I'
    const s = new SessionState()
    run(s, 'BEGIN', 'SET work_mem = 1', ['SELECT 1/0', 'failed'], 'COMMIT')
    assert.equal(s.sessionPin, null)
    // ROLLBACK TO SAVEPOINT may undo a release: it is forgotten, the pins stay
    const t = new SessionState()
    run(t, 'LISTEN c', 'BEGIN', 'SAVEPOINT a', 'UNLISTEN *', 'ROLLBACK TO a', 'COMMIT')
    assert.deepEqual(t.sessionPins, ['listen'])
  })

  it('takes the statements of a job in order: one string or one batch of several', () => {
    const s = new SessionState()
    const c = (sql: string) => classifier.classify(sql)
    s.applyPins([c('BEGIN'), c('SET work_mem = 1'), c('COMMIT')], { before: 'I', after: 'I', failed: false })
    assert.deepEqual(s.sessionPins, ['session_set'])
    s.applyPins([c('LISTEN c'), c('RESET ALL')], { before: 'I', after: 'I', failed: false })
    assert.deepEqual(s.sessionPins, ['listen'])
    s.applyPins([c('BEGIN'), c('CREATE TEMP TABLE t ()'), c('ROLLBACK')], {
      before: 'I',
      after: 'I',
      failed: false,
    })
    assert.deepEqual(s.sessionPins, ['listen'])
    // a multi-statement classification taken whole: its pin counts, its release (order unknown) does not
    s.applyPins([c('UNLISTEN *; CREATE TEMP TABLE t ()')], { before: 'I', after: 'I', failed: false })
    assert.deepEqual(s.sessionPins, ['listen', 'temp_table'])
  })

  it('SET LOCAL freshet.freshness lasts for its transaction; outside one it does nothing', () => {
    const s = new SessionState()
    const local = classifier.classify("SET LOCAL freshet.freshness = 'eventual'")
    assert.equal(s.consumeSettings(local), 'SET')
    assert.equal(localOutsideTransaction(local, s.inTransaction), true)
    assert.equal(s.view().sessionTier, undefined)
    s.setPinned('primary')
    s.ready('T')
    assert.equal(s.consumeSettings(local), 'SET')
    assert.equal(localOutsideTransaction(local, s.inTransaction), false)
    assert.equal(s.view().sessionTier, 'eventual')
    s.ready('I')
    s.applyPins([classifier.classify('COMMIT')], { before: 'T', after: 'I', failed: false })
    s.setPinned(null)
    assert.equal(s.view().sessionTier, undefined)
    // a plain SET in a transaction: kept by COMMIT, undone by ROLLBACK; it also ends a SET LOCAL
    const set = classifier.classify("SET freshet.freshness = 'near_rt'")
    s.ready('T')
    s.consumeSettings(set)
    s.consumeSettings(local)
    assert.equal(s.sessionTier, 'eventual')
    s.ready('I')
    s.applyPins([classifier.classify('ROLLBACK')], { before: 'T', after: 'I', failed: false })
    assert.equal(s.sessionTier, undefined)
    s.ready('T')
    s.consumeSettings(local)
    s.consumeSettings(set)
    assert.equal(s.sessionTier, 'near_rt')
    s.ready('I')
    s.applyPins([classifier.classify('COMMIT')], { before: 'T', after: 'I', failed: false })
    assert.equal(s.sessionTier, 'near_rt')
  })

  it('SET freshet.shard_key: kept as written, RESET forgets it, ROLLBACK undoes it, SET LOCAL lasts its transaction', () => {
    const s = new SessionState()
    assert.equal(s.shardKey, undefined)
    assert.equal(s.consumeSettings(classifier.classify("SET freshet.shard_key = 'EU-42'")), 'SET')
    assert.equal(s.shardKey, 'EU-42')
    assert.equal(s.consumeSettings(classifier.classify('SET freshet.shard_key TO 7')), 'SET')
    assert.equal(s.shardKey, '7')
    assert.equal(s.consumeSettings(classifier.classify('RESET freshet.shard_key')), 'RESET')
    assert.equal(s.shardKey, undefined)
    s.consumeSettings(classifier.classify('SET freshet.shard_key = 1'))
    s.setPinned('primary')
    s.ready('T')
    s.consumeSettings(classifier.classify('SET freshet.shard_key = 2'))
    assert.equal(s.shardKey, '2')
    s.applyPins([classifier.classify('ROLLBACK')], { before: 'T', after: 'I', failed: false })
    assert.equal(s.shardKey, '1')
    s.consumeSettings(classifier.classify('SET LOCAL freshet.shard_key = 3'))
    assert.equal(s.shardKey, '3')
    s.applyPins([classifier.classify('COMMIT')], { before: 'T', after: 'I', failed: false })
    assert.equal(s.shardKey, '1')
    // freshet.freshness is untouched by the shard key
    assert.equal(s.sessionTier, undefined)
  })

  it('RESET freshet.freshness returns to the startup tier', () => {
    const s = new SessionState()
    s.startupTier = 'EVENTUAL'
    assert.equal(s.view().sessionTier, 'eventual')
    s.consumeSettings(classifier.classify("SET freshet.freshness = 'strict'"))
    assert.equal(s.view().sessionTier, 'strict')
    assert.equal(s.consumeSettings(classifier.classify('RESET freshet.freshness')), 'RESET')
    assert.equal(s.view().sessionTier, 'eventual')
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

describe('freshnessFromStartup', () => {
  it('takes a freshet.freshness startup parameter, before options', () => {
    assert.equal(freshnessFromStartup({ user: 'app', 'freshet.freshness': 'EVENTUAL' }), 'eventual')
    assert.equal(freshnessFromStartup({ user: 'app', 'Freshet.Freshness': 'strict' }), 'strict')
    assert.equal(
      freshnessFromStartup({
        user: 'app',
        options: '-c freshet.freshness=strict',
        'freshet.freshness': 'near_rt',
      }),
      'near_rt',
    )
    assert.equal(freshnessFromStartup({ user: 'app', options: '-c freshet.freshness=strict' }), 'strict')
    assert.equal(freshnessFromStartup({ user: 'app', 'freshet.freshness': '' }), undefined)
    assert.equal(freshnessFromStartup({ user: 'app' }), undefined)
  })
})
