// Classifier caches, rules engines and construction errors.
import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import { Classifier } from '../../../../src/core/classify/classifier.js'
import { fingerprint, normalizeSql } from '../../../../src/core/classify/normalize-sql.js'

before(async () => {
  await Classifier.loadParser()
})

describe('Classifier cache', () => {
  test('the same text twice returns the same frozen object', () => {
    const c = new Classifier()
    const a = c.classify('SELECT * FROM t WHERE id = 1')
    assert.equal(c.classify('SELECT * FROM t WHERE id = 1'), a)
    assert.ok(Object.isFrozen(a))
  })

  test('literal variants share the parse but keep their own hints', () => {
    const c = new Classifier()
    const first = c.classify("/* FRESHNESS: strict */ SELECT * FROM t WHERE id = 1 AND s = 'a'")
    const second = c.classify("SELECT  *  FROM t WHERE id = 42 AND s = 'b' /* FRESHNESS: eventual */")
    const third = c.classify("SELECT * FROM t WHERE id = 7 AND s = E'c'")
    assert.deepEqual(first.hints, { freshness: 'strict' })
    assert.deepEqual(second.hints, { freshness: 'eventual' })
    assert.deepEqual(third.hints, {})
    assert.equal(first.fingerprint, second.fingerprint)
    assert.equal(second.fingerprint, third.fingerprint)
    assert.deepEqual(second.tables, ['t'])
    assert.equal(c.cacheStats.normalized, 1)
    assert.ok(Object.isFrozen(second))
  })

  test('SET values are never shared through the normalised cache', () => {
    const c = new Classifier()
    assert.equal(c.classify("SET freshet.freshness = 'eventual'").settings?.[0]?.value, 'eventual')
    assert.equal(c.classify("SET freshet.freshness = 'strict'").settings?.[0]?.value, 'strict')
    assert.equal(c.classify('SET statement_timeout = 5').settings?.[0]?.value, '5')
    assert.equal(c.classify('SET statement_timeout = 6').settings?.[0]?.value, '6')
  })

  test('an unterminated literal does not borrow a terminated variant', () => {
    const c = new Classifier()
    assert.equal(c.classify("SELECT 'a'").kind, 'read')
    assert.equal(c.classify("SELECT 'a").kind, 'unknown')
  })

  test('texts with varying literals stop filling the exact cache after 32, and stay correct', () => {
    const c = new Classifier()
    for (let i = 0; i < 100; i++) {
      const r = c.classify(
        `SELECT abalance FROM pgbench_accounts WHERE aid = ${i}${i % 10 === 0 ? ' /* FRESHNESS: eventual */' : ''}`,
      )
      assert.equal(r.kind, 'read')
      assert.deepEqual(r.hints, i % 10 === 0 ? { freshness: 'eventual' } : {})
    }
    // 32 texts in all (the first parse and 31 through the shared entry) entered the exact cache
    assert.equal(c.cacheStats.exact, 32)
    assert.equal(c.cacheStats.normalized, 1)
    // a text that repeats still hits the exact cache: the same object back
    const a = c.classify('SELECT 1 FROM other')
    assert.equal(c.classify('SELECT 1 FROM other'), a)
  })

  test('bounded LRU: the least recently used entry goes first', () => {
    const c = new Classifier({ cacheSize: 2 })
    const a = c.classify('SELECT 1 FROM a')
    c.classify('SELECT 1 FROM b')
    assert.equal(c.classify('SELECT 1 FROM a'), a) // a becomes most recent
    c.classify('SELECT 1 FROM c') // evicts b
    assert.equal(c.cacheStats.exact, 2)
    assert.equal(c.classify('SELECT 1 FROM a'), a)
  })
})

