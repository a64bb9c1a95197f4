// Fleet fault cases on a real 3-member etcd and a real PostgreSQL primary + replica: a killed etcd
// member changes nothing; an instance cut off from etcd (fault relays) keeps serving its version,
// reports it once, leaves the member list and catches up when the partition heals; lost etcd quorum
// blocks rollouts and flags but not routing; a start without etcd runs the local cache, then the file.

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { copyFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { freePort } from '../../../src/cluster/free-port.js'
import type { FreshetConfigInput } from '../../../src/core/config/schema.js'
import { proposeConfig } from '../../../src/fleet/propose-config.js'
import { setFleetFlags } from '../../../src/fleet/set-fleet-flags.js'
import { createPool } from '../../../src/index.js'
import { eventually } from '../../support/eventually.js'
import { type FleetFixture, startFleet } from './fleet-fixture.js'

const RUN_CLI = fileURLToPath(new URL('../../support/run-cli.ts', import.meta.url))

describe('fleet faults over a real etcd cluster', { timeout: 240_000 }, () => {
  let f: FleetFixture
  const majority = { proposer: 'test', quorum: 'majority' as const, ackTimeoutMs: 10_000 }

  before(async () => {
    f = await startFleet()
    await eventually('three members registered', async () => (await f.store.members()).length === 3)
  })
  after(async () => {
    await f?.stop()
  })

  it('a killed etcd member changes nothing: rollouts and flags go on with two of three', async () => {
    await f.etcd.kill('etcd_1')
    const outcome = await proposeConfig(f.store, f.documentAt(2), 2, majority)
    assert.equal(outcome.status, 'committed', outcome.reason ?? '')
    assert.equal(outcome.acks.filter((a) => a.ok).length >= 2, true)
    await eventually('every instance runs version 2', () => f.versions().every((v) => v === 2))
    await setFleetFlags(f.store, { disable_lag_checks: true }, 'test')
    await eventually('flag applied everywhere', () =>
      [f.a, f.b, f.c].every((x) => x.engine.config.controls.disable_lag_checks),
    )
    for (const m of f.members()) assert.equal(m.state().etcd, 'connected', m.instance)
    await setFleetFlags(f.store, { disable_lag_checks: false }, 'test')
    await f.etcd.start('etcd_1')
    await eventually('flag cleared everywhere', () =>
      [f.a, f.b, f.c].every((x) => !x.engine.config.controls.disable_lag_checks),
    )
  })

  it('a partitioned instance keeps serving its version, never applies the new one, then catches up', async () => {
    const b = f.b.fleet!
    const linesBefore = f.logs.proxy_b!.length
    for (const r of f.relays) r.set({ mode: 'blackhole' })
    await eventually('proxy_b sees etcd as unreachable', () => b.state().etcd === 'unreachable', 15_000)
    // readyz: still ready (it routes), with the fleet detail
    const ready = await fetch(`${f.b.adminUrl}/readyz`)
    assert.equal(ready.status, 200)
    const detail = ((await ready.json()) as { fleet: { etcd: string; running_version: number } }).fleet
    assert.equal(detail.etcd, 'unreachable')
    assert.equal(detail.running_version, 2)
    assert.match(await (await fetch(`${f.b.adminUrl}/metrics`)).text(), /freshet_fleet_etcd_connected 0/)
    // its lease runs out: it leaves the member list, so quorums are counted over the live instances
    await eventually(
      'proxy_b gone from the members',
      async () => !(await f.store.members()).some((m) => m.instance === 'proxy_b'),
      15_000,
    )
    const outcome = await proposeConfig(f.store, f.documentAt(3), 3, majority)
    assert.equal(outcome.status, 'committed', outcome.reason ?? '')
    assert.deepEqual([...outcome.members].sort(), ['library_c', 'proxy_a'])
    await eventually(
      'proxy_a and library_c run version 3',
      () => f.versions()[0] === 3 && f.versions()[2] === 3,
    )
    // proxy_b stays on version 2 and serves with it
    await b.refresh()
    assert.equal(f.b.engine.config.version, 2)
    assert.ok((await f.serverPort('b')) > 0)
    const outageLines = f.logs.proxy_b!.slice(linesBefore).filter((l) => /etcd unreachable/.test(l.message))
    assert.equal(outageLines.length, 1, JSON.stringify(outageLines))
    for (const r of f.relays) r.set({ mode: 'pass' })
    await eventually('proxy_b catches up to version 3', () => f.b.engine.config.version === 3, 20_000)
    assert.equal(b.state().etcd, 'connected')
    assert.ok(f.logs.proxy_b!.some((l) => /etcd reachable again/.test(l.message)))
    await eventually(
      'proxy_b back in the members at version 3',
      async () => (await f.store.members()).some((m) => m.instance === 'proxy_b' && m.version === 3),
      15_000,
    )
  })

  it('without etcd quorum, rollouts and flags are blocked but routing goes on', async () => {
    await Promise.all([f.etcd.kill('etcd_2'), f.etcd.kill('etcd_3')])
    try {
      await assert.rejects(proposeConfig(f.store, f.documentAt(4), 4, majority))
      await assert.rejects(setFleetFlags(f.store, { route_all_to_primary: true }, 'test'))
      const res = await fetch(`${f.a.adminUrl}/api/v1/controls`, {
        method: 'POST',
        body: JSON.stringify({ route_all_to_primary: true }),
      })
      assert.equal(res.status, 503)
      assert.equal(f.a.engine.config.controls.route_all_to_primary, false)
      for (const face of ['a', 'b', 'c'] as const) assert.ok((await f.serverPort(face)) > 0)
      assert.deepEqual(f.versions(), [3, 3, 3])
    } finally {
      await f.etcd.start('etcd_2')
      await f.etcd.start('etcd_3')
    }
    await eventually(
      'every instance reaches etcd again',
      () => f.members().every((m) => m.state().etcd === 'connected'),
      20_000,
    )
  })

  it('a start without etcd runs the cached committed config, else the config file', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`
    const cache = join(f.dir, 'late.cache.json')
    copyFileSync(join(f.dir, 'library_c.cache.json'), cache)
    const section = (cacheFile: string) => ({
      ...f.fleetSection('late'),
      etcd: { endpoints: [dead], prefix: f.prefix, request_timeout_ms: 300, dial_timeout_ms: 300 },
      cache_file: cacheFile,
    })
    const cached = createPool({ ...f.documentAt(1), fleet: section(cache) } as FreshetConfigInput)
    try {
      await cached.ready()
      assert.equal(cached.config.version, 3)
      assert.equal(cached.fleet?.state().started_from, 'cache')
      assert.equal(cached.fleet?.state().etcd, 'unreachable')
      const { rows } = await cached.query('SELECT 1 AS one')
      assert.equal(rows[0].one, 1)
    } finally {
      await cached.end()
    }
    const bare = createPool({
      ...f.documentAt(1),
      fleet: section(join(f.dir, 'none.json')),
    } as FreshetConfigInput)
    try {
      await bare.ready()
      assert.equal(bare.config.version, 1)
      assert.equal(bare.fleet?.state().started_from, 'file')
    } finally {
      await bare.end()
    }
  })

  it('a proxy in a child process joins at the committed version; SIGKILLed, it leaves when its lease runs out', async () => {
    const file = join(f.dir, 'child.json')
    writeFileSync(file, JSON.stringify({ ...f.documentAt(1), fleet: f.fleetSection('proxy_child') }))
    const child = spawn(process.execPath, ['--import', 'tsx', RUN_CLI, 'proxy', '--config', file], {
      stdio: ['ignore', 'ignore', 'inherit'],
    })
    try {
      await eventually(
        'proxy_child registered at the committed version 3',
        async () => (await f.store.members()).some((m) => m.instance === 'proxy_child' && m.version === 3),
        30_000,
      )
      child.kill('SIGKILL')
      const killed = Date.now()
      await eventually(
        'proxy_child gone from the members',
        async () => !(await f.store.members()).some((m) => m.instance === 'proxy_child'),
        15_000,
      )
      // lease_ttl_s is 3: gone by expiry, not by a revoke
      assert.ok(Date.now() - killed >= 1000, 'left too early for a lease expiry')
    } finally {
      child.kill('SIGKILL')
    }
  })

  it('an instance that stops leaves the member list at once', async () => {
    // the test's own client may still hold its breakers open from the quorum loss (etcd3: 5 s)
    await eventually(
      'the test client reaches etcd',
      () =>
        f.store.members().then(
          () => true,
          () => false,
        ),
      15_000,
    )
    await eventually('three members', async () => (await f.store.members()).length === 3, 15_000)
    await f.c.end()
    assert.deepEqual(
      (await f.store.members()).map((m) => m.instance),
      ['proxy_a', 'proxy_b'],
    )
  })
})
