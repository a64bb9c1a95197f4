// Per-shard read-your-writes tokens: the header form and its parser (bad input is routine).

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isReadToken, laterToken } from '../../../../src/core/read-token.js'
import {
  formatShardTokens,
  mergeShardTokens,
  parseShardTokens,
  shardToken,
} from '../../../../src/core/shard/shard-tokens.js'

describe('shard tokens', () => {
  it('round-trips shard -> LSN pairs in order', () => {
    const tokens = new Map([
      ['shard_0', '0/16B3748'],
      ['shard_1', '1A/2A01F00'],
    ])
    const text = formatShardTokens(tokens)
    assert.equal(text, 'shard_0:0/16B3748+shard_1:1A/2A01F00')
    assert.deepEqual(parseShardTokens(text), tokens)
  })

  const cases: [string | null | undefined, [string, string][] | null][] = [
    ['0/16B3748', null], // the unsharded form
    ['', null],
    [null, null],
    [undefined, null],
    ['garbage', null],
    ['shard_0:nope', null],
    [
      ' shard_0 : 0/1 , bad pair, :0/2, shard_1:0/3',
      [
        ['shard_0', '0/1'],
        ['shard_1', '0/3'],
      ],
    ],
    ['shard_0:0/1,shard_0:0/2', [['shard_0', '0/2']]],
    [
      'shard_0:0/1+shard_1:0/2',
      [
        ['shard_0', '0/1'],
        ['shard_1', '0/2'],
      ],
    ],
    ['sh ard:0/1', null],
  ]
  for (const [input, want] of cases) {
    it(`parses ${JSON.stringify(input)}`, () => {
      const got = parseShardTokens(input)
      assert.deepEqual(got === null ? null : [...got], want)
    })
  }
})

describe('shard tokens: merge and pick', () => {
  it('keeps the later LSN of each shard and every shard of either side', () => {
    assert.equal(
      mergeShardTokens('shard_0:0/5+shard_1:0/9', 'shard_1:0/1+shard_2:0/3'),
      'shard_0:0/5+shard_1:0/9+shard_2:0/3',
    )
    assert.equal(mergeShardTokens(undefined, 'shard_1:0/1'), 'shard_1:0/1')
    assert.equal(mergeShardTokens('0/5', 'shard_1:0/1'), 'shard_1:0/1')
    assert.equal(shardToken('shard_0:0/5+shard_1:0/9', 'shard_1'), '0/9')
    assert.equal(shardToken('0/9', 'shard_1'), undefined)
  })
  it('laterToken and isReadToken understand the per-shard form', () => {
    assert.equal(isReadToken('shard_0:0/5+shard_1:0/9'), true)
    assert.equal(laterToken('shard_0:0/5', 'shard_0:0/7+shard_1:0/1'), 'shard_0:0/7+shard_1:0/1')
    assert.equal(laterToken('shard_0:0/5', '0/7'), 'shard_0:0/5')
  })
})
