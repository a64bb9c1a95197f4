// Config rollout across a fleet on a real 3-member etcd and a real PostgreSQL primary + replica, with
// three instances (two proxies, one library pool): membership, a push applied everywhere, a refusal
// under quorum all applied nowhere, PUT /api/v1/config through the fleet, concurrent proposals with
// one winner, and fleet flags within the evaluation interval.

import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { run as configCli } from '../../../src/cli/config.js'
import { formatFleetStatus, readFleetStatus } from '../../../src/fleet/fleet-status.js'
import { proposeConfig } from '../../../src/fleet/propose-config.js'
import { eventually } from '../../support/eventually.js'
import { EVAL_INTERVAL_MS, type FleetFixture, startFleet } from './fleet-fixture.js'

describe('fleet rollout over a real etcd cluster', { timeout: 240_000 }, () => {
  let f: FleetFixture
  const quiet = () => {
    const log = console.log
    console.log = () => {}
    return () => {
      console.log = log
    }
  }

  before(async () => {
    process.env.FLEET_TEST_SECRET = 'app'
    f = await startFleet()
  })
  after(async () => {
    await f?.stop()
  })

  /** Waits until every member has read the fleet once more (a tick after the event under test). */
  const settle = () => Promise.all(f.members().map((m) => m.refresh()))

  it('every instance registers under its lease with kind, version and health', async () => {
    await eventually('three members registered', async () => (await f.store.members()).length === 3)
    const members = await f.store.members()
    assert.deepEqual(
      members.map((m) => [m.instance, m.kind, m.version]),
      [
        ['library_c', 'library', 1],
        ['proxy_a', 'proxy', 1],
        ['proxy_b', 'proxy', 1],
      ],
    )
    await eventually('members report a healthy primary', async () =>
      (await f.store.members()).every((m) => m.healthy),
    )
  })

  it('freshet config push: version 2 is acknowledged, committed and applied on every instance', async () => {
    const file = join(f.dir, 'v2.json')
    writeFileSync(
      file,
      JSON.stringify({
        ...f.documentAt(2, { domains: { accounts: 'strict' } }),
        fleet: f.fleetSection('cli'),
      }),
    )
    const restore = quiet()
    const code = await configCli(['push', file, '--by', 'test@fleet']).finally(restore)
    assert.equal(code, 0)
    const committed = (await f.store.committed()).value
    assert.equal(committed?.version, 2)
    assert.equal(committed?.proposer, 'test@fleet')
    await eventually('every instance runs version 2', () => f.versions().every((v) => v === 2))
    for (const face of ['a', 'b', 'c'] as const) {
      // the new domain makes reads of `accounts` strict: the primary serves them on every instance
      const port = await f.serverPort(face, 'SELECT inet_server_port() AS port FROM (SELECT 1) AS accounts')
      assert.ok(port > 0)
      assert.equal(
        (face === 'c' ? f.c.engine : face === 'a' ? f.a.engine : f.b.engine).config.domains.accounts,
        'strict',
      )
    }
    // majority: the round commits at two answers; a third that answers later is not waited for
    const status = await readFleetStatus(f.store)
    const answers = status.instances.map((i) => i.ack?.ok)
    assert.ok(answers.filter((ok) => ok === true).length >= 2, JSON.stringify(answers))
    assert.ok(!answers.includes(false), JSON.stringify(answers))
    await eventually('members report version 2', async () =>
      (await f.store.members()).every((m) => m.version === 2),
    )
    assert.match(formatFleetStatus(await readFleetStatus(f.store)), /proxy_a\s+proxy\s+2\s+yes\s+(acked 2|-)/)
  })

  it('a proposal one instance refuses is applied nowhere under quorum all', async () => {
    // library_c's environment lacks FLEET_TEST_SECRET: its validation fails, the proxies' passes
    const document = f.documentAt(3, {
      proxy: {
        listen: '127.0.0.1:0',
        auth: { type: 'scram-sha-256', users: { app: { password: '${FLEET_TEST_SECRET}' } } },
      },
    })
    const outcome = await proposeConfig(f.store, document, 3, {
      proposer: 'test',
      quorum: 'all',
      ackTimeoutMs: 10_000,
    })
    assert.equal(outcome.status, 'aborted', outcome.reason ?? '')
    assert.match(outcome.reason ?? '', /refused by library_c/)
    const refusal = outcome.acks.find((a) => a.instance === 'library_c')
    assert.equal(refusal?.ok, false)
    assert.deepEqual(
      refusal?.issues.map((i) => i.path),
      ['proxy.auth.users.app.password'],
    )
    assert.match(refusal?.issues[0]?.message ?? '', /FLEET_TEST_SECRET/)
    assert.equal((await f.store.committed()).value?.version, 2)
    await settle()
    assert.deepEqual(f.versions(), [2, 2, 2])
    const status = await readFleetStatus(f.store)
    assert.equal(status.latest?.status, 'aborted')
    const text = formatFleetStatus(status)
    assert.match(
      text,
      /library_c\s+library\s+2\s+yes\s+refused 3\s+proxy\.auth\.users\.app\.password: environment variable/,
    )
  })

  it('PUT /api/v1/config on one proxy runs a fleet round: committed and applied everywhere', async () => {
    const res = await fetch(`${f.a.adminUrl}/api/v1/config`, {
      method: 'PUT',
      body: JSON.stringify(f.documentAt(3)),
    })
    const body = (await res.json()) as {
      status: string
      version: number
      acks: { instance: string; ok: boolean }[]
    }
    assert.equal(res.status, 200, JSON.stringify(body))
    assert.equal(body.status, 'committed')
    assert.equal(body.acks.filter((a) => a.ok).length >= 2, true)
    // the proposer applies before answering; the others within an interval
    assert.equal(f.a.engine.config.version, 3)
    await eventually('every instance runs version 3', () => f.versions().every((v) => v === 3))
    // a version not above the committed one is refused (409) and proposes nothing
    const stale = await fetch(`${f.b.adminUrl}/api/v1/config`, {
      method: 'PUT',
      body: JSON.stringify(f.documentAt(3)),
    })
    assert.equal(stale.status, 409)
    assert.equal(((await stale.json()) as { status: string }).status, 'refused')
  })

  it('concurrent proposals end with exactly one winner, applied everywhere', async () => {
    const options = { proposer: 'racer', quorum: 'majority' as const, ackTimeoutMs: 10_000 }
    const [x, y] = await Promise.all([
      proposeConfig(f.store, f.documentAt(4, { domains: { racer: 'strict' } }), 4, {
        ...options,
        proposer: 'x',
      }),
      proposeConfig(f.store, f.documentAt(5, { domains: { racer: 'eventual' } }), 5, {
        ...options,
        proposer: 'y',
      }),
    ])
    const outcomes = [x, y].map((o) => o.status).sort()
    assert.deepEqual(outcomes, ['aborted', 'committed'], JSON.stringify([x.reason, y.reason]))
    const winner = x.status === 'committed' ? x : y
    const loser = x.status === 'committed' ? y : x
    assert.match(loser.reason ?? '', /lost the race|not greater/)
    assert.equal((await f.store.committed()).value?.version, winner.version)
    await eventually(`every instance runs the winner's version ${winner.version}`, () =>
      f.versions().every((v) => v === winner.version),
    )
    const tier = winner.version === 4 ? 'strict' : 'eventual'
    assert.equal(f.c.engine.config.domains.racer, tier)
    assert.equal(f.b.engine.config.domains.racer, tier)
  })

  it('fleet flags reach every instance within eval_interval_ms, counted and logged with who set them', async () => {
    const replicaPort = f.cluster.replicas[0]!.port
    const primaryPort = f.cluster.primary.port
    const hinted = '/*+ ROUTE_TO: replica */ SELECT inet_server_port() AS port'
    assert.equal(await f.serverPort('a', hinted), replicaPort)
    const res = await fetch(`${f.b.adminUrl}/api/v1/controls`, {
      method: 'POST',
      body: JSON.stringify({ route_all_to_primary: true }),
    })
    assert.equal(res.status, 200)
    assert.equal(((await res.json()) as { route_all_to_primary: boolean }).route_all_to_primary, true)
    // the flag is in etcd from here on, and the instance that set it applied it before answering
    const written = Date.now()
    assert.equal(f.b.engine.config.controls.route_all_to_primary, true)
    await eventually('every instance routes everything to the primary', () =>
      [f.a, f.b, f.c].every((x) => x.engine.config.controls.route_all_to_primary),
    )
    const took = Date.now() - written
    // the others: their next tick (every EVAL_INTERVAL_MS), no quorum round; the allowance is one etcd
    // read on a 2-core machine shared with other suites
    assert.ok(took <= EVAL_INTERVAL_MS + 1000, `flags took ${took} ms (interval ${EVAL_INTERVAL_MS} ms)`)
    for (const face of ['a', 'b', 'c'] as const) assert.equal(await f.serverPort(face, hinted), primaryPort)
    const line = f.logs.library_c!.find((l) => /flag route_all_to_primary set to true/.test(l.message))
    assert.match(String(line?.fields?.set_by), /^api@proxy_b from /)
    const metrics = await (await fetch(`${f.a.adminUrl}/metrics`)).text()
    assert.match(metrics, /freshet_fleet_flag_changes_total\{flag="route_all_to_primary"\} 1/)
    assert.match(metrics, /freshet_fleet_applied_total\{source="etcd"\} [1-9]/)
    // the CLI clears it again; a config rollout afterwards keeps the fleet's flags
    const file = join(f.dir, 'cli-fleet.json')
    writeFileSync(file, JSON.stringify({ ...f.documentAt(1), fleet: f.fleetSection('cli') }))
    const restore = quiet()
    const code = await configCli([
      'flag',
      'route_all_to_primary=false',
      '--config',
      file,
      '--by',
      'oncall',
    ]).finally(restore)
    assert.equal(code, 0)
    await eventually('flag cleared everywhere', () =>
      [f.a, f.b, f.c].every((x) => !x.engine.config.controls.route_all_to_primary),
    )
    assert.equal((await f.store.flags()).value?.set_by, 'oncall')
    assert.match(metrics, /freshet_fleet_etcd_connected 1/)
  })

  it('under majority a refusal can be outvoted: the refusing instance keeps its version and says why', async () => {
    const before = f.c.engine.config.version
    const secret = {
      proxy: {
        listen: '127.0.0.1:0',
        auth: { type: 'scram-sha-256', users: { app: { password: '${FLEET_TEST_SECRET}' } } },
      },
    }
    const outcome = await proposeConfig(f.store, f.documentAt(10, secret), 10, {
      proposer: 'test',
      quorum: 'majority',
      ackTimeoutMs: 10_000,
    })
    assert.equal(outcome.status, 'committed', outcome.reason ?? '')
    await eventually('the proxies run version 10', () => f.versions()[0] === 10 && f.versions()[1] === 10)
    await eventually('library_c reports why it cannot apply version 10', async () =>
      (await f.store.members()).some(
        (m) => m.instance === 'library_c' && /FLEET_TEST_SECRET/.test(m.apply_error ?? ''),
      ),
    )
    assert.equal(f.c.engine.config.version, before)
    assert.ok((await f.serverPort('c')) > 0)
    // freshet config status shows it per instance
    const file = join(f.dir, 'status.json')
    writeFileSync(file, JSON.stringify({ ...f.documentAt(1), fleet: f.fleetSection('cli') }))
    const printed: string[] = []
    const log = console.log
    console.log = (line: string) => printed.push(line)
    const code = await configCli(['status', '--config', file]).finally(() => {
      console.log = log
    })
    assert.equal(code, 0)
    const text = printed.join('\n')
    assert.match(text, /^committed: version 10 /m)
    assert.match(
      text,
      new RegExp(
        `library_c\\s+library\\s+${before}\\s+yes\\s+(refused 10|-)\\s.*cannot apply: proxy\\.auth\\.users\\.app\\.password`,
      ),
    )
    // the next valid version reaches it again
    const next = await proposeConfig(f.store, f.documentAt(11), 11, {
      proposer: 'test',
      quorum: 'all',
      ackTimeoutMs: 10_000,
    })
    assert.equal(next.status, 'committed', next.reason ?? '')
    await eventually('every instance runs version 11', () => f.versions().every((v) => v === 11))
    await eventually('library_c reports no apply error', async () =>
      (await f.store.members()).some((m) => m.instance === 'library_c' && m.apply_error === null),
    )
  })
})
