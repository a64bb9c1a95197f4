// Fuzzing the hint lexer (seeded, bounded): random and mutated SQL never throws, and a hint inside any
// kind of literal or quoted identifier never counts.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { lexHints, stripComments } from '../../../../src/core/hints/lex-hints.js'
import { seededRandom } from '../../../chaos/seeded-random.js'

const ITERATIONS = 2000
const HINTS = [
  '/*+ ROUTE_TO: replica */',
  '/* ROUTE_TO: primary */',
  '/* FRESHNESS: EVENTUAL */',
  "/*freshness='near_rt',route_to='replica'*/",
  '-- MIN_LSN: 0/16B3748',
  '/* SHARD_KEY: 9 */',
]
const WORDS = [
  'SELECT',
  'FROM',
  't',
  'WHERE',
  'x',
  '=',
  '1',
  ',',
  '(',
  ')',
  ';',
  'E',
  'U&',
  '$1',
  '::text',
  '*',
  '/',
  '-',
]

type Rand = () => number
const pick = <T>(rand: Rand, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!

/** A literal or quoted identifier that contains `inner` and is well-formed SQL. */
function literal(rand: Rand, inner: string): string {
  switch (Math.floor(rand() * 6)) {
    case 0:
      return `'${inner.replaceAll("'", "''")}'`
    case 1:
      // E'' string: a backslash escapes the next character, including a quote
      return `E'\\' ${inner.replaceAll('\\', '\\\\').replaceAll("'", "\\'")} \\\\'`
    case 2: {
      const tag = pick(rand, ['', 'x', 'body', 'q_1'])
      return `$${tag}$ ${inner.replaceAll(`$${tag}$`, '')} $${tag}$`
    }
    case 3:
      return `"${inner.replaceAll('"', '""')}"`
    case 4:
      return `U&'${inner.replaceAll("'", "''")}'`
    default:
      // a dollar quote that contains something that looks like another dollar quote's end
      return `$a$ $b$ ${inner.replaceAll('$a$', '')} $b$ $a$`
  }
}

/** A statement whose only hints live inside literals; `comments` adds hint-free comments. */
function hintsOnlyInLiterals(rand: Rand): string {
  const parts: string[] = []
  const n = 3 + Math.floor(rand() * 12)
  for (let i = 0; i < n; i++) {
    const r = rand()
    if (r < 0.35) parts.push(literal(rand, `${pick(rand, HINTS)} ${pick(rand, WORDS)}`))
    else if (r < 0.45)
      parts.push(pick(rand, ['/* plain comment */', '/* nested /* inner */ still */', '-- note\n']))
    else parts.push(pick(rand, WORDS))
  }
  return parts.join(pick(rand, [' ', '\n', '\t ']))
}

function mutate(rand: Rand, sql: string): string {
  let s = sql
  const k = 1 + Math.floor(rand() * 4)
  for (let i = 0; i < k; i++) {
    const at = Math.floor(rand() * (s.length + 1))
    switch (Math.floor(rand() * 4)) {
      case 0:
        s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rand() * 5))
        break
      case 1:
        s =
          s.slice(0, at) +
          pick(rand, ["'", '"', '$', '$$', '/*', '*/', '--', '\\', '\n', "E'", '$x$', '\u0000', '\uD800']) +
          s.slice(at)
        break
      case 2:
        s = s.slice(0, at) + s.slice(at, at + 8) + s.slice(at)
        break
      default:
        s = s.slice(0, at)
    }
  }
  return s
}

describe('hint lexer fuzz', () => {
  it('ignores hints inside string, E, U&, dollar-quoted literals and quoted identifiers', () => {
    const rand = seededRandom(0xf00d)
    for (let i = 0; i < ITERATIONS; i++) {
      const sql = hintsOnlyInLiterals(rand)
      assert.deepEqual({ ...lexHints(sql) }, {}, `hint read from a literal in: ${sql}`)
    }
  })

  it('reads the comment hint and not the conflicting ones in literals around it', () => {
    const rand = seededRandom(0xbeef)
    for (let i = 0; i < ITERATIONS; i++) {
      const sql = `${hintsOnlyInLiterals(rand)} /* FRESHNESS: STRICT */ ${hintsOnlyInLiterals(rand)}`
      const hints = lexHints(sql)
      assert.equal(hints.freshness, 'strict', sql)
      assert.equal(hints.routeTo, undefined, sql)
      assert.equal(hints.minLsn, undefined, sql)
    }
  })

  it('never throws on mutated or random input', () => {
    const rand = seededRandom(0xc0ffee)
    const alphabet = '\'"$/*-\\\nE&U :;()abc0/+='
    for (let i = 0; i < ITERATIONS; i++) {
      const sql =
        i % 3 === 0
          ? Array.from(
              { length: Math.floor(rand() * 60) },
              () => alphabet[Math.floor(rand() * alphabet.length)],
            ).join('')
          : mutate(rand, `${hintsOnlyInLiterals(rand)} ${pick(rand, HINTS)} ${hintsOnlyInLiterals(rand)}`)
      const hints = lexHints(sql)
      assert.ok(Object.isFrozen(hints), sql)
      const stripped = stripComments(sql)
      assert.equal(typeof stripped, 'string')
      // stripping never adds hints: what remains has no comment left to read one from
      assert.deepEqual(
        { ...lexHints(stripped) },
        {},
        `hint survived stripComments in: ${JSON.stringify(sql)}`,
      )
    }
  })

  it('handles very long and deeply nested comments without throwing', () => {
    const deep = `${'/*'.repeat(20_000)} FRESHNESS: eventual ${'*/'.repeat(20_000)} SELECT 1`
    assert.equal(lexHints(deep).freshness, 'eventual')
    const unterminated = `SELECT 1 ${'/*'.repeat(20_000)}`
    assert.doesNotThrow(() => lexHints(unterminated))
    const long = `SELECT '${'x'.repeat(1_000_000)}' /* ROUTE_TO: primary */`
    assert.equal(lexHints(long).routeTo, 'primary')
  })
})
