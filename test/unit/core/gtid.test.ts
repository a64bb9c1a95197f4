import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { gtidCovers, laterGtid, parseGtid } from '../../../src/core/gtid.js'
import { isReadToken, laterToken } from '../../../src/core/read-token.js'

const U1 = '3e11fa47-71ca-11e1-9e33-c80aa9429562'
const U2 = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee'

describe('parseGtid', () => {
  for (const ok of ['0-1-42', '0-1-42,1-2-7', ' 0-1-1 ', '', `${U1}:1-5`, `${U1}:1-5:7,${U2}:3`]) {
    it(`parses ${JSON.stringify(ok)}`, () => assert.notEqual(parseGtid(ok), null))
  }
  for (const bad of ['0/16B3748', '0-1', 'a-b-c', `${U1}`, `${U1}:5-1`, `${U1}:x`, 'nope', '0-1-2,x']) {
    it(`refuses ${JSON.stringify(bad)}`, () => assert.equal(parseGtid(bad), null))
  }
})

describe('gtidCovers', () => {
  const cases: [string, string, boolean][] = [
    ['0-1-50', '0-1-42', true],
    ['0-1-42', '0-1-42', true],
    ['0-1-41', '0-1-42', false],
    ['0-2-50', '0-1-42', true], // server id changes after a failover; the domain's sequence counts
    ['0-1-50', '0-1-42,1-3-7', false], // domain 1 never seen
    ['0-1-50,1-3-9', '0-1-42,1-3-7', true],
    ['', '0-1-1', false],
    ['0-1-5', '', true],
    [`${U1}:1-10`, `${U1}:3-7`, true],
    [`${U1}:1-5:7-10`, `${U1}:6`, false],
    [`${U1}:1-5:6-10`, `${U1}:3-8`, true],
    [`${U1}:1-10`, `${U1}:3,${U2}:1`, false],
    ['0-1-5', `${U1}:1`, false], // flavors never cover each other
  ]
  for (const [position, token, want] of cases) {
    it(`${JSON.stringify(position)} covers ${JSON.stringify(token)}: ${want}`, () =>
      assert.equal(gtidCovers(parseGtid(position)!, parseGtid(token)!), want))
  }
})

describe('laterGtid and laterToken', () => {
  it('keeps the covering position, merges domains otherwise', () => {
    assert.equal(laterGtid('0-1-5', '0-1-9'), '0-1-9')
    assert.equal(laterGtid('0-1-9', '0-1-5'), '0-1-9')
    assert.equal(laterGtid('0-1-9', '1-2-3'), '0-1-9,1-2-3')
    assert.equal(laterGtid(undefined, '0-1-1'), '0-1-1')
  })
  it('compares LSNs as LSNs and GTIDs as GTIDs; an invalid token loses', () => {
    assert.equal(laterToken('0/10', '0/20'), '0/20')
    assert.equal(laterToken('0-1-3', '0-1-2'), '0-1-3')
    assert.equal(laterToken('junk', '0-1-2'), '0-1-2')
    assert.equal(laterToken('0/10', 'junk'), '0/10')
    assert.ok(isReadToken('0/16B3748') && isReadToken('0-1-42') && isReadToken(`${U1}:1-3`))
    assert.ok(!isReadToken('') && !isReadToken('x'))
  })
})