describe('normalizeSql / fingerprint', () => {
  const cases: [string, string][] = [
    ["SELECT * FROM t WHERE a = 1 AND b = 'x'", 'SELECT * FROM t WHERE a = ? AND b = ?'],
    ['SELECT  *\n FROM t -- c\n WHERE a=1.5e-3', 'SELECT * FROM t WHERE a=?'],
    ['SELECT $1, $2 FROM t2', 'SELECT $1, $2 FROM t2'],
    ["SELECT E'\\'x', $$a$$, $q$b$q$", 'SELECT ?, ?, ?'],
    ['SELECT "col1" FROM "t 2"', 'SELECT "col1" FROM "t 2"'],
    ['/* a */ SELECT 1 /* b */', 'SELECT ?'],
  ]
  for (const [sql, expected] of cases) test(sql, () => assert.equal(normalizeSql(sql), expected))
  test('fingerprint is 16 hex digits and stable', () => {
    assert.match(fingerprint('SELECT ?'), /^[0-9a-f]{16}$/)
    assert.equal(fingerprint('SELECT ?'), fingerprint(normalizeSql('SELECT 99')))
    assert.notEqual(fingerprint('SELECT ? FROM a'), fingerprint('SELECT ? FROM b'))
  })
})

describe('Classifier engines and rules', () => {
  const rules = [
    { pattern: '^\\s*SELECT .* FROM reports', action: 'tier:eventual', priority: 5 },
    { pattern: 'FROM audit_log', action: 'route_primary', priority: 10 },
    { pattern: '^SELECT .* FROM dashboards', action: 'route_replica', priority: 1 },
  ]

  test('hybrid: the highest-priority matching rule decides, the parser does the rest', () => {
    const c = new Classifier({ engine: 'hybrid', rules })
    const r = c.classify('select * from reports r where exists (select 1 from audit_log)')
    assert.deepEqual([r.kind, r.reason, r.requiresPrimary], ['write', 'rule', true])
    assert.deepEqual(r.rule, { action: 'route_primary', pattern: 'FROM audit_log' })
    const t = c.classify('SELECT *, x\n  FROM reports WHERE x = 1')
    assert.deepEqual([t.kind, t.rule?.action], ['read', 'tier:eventual'])
    const d = c.classify('/* FRESHNESS: strict */ SELECT * FROM dashboards')
    assert.equal(d.kind, 'read')
    assert.equal(d.rule?.action, 'route_replica')
    assert.deepEqual(d.hints, { freshness: 'strict' })
    const p = c.classify('SELECT * FROM t FOR UPDATE')
    assert.equal(p.reason, 'locking_read')
    assert.equal(p.rule, undefined)
    // a rule that would allow a replica still goes through the parser's write check
    for (const sql of ['SELECT * FROM reports FOR UPDATE', "SELECT nextval('s') FROM reports"]) {
      const w = c.classify(sql)
      assert.equal(w.requiresPrimary, true, sql)
      assert.equal(w.kind, 'write', sql)
      assert.equal(w.rule?.action, 'tier:eventual', `${sql}: the rule is kept, the write check wins`)
    }
    assert.deepEqual(c.classify('SELECT * FROM dashboards FOR SHARE').requiresPrimary, true)
  })

  test('ast engine ignores rules', () => {
    const c = new Classifier({ rules })
    assert.equal(c.classify('SELECT * FROM audit_log').kind, 'read')
  })

  test('regex: unmatched is unknown (primary) except transaction/session control, which is parsed', () => {
    const c = new Classifier({ engine: 'regex', rules })
    const u = c.classify('SELECT * FROM t')
    assert.deepEqual([u.kind, u.reason, u.requiresPrimary], ['unknown', 'no_rule_match', true])
    assert.deepEqual(c.classify('BEGIN READ ONLY').transaction, { action: 'begin', readOnly: true })
    assert.equal(c.classify('/* x */ SET x = 1').pin, 'session_set')
    assert.equal(c.classify('COMMIT').kind, 'transaction')
    assert.equal(c.classify('SELECT * FROM reports').rule?.action, 'tier:eventual')
  })

  test('bad rules throw naming the rule index', () => {
    assert.throws(
      () =>
        new Classifier({
          rules: [rules[0]!, { pattern: '(unclosed', action: 'route_replica', priority: 1 }],
        }),
      /classifier\.rules\[1\]\.pattern/,
    )
    assert.throws(
      () => new Classifier({ rules: [{ pattern: 'x', action: 'send_somewhere', priority: 1 }] }),
      /classifier\.rules\[0\]\.action/,
    )
    assert.throws(
      () => new Classifier({ rules: [{ pattern: 'x', action: 'tier:', priority: 1 }] }),
      /rules\[0\]/,
    )
  })
})
