import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { compareLsn, formatLsn, hasReplayed, maxLsn, parseLsn } from '../../../src/core/lsn.js'

describe('parseLsn', () => {
  const valid: [string, bigint][] = [
    ['0/0', 0n],
    ['0/16B3748', 0x16b3748n],
    ['0/16b3748', 0x16b3748n],
    ['16/B374D848', (0x16n << 32n) | 0xb374d848n],
    ['FFFFFFFF/FFFFFFFF', 0xffffffffffffffffn],
    [' 1/0 ', 1n << 32n],
  ]
  for (const [text, value] of valid) {
    it(`parses ${JSON.stringify(text)}`, () => assert.equal(parseLsn(text), value))
  }
  for (const bad of [
    '',
    '0',
    '/',
    '0/',
    '/0',
    '0/G',
    '123456789/0',
    '0/123456789',
    '0x1/0',
    '-1/0',
    '1/2/3',
  ]) {
    it(`refuses ${JSON.stringify(bad)} with null`, () => assert.equal(parseLsn(bad), null))
  }
})

describe('formatLsn', () => {
  it('prints upper-case unpadded halves like pg_lsn', () => {
    assert.equal(formatLsn(0x16b3748n), '0/16B3748')
    assert.equal(formatLsn((0x16n << 32n) | 0xb374d848n), '16/B374D848')
    assert.equal(formatLsn(0n), '0/0')
  })
  it('round-trips', () => {
    for (const text of ['0/1', 'A/0', 'ABCDEF01/23456789']) assert.equal(formatLsn(parseLsn(text)!), text)
  })
  it('refuses values outside 64 bits', () => {
    assert.throws(() => formatLsn(-1n), RangeError)
    assert.throws(() => formatLsn(1n << 64n), RangeError)
  })
})

describe('comparisons', () => {
  it('compareLsn orders across the high half', () => {
    const a = parseLsn('0/FFFFFFFF')!
    const b = parseLsn('1/0')!
    assert.equal(compareLsn(a, b), -1)
    assert.equal(compareLsn(b, a), 1)
    assert.equal(compareLsn(a, a), 0)
  })
  it('hasReplayed needs a known position at or past the token', () => {
    assert.equal(hasReplayed(null, 0n), false)
    assert.equal(hasReplayed(10n, 10n), true)
    assert.equal(hasReplayed(9n, 10n), false)
  })
  it('maxLsn treats null as nothing yet', () => {
    assert.equal(maxLsn(null, 3n), 3n)
    assert.equal(maxLsn(4n, null), 4n)
    assert.equal(maxLsn(4n, 5n), 5n)
    assert.equal(maxLsn(null, null), null)
  })
})
