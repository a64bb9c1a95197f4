// The hint lexer: hints come from comments only, never from literals or identifiers.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { NO_HINTS } from '../../../../src/core/hints/hints.js'
import { lexHints, stripComments } from '../../../../src/core/hints/lex-hints.js'

const CASES: [string, Record<string, string>][] = [
  ['SELECT 1', {}],
  ['/* FRESHNESS: STRICT */ SELECT 1', { freshness: 'strict' }],
  ['/* freshness: Near_RT */ SELECT 1', { freshness: 'near_rt' }],
  ['/*FRESHNESS:eventual*/SELECT 1', { freshness: 'eventual' }],
  ['/* FRESHNESS : gold_tier */ SELECT 1', { freshness: 'gold_tier' }],
  ['/*+ ROUTE_TO: replica_2 */ SELECT 1', { routeTo: 'replica_2' }],
  ['/*+ ROUTE_TO: PRIMARY */ SELECT 1', { routeTo: 'primary' }],
  ['SELECT 1 /* MIN_LSN: 0/16B3748 */', { minLsn: '0/16B3748' }],
  ['SELECT 1 /* MIN_LSN: not-an-lsn */', {}],
  ['SELECT 1 -- SHARD_KEY: Acme-42', { shardKey: 'Acme-42' }],
  ['-- FRESHNESS: eventual\nSELECT 1', { freshness: 'eventual' }],
  ['/* FRESHNESS: eventual ROUTE_TO: replica */ SELECT 1', { freshness: 'eventual', routeTo: 'replica' }],
  ['/* FRESHNESS: eventual, MIN_LSN: 1/0 */ SELECT 1', { freshness: 'eventual', minLsn: '1/0' }],
  ['/* FRESHNESS: strict */ /* FRESHNESS: eventual */ SELECT 1', { freshness: 'strict' }],
  ['/* a /* FRESHNESS: strict */ b */ SELECT 1', { freshness: 'strict' }],
  ['/* a /* b */ FRESHNESS: near_rt */ SELECT 1', { freshness: 'near_rt' }],
  ["SELECT '/* FRESHNESS: eventual */'", {}],
  ["SELECT '-- ROUTE_TO: replica'", {}],
  ["SELECT 'it''s /* FRESHNESS: eventual */'", {}],
  ["SELECT E'\\' /* FRESHNESS: eventual */'", {}],
  ["SELECT E'\\\\' /* FRESHNESS: eventual */", { freshness: 'eventual' }],
  ["SELECT '\\' /* FRESHNESS: eventual */", { freshness: 'eventual' }],
  ['SELECT $$ /* FRESHNESS: eventual */ $$', {}],
  ['SELECT $fn$ -- ROUTE_TO: replica\n $fn$', {}],
  ['SELECT $fn$ $$ /* FRESHNESS: strict */ $$ $fn$ /* FRESHNESS: eventual */', { freshness: 'eventual' }],
  ['SELECT $1 /* FRESHNESS: eventual */', { freshness: 'eventual' }],
  ['SELECT a$b /* FRESHNESS: eventual */ FROM t', { freshness: 'eventual' }],
  ['SELECT 1 AS "/* FRESHNESS: eventual */"', {}],
  ['SELECT 1 AS "a""-- ROUTE_TO: replica"', {}],
  [
    "SELECT 1 /*freshness='near_rt',route_to='primary',traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/",
    {
      freshness: 'near_rt',
      routeTo: 'primary',
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    },
  ],
  ["SELECT 1 /*action='%2Fparam*d',controller='index',FRESHNESS='EVENTUAL'*/", { freshness: 'eventual' }],
  ["SELECT 1 /*route_to='replica%5F1'*/", { routeTo: 'replica_1' }],
  ["SELECT 1 /*shard_key='a\\'b'*/", { shardKey: "a'b" }],
  ['SELECT 1 /* unrelated: words, nothing: here */', {}],
  ['SELECT 1 - -1', {}],
  ['SELECT 1 /* unterminated FRESHNESS: eventual', { freshness: 'eventual' }],
]

describe('lexHints', () => {
  for (const [sql, expected] of CASES) {
    test(sql, () => {
      const hints = lexHints(sql)
      assert.deepEqual({ ...hints }, expected)
      assert.ok(Object.isFrozen(hints))
    })
  }
  test('no comment at all returns the shared NO_HINTS', () => {
    assert.equal(lexHints('SELECT * FROM t WHERE a = 1'), NO_HINTS)
    assert.equal(lexHints("SELECT '/* x */'"), NO_HINTS)
  })
})

describe('stripComments', () => {
  test('removes comments, keeps literals', () => {
    assert.equal(stripComments("/* a */SELECT '/* b */' -- c"), " SELECT '/* b */'  ")
    assert.equal(stripComments('SELECT 1'), 'SELECT 1')
    assert.equal(stripComments('SELECT /* x /* y */ z */ 1'), 'SELECT   1')
  })
})
