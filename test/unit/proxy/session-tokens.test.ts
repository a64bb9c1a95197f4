// When a proxy session reads its read-your-writes tokens, and what waits for them (session-tokens.ts).
// The reader itself (one connection per primary, one read for many writes) is tested against a real
// primary in test/integration/proxy-wire/token-reader.test.ts.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Decision } from '../../../src/core/route/decision.js'
import { SessionTokens, tokenMatters } from '../../../src/proxy/session-tokens.js'
import type { PositionCallback, WalPositions } from '../../../src/proxy/wal-positions.js'
import { SessionState } from '../../../src/session/session-state.js'

/** Records what is asked of the shared reader; the test answers. */
class FakePositions {
  readonly asked: { node: string; done: PositionCallback }[] = []
  after(node: string, done: PositionCallback): void {
    this.asked.push({ node, done })
  }
  answer(lsn: string | null): void {
    const { node, done } = this.asked.shift()!
    done(node, lsn)
  }
}

const decision = (role: Decision['role'], reason: Decision['reason']) => ({ role, reason }) as Decision

/** What the session does before deciding a read: true when it waits. */
function holds(tokens: SessionTokens, matters: () => boolean): boolean {
  if ((!tokens.reading && !tokens.owed) || !matters()) return false
  if (tokens.owed) tokens.readOwed()
  return true
}

function setup() {
  const positions = new FakePositions()
  const state = new SessionState()
  const known: [string, string | null][] = []
  const tokens = new SessionTokens(positions as unknown as WalPositions, state, (node, lsn) =>
    known.push([node, lsn]),
  )
  return { positions, state, known, tokens }
}

describe('tokenMatters', () => {
  it('is true where the token can change the destination', () => {
    assert.equal(tokenMatters(decision('replica', 'replica')), true)
    assert.equal(tokenMatters(decision('primary', 'read_your_writes')), true)
    assert.equal(tokenMatters(decision('primary', 'fallback_primary')), true)
    assert.equal(tokenMatters(decision(null, 'fallback_error')), true)
    assert.equal(tokenMatters(decision('replica', 'fallback_least_lagged')), true)
  })
  it('is false for reads sent to the primary before any replica is looked at', () => {
    for (const reason of [
      'unannotated_primary',
      'strict_tier',
      'volatile_function',
      'sticky_after_write',
    ] as const)
      assert.equal(tokenMatters(decision('primary', reason)), false, reason)
    assert.equal(tokenMatters(decision(null, 'unannotated_error')), false)
  })
})

describe('SessionTokens', () => {
  it('reads nothing for writes until a read needs the token, then one read for all of them', () => {
    const { positions, state, tokens, known } = setup()
    tokens.wrote('primary')
    tokens.wrote('primary')
    assert.equal(positions.asked.length, 0)
    assert.equal(
      holds(tokens, () => false),
      false,
      'a read the token cannot change does not wait',
    )
    assert.equal(positions.asked.length, 0)
    assert.equal(
      holds(tokens, () => true),
      true,
    )
    assert.deepEqual(
      positions.asked.map((a) => a.node),
      ['primary'],
    )
    assert.equal(
      holds(tokens, () => true),
      true,
      'still being read',
    )
    positions.answer('0/3000060')
    assert.equal(tokens.reading, false)
    assert.equal(state.context().minLsn, '0/3000060')
    assert.deepEqual(known, [['primary', '0/3000060']])
    assert.equal(
      holds(tokens, () => true),
      false,
      'nothing owed any more',
    )
  })

  it('reads at once after a read that went where the token matters', () => {
    const { positions, tokens } = setup()
    tokens.decided(decision('replica', 'replica'))
    tokens.wrote('primary')
    assert.equal(positions.asked.length, 1)
    assert.equal(
      holds(tokens, () => true),
      true,
    )
    assert.equal(
      holds(tokens, () => false),
      false,
      'a read the token cannot change goes while it is read',
    )
    positions.answer('0/10')
    tokens.decided(decision('primary', 'unannotated_primary'))
    tokens.wrote('primary')
    assert.equal(positions.asked.length, 0, 'reads went to the primary: lazy again')
  })

  it('reads one token per node a write ended on (shards)', () => {
    const { positions, tokens } = setup()
    tokens.wrote('s0_primary')
    tokens.wrote('s1_primary')
    tokens.wrote('s0_primary')
    assert.equal(
      holds(tokens, () => true),
      true,
    )
    assert.deepEqual(
      positions.asked.map((a) => a.node),
      ['s0_primary', 's1_primary'],
    )
    positions.answer('0/10')
    assert.equal(tokens.reading, true)
    positions.answer('0/20')
    assert.equal(tokens.reading, false)
  })

  it('gives the engine a token no replica has when one could not be read, until a later one is', () => {
    const { positions, state, tokens } = setup()
    state.recordWrite('0/10')
    tokens.wrote('primary')
    holds(tokens, () => true)
    positions.answer(null)
    assert.equal(state.context().minLsn, 'unknown')
    tokens.wrote('primary')
    holds(tokens, () => true)
    positions.answer('0/30')
    assert.equal(state.context().minLsn, '0/30')
  })
})
