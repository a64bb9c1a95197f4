// The fleet's pure rules: acknowledgements a quorum needs, when a round is decided, proposal ids, and
// the `fleet` config section with its defaults and key paths in errors.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseConfig } from '../../../src/core/config/parse-config.js'
import { redactConfig } from '../../../src/core/config/redact.js'
import { ConfigError } from '../../../src/core/errors.js'
import { proposalId, requiredAcks, roundState } from '../../../src/fleet/fleet-records.js'
import { localize } from '../../../src/fleet/validate-proposal.js'

const base = 'cluster:\n  primary: { name: primary, url: postgres://app@db:5432/main }\n'

describe('fleet quorum rules', () => {
  const cases: [rule: 'majority' | 'all' | number, members: number, required: number][] = [
    ['majority', 1, 1],
    ['majority', 2, 2],
    ['majority', 3, 2],
    ['majority', 4, 3],
    ['majority', 5, 3],
    ['all', 3, 3],
    ['all', 0, 0],
    [2, 5, 2],
    [4, 3, 4],
  ]
  for (const [rule, members, required] of cases) {
    it(`${rule} of ${members} live instances needs ${required}`, () => {
      assert.equal(requiredAcks(rule, members), required)
    })
  }

  const round = { members: ['a', 'b', 'c'], required: 2 }
  const table: [name: string, acks: { instance: string; ok: boolean }[], expected: string][] = [
    ['no answer yet', [], 'pending'],
    ['one ack', [{ instance: 'a', ok: true }], 'pending'],
    [
      'two acks',
      [
        { instance: 'a', ok: true },
        { instance: 'b', ok: true },
      ],
      'quorum',
    ],
    ['one refusal leaves two possible', [{ instance: 'a', ok: false }], 'pending'],
    [
      'two refusals',
      [
        { instance: 'a', ok: false },
        { instance: 'b', ok: false },
      ],
      'impossible',
    ],
    [
      'acks from outside the round do not count',
      [
        { instance: 'x', ok: true },
        { instance: 'y', ok: true },
      ],
      'pending',
    ],
  ]
  for (const [name, acks, expected] of table) {
    it(`round of 2 of 3: ${name} -> ${expected}`, () => {
      assert.equal(roundState(round, acks).state, expected)
    })
  }

  it('quorum all: a single refusal decides the round', () => {
    const s = roundState({ members: ['a', 'b', 'c'], required: 3 }, [{ instance: 'b', ok: false }])
    assert.equal(s.state, 'impossible')
    assert.match(s.state === 'impossible' ? s.reason : '', /refused by b/)
  })

  it('a fixed quorum above the live instances is impossible at once', () => {
    assert.equal(roundState({ members: ['a'], required: 2 }, []).state, 'impossible')
  })

  it('proposal ids sort by version', () => {
    const ids = [proposalId(10, 'ff'), proposalId(9, 'aa'), proposalId(100, '00')].sort()
    assert.deepEqual(ids, [proposalId(9, 'aa'), proposalId(10, 'ff'), proposalId(100, '00')])
  })
})

describe('fleet config section', () => {
  it('fills the defaults of CONTRACT section 11', () => {
    const c = parseConfig(
      `${base}fleet:\n  etcd: { endpoints: [http://127.0.0.1:2379], prefix: /freshet/prod }\n`,
    )
    assert.equal(c.fleet?.instance, null)
    assert.equal(c.fleet?.quorum, 'majority')
    assert.equal(c.fleet?.ack_timeout_ms, 5000)
    assert.equal(c.fleet?.flags.eval_interval_ms, 2000)
    assert.equal(parseConfig(base).fleet, null)
  })

  it('names the key path of every bad fleet key', () => {
    const text = `${base}fleet:\n  etcd: { endpoints: [etcd-1:2379], prefix: freshet/ }\n  quorum: most\n  ack_timeout_ms: 0\n  colour: red\n`
    try {
      parseConfig(text)
      assert.fail('accepted')
    } catch (err) {
      assert.ok(err instanceof ConfigError)
      const paths = err.issues.map((i) => i.path).sort()
      assert.deepEqual(paths, [
        'fleet.ack_timeout_ms',
        'fleet.colour',
        'fleet.etcd.endpoints[0]',
        'fleet.etcd.prefix',
        'fleet.quorum',
      ])
    }
  })

  it('redacts the etcd password', () => {
    const c = parseConfig(
      `${base}fleet:\n  etcd: { endpoints: [http://e:2379], username: freshet, password: s3cret }\n`,
    )
    const shown = JSON.stringify(redactConfig(c))
    assert.ok(!shown.includes('s3cret'))
  })

  it('a proposed document keeps the instance its own fleet section and listen addresses', () => {
    const running = parseConfig(
      `${base}proxy: { listen: 127.0.0.1:7001 }\nadmin: { listen: 127.0.0.1:7002 }\nfleet:\n  etcd: { endpoints: [http://e:2379] }\n  instance: me\n`,
    )
    const doc = localize(
      { version: 2, proxy: { listen: '0.0.0.0:6432', pool_mode: 'session' }, fleet: { instance: 'other' } },
      running,
    ) as {
      proxy: { listen: string; pool_mode: string }
      admin: { listen: string }
      fleet: { instance: string }
    }
    assert.equal(doc.fleet.instance, 'me')
    assert.equal(doc.proxy.listen, '127.0.0.1:7001')
    assert.equal(doc.proxy.pool_mode, 'session')
    assert.equal(doc.admin.listen, '127.0.0.1:7002')
  })
})
