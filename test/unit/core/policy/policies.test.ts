import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createPolicy } from '../../../../src/core/policy/create-policy.js'
import type { PolicyName } from '../../../../src/core/policy/replica-policy.js'
import type { NodeState } from '../../../../src/core/topology/node-state.js'
import { node as baseNode, seeded } from '../../../support/route-fixtures.js'

const node = (name: string, over: Partial<NodeState> = {}) =>
  baseNode(name, { lagMs: 10, replayLsn: 100n, latencyEwmaMs: 5, ...over })

function counts(
  policy: ReturnType<typeof createPolicy>,
  candidates: NodeState[],
  n: number,
): Record<string, number> {
  const out: Record<string, number> = {}
  for (const c of candidates) out[c.name] = 0
  for (let i = 0; i < n; i++) {
    const picked = policy.pick(candidates, 0)
    out[picked.name] = (out[picked.name] ?? 0) + 1
  }
  return out
}

describe('lag_aware_round_robin', () => {
  it('rotates evenly over the candidates', () => {
    const p = createPolicy('lag_aware_round_robin')
    const cs = [node('a'), node('b'), node('c')]
    assert.deepEqual(
      Array.from({ length: 6 }, () => p.pick(cs, 0).name),
      ['a', 'b', 'c', 'a', 'b', 'c'],
    )
  })
  it('gives a ramping replica about rampFactor of its share', () => {
    const p = createPolicy('lag_aware_round_robin', { random: seeded() })
    const c = counts(p, [node('a', { rampFactor: 0.2 }), node('b')], 20000)
    // normal share 10000; ramped ~2000
    assert.ok(c.a! > 1700 && c.a! < 2300, `a got ${c.a}`)
    assert.equal(c.a! + c.b!, 20000)
  })
  it('a ramp of 0 still serves when it is the only candidate', () => {
    const p = createPolicy('lag_aware_round_robin', { random: seeded() })
    assert.equal(p.pick([node('a', { rampFactor: 0 })], 0).name, 'a')
  })
  it('prefers the local zone, then the rest', () => {
    const p = createPolicy('lag_aware_round_robin', { localZone: 'eu-1' })
    const local = [node('a', { zone: 'us-1' }), node('b', { zone: 'eu-1' }), node('c', { zone: 'eu-1' })]
    const c = counts(p, local, 100)
    assert.deepEqual(c, { a: 0, b: 50, c: 50 })
    const remote = [node('a', { zone: 'us-1' }), node('d', { zone: null })]
    assert.deepEqual(counts(p, remote, 10), { a: 5, d: 5 })
  })
})

describe('weighted', () => {
  it('picks in proportion to weight', () => {
    const p = createPolicy('weighted', { random: seeded(7) })
    const c = counts(p, [node('a', { weight: 300 }), node('b', { weight: 100 })], 40000)
    assert.ok(Math.abs(c.a! - 30000) < 600, `a got ${c.a}`)
  })
  it('weight 0 drains a replica; all zero picks uniformly', () => {
    const p = createPolicy('weighted', { random: seeded(3) })
    assert.equal(counts(p, [node('a', { weight: 0 }), node('b')], 1000).a, 0)
    const z = counts(p, [node('a', { weight: 0 }), node('b', { weight: 0 })], 10000)
    assert.ok(z.a! > 4500 && z.a! < 5500, `a got ${z.a}`)
  })
  it('multiplies weight by rampFactor', () => {
    const p = createPolicy('weighted', { random: seeded(11) })
    const c = counts(p, [node('a', { rampFactor: 0.2 }), node('b')], 60000)
    // shares 20 : 100 -> a ~ 10000
    assert.ok(Math.abs(c.a! - 10000) < 600, `a got ${c.a}`)
  })
  it('honours the local zone', () => {
    const p = createPolicy('weighted', { localZone: 'z', random: seeded() })
    assert.equal(counts(p, [node('a', { zone: 'z', weight: 1 }), node('b', { weight: 1000 })], 500).a, 500)
  })
})

describe('lowest-score policies', () => {
  const table: { policy: PolicyName; candidates: NodeState[]; expected: string }[] = [
    { policy: 'least_lag', candidates: [node('a', { lagMs: 50 }), node('b', { lagMs: 5 })], expected: 'b' },
    {
      policy: 'least_lag',
      candidates: [node('a', { lagMs: null }), node('b', { lagMs: 900 })],
      expected: 'b',
    },
    {
      policy: 'least_connections',
      candidates: [node('a', { active: 3 }), node('b', { active: 1 }), node('c', { active: 2 })],
      expected: 'b',
    },
    {
      policy: 'least_latency',
      candidates: [node('a', { latencyEwmaMs: 3 }), node('b', { latencyEwmaMs: 1.5 })],
      expected: 'b',
    },
    {
      policy: 'least_latency',
      candidates: [node('a', { latencyEwmaMs: 1 }), node('b', { latencyEwmaMs: null })],
      expected: 'b', // unmeasured counts as best so it gets measured
    },
  ]
  for (const row of table) {
    it(`${row.policy} picks ${row.expected} from ${row.candidates.map((c) => c.name).join(',')}`, () => {
      const p = createPolicy(row.policy)
      for (let i = 0; i < 5; i++) assert.equal(p.pick(row.candidates, 0).name, row.expected)
    })
  }
  it('spreads ties instead of piling onto the first', () => {
    const p = createPolicy('least_connections')
    assert.deepEqual(counts(p, [node('a'), node('b'), node('c')], 300), { a: 100, b: 100, c: 100 })
  })
  it('a ramping best replica wins only about rampFactor of the time', () => {
    const p = createPolicy('least_lag', { random: seeded(5) })
    const c = counts(p, [node('a', { lagMs: 1, rampFactor: 0.25 }), node('b', { lagMs: 100 })], 20000)
    assert.ok(Math.abs(c.a! - 5000) < 400, `a got ${c.a}`)
  })
  it('prefers the local zone even over a better remote score', () => {
    const p = createPolicy('least_lag', { localZone: 'eu-1' })
    const cs = [node('a', { lagMs: 1, zone: 'us-1' }), node('b', { lagMs: 400, zone: 'eu-1' })]
    assert.equal(p.pick(cs, 0).name, 'b')
  })
})

describe('createPolicy', () => {
  it('knows every config name and refuses others', () => {
    for (const name of [
      'lag_aware_round_robin',
      'least_lag',
      'weighted',
      'least_connections',
      'least_latency',
    ] as const) {
      assert.equal(createPolicy(name).name, name)
    }
    assert.throws(() => createPolicy('random' as PolicyName), RangeError)
  })
})
