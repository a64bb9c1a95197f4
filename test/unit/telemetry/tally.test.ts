// Tallies: counts kept beside a prom-client Counter expose what the counter's own inc would, on every read.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Counter, Registry } from 'prom-client'
import { Tallies } from '../../../src/telemetry/tally.js'

describe('Tallies', () => {
  it('exposes what prom-client Counter.inc exposes for the same counts', async () => {
    const ours = new Registry()
    const theirs = new Registry()
    const tallies = new Tallies<'tier' | 'role'>()
    const a: Counter<'tier' | 'role'> = new Counter({
      name: 'x_total',
      help: 'help text',
      labelNames: ['tier', 'role'],
      registers: [ours],
      collect: () => tallies.flush(a),
    })
    const b = new Counter({
      name: 'x_total',
      help: 'help text',
      labelNames: ['tier', 'role'],
      registers: [theirs],
    })
    const replica = tallies.of({ tier: 'near_rt', role: 'replica' })
    const primary = tallies.of({ tier: 'near_rt', role: 'primary' })
    tallies.of({ tier: 'strong', role: 'primary' }) // never counted: no series, as with prom-client
    for (let i = 0; i < 5; i++) {
      replica.n++
      b.labels('near_rt', 'replica').inc()
    }
    primary.n++
    b.labels('near_rt', 'primary').inc()
    assert.equal(await ours.metrics(), await theirs.metrics())
    assert.match(await ours.metrics(), /^x_total\{tier="near_rt",role="replica"\} 5$/m)
    // counts after a read add to what was handed over; a second read without counts changes nothing
    replica.n++
    assert.match(await ours.metrics(), /^x_total\{tier="near_rt",role="replica"\} 6$/m)
    assert.match(await ours.metrics(), /^x_total\{tier="near_rt",role="replica"\} 6$/m)
    // the JSON the workers' aggregation reads sees them too
    primary.n += 2
    const json = await ours.getMetricsAsJSON()
    const values = json[0]!.values.map((v) => [v.labels.role, v.value])
    assert.deepEqual(values, [
      ['replica', 6],
      ['primary', 3],
    ])
  })

  it('counts a label-less counter', async () => {
    const registry = new Registry()
    const tallies = new Tallies<never>()
    const c: Counter = new Counter({
      name: 'y_total',
      help: 'h',
      registers: [registry],
      collect: () => tallies.flush(c),
    })
    const t = tallies.of({})
    t.n += 3
    assert.match(await registry.metrics(), /^y_total 3$/m)
  })
})
