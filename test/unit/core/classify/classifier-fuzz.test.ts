// Fuzzing the classifier (seeded, bounded): any input yields a classification; what the parser refuses
// is kind 'unknown' (routed to the primary), never an exception.

import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import type { Classification } from '../../../../src/core/classify/classification.js'
import { Classifier } from '../../../../src/core/classify/classifier.js'
import { seededRandom } from '../../../chaos/seeded-random.js'

const ITERATIONS = 800
const KINDS = new Set(['read', 'write', 'transaction', 'session', 'unknown'])
const SEEDS = [
  'SELECT * FROM users WHERE id = $1',
  'WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x',
  'BEGIN READ ONLY; SELECT 1; COMMIT',
  "SELECT nextval('s'), '/*+ ROUTE_TO: replica */' FROM t FOR UPDATE",
  'COPY t FROM STDIN',
  'DO $$ BEGIN PERFORM pg_sleep(0); END $$',
  "SET freshet.freshness = 'eventual'",
  'EXPLAIN ANALYZE UPDATE t SET a = 1',
  'DECLARE c CURSOR WITH HOLD FOR SELECT 1',
  'CREATE TEMP TABLE tt AS SELECT 1',
  'SELECT pg_advisory_lock(1); LISTEN ch',
  "/* FRESHNESS: EVENTUAL */ SELECT E'\\'' || $q$ x $q$",
]

type Rand = () => number

function mutate(rand: Rand, sql: string): string {
  let s = sql
  for (let k = 1 + Math.floor(rand() * 5); k > 0; k--) {
    const at = Math.floor(rand() * (s.length + 1))
    const r = rand()
    if (r < 0.3) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rand() * 6))
    else if (r < 0.6) {
      const junk = [
        "'",
        '"',
        '$$',
        '(',
        ')',
        ';',
        '/*',
        '*/',
        '--',
        '\\',
        'SELECT',
        'INTO',
        'FOR UPDATE',
        '\u0000',
        '\uDFFF',
      ]
      s = s.slice(0, at) + junk[Math.floor(rand() * junk.length)]! + s.slice(at)
    } else if (r < 0.8) s = s.slice(0, at) + s.slice(at, at + 12) + s.slice(at)
    else s = s.slice(0, at)
  }
  return s
}

function randomText(rand: Rand): string {
  const n = Math.floor(rand() * 80)
  let s = ''
  for (let i = 0; i < n; i++)
    s += String.fromCharCode(rand() < 0.9 ? 32 + Math.floor(rand() * 95) : Math.floor(rand() * 0x3000))
  return s
}

function check(c: Classification, sql: string): void {
  assert.ok(KINDS.has(c.kind), `kind ${c.kind} for ${JSON.stringify(sql)}`)
  assert.equal(typeof c.requiresPrimary, 'boolean')
  // Anything not a plain read must go to the primary.
  if (c.kind === 'unknown' || c.kind === 'write') assert.equal(c.requiresPrimary, true, JSON.stringify(sql))
}

describe('classifier fuzz', () => {
  let classifier: Classifier
  before(async () => {
    classifier = await Classifier.create({ cacheSize: 64 })
  })

  it('never throws on mutated valid SQL', () => {
    const rand = seededRandom(0x5eed)
    for (let i = 0; i < ITERATIONS; i++) {
      const sql = mutate(rand, SEEDS[i % SEEDS.length]!)
      let c: Classification
      try {
        c = classifier.classify(sql)
      } catch (err) {
        assert.fail(`classify threw for ${JSON.stringify(sql)}: ${(err as Error).stack}`)
      }
      check(c, sql)
    }
  })

  it('never throws on random text; what does not parse is unknown', () => {
    const rand = seededRandom(0xabc)
    let unknown = 0
    for (let i = 0; i < ITERATIONS; i++) {
      const sql = randomText(rand)
      const c = classifier.classify(sql)
      check(c, sql)
      if (c.kind === 'unknown') unknown++
    }
    assert.ok(unknown > ITERATIONS / 2, `only ${unknown} of ${ITERATIONS} random strings were unknown`)
  })

  it('survives pathological shapes: deep nesting, huge lists, empty and whitespace-only input', () => {
    const cases = [
      '',
      '   \n\t ',
      ';;;',
      '/* only a comment */',
      `SELECT ${'('.repeat(3000)}1${')'.repeat(3000)}`,
      `SELECT ${Array.from({ length: 20_000 }, (_, i) => i).join(', ')}`,
      `SELECT 1 ${'UNION ALL SELECT 1 '.repeat(2000)}`,
      `SELECT '${'x'.repeat(500_000)}'`,
      'SELECT \u0000',
    ]
    for (const sql of cases) {
      let c: Classification
      try {
        c = classifier.classify(sql)
      } catch (err) {
        assert.fail(`classify threw for ${JSON.stringify(sql.slice(0, 60))}...: ${(err as Error).message}`)
      }
      check(c, sql)
    }
  })
})
