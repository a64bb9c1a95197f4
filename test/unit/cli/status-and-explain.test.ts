// `freshet status` against a running admin API and `freshet explain` without a cluster.

import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { startAdmin } from '../../../src/admin/admin-server.js'
import { run as checkConfig } from '../../../src/cli/check-config.js'
import { run as explain, nodeState } from '../../../src/cli/explain.js'
import { run as status } from '../../../src/cli/status.js'
import { Classifier } from '../../../src/core/classify/classifier.js'
import { validateConfig } from '../../../src/core/config/parse-config.js'
import { RoutingEngine } from '../../../src/routing/routing-engine.js'
import { createLogger } from '../../../src/telemetry/logger.js'

async function captured(fn: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = []
  const err: string[] = []
  const log = console.log
  const error = console.error
  console.log = (...a: unknown[]) => out.push(a.join(' '))
  console.error = (...a: unknown[]) => err.push(a.join(' '))
  try {
    return { code: await fn(), out: out.join('\n'), err: err.join('\n') }
  } finally {
    console.log = log
    console.error = error
  }
}

describe('cli', () => {
  it('status prints a table from /api/v1/topology, with the token', async () => {
    await Classifier.loadParser()
    const engine = new RoutingEngine(
      validateConfig({
        cluster: {
          primary: { name: 'primary', url: 'postgres://127.0.0.1:1/x' },
          replicas: [{ name: 'replica_1', url: 'postgres://127.0.0.1:2/x' }],
        },
        admin: { listen: '127.0.0.1:0', token: 'tok' },
      }),
    )
    const admin = await startAdmin({ engine, logger: createLogger({ log_level: 'silent' }) })
    try {
      const denied = await captured(() => status(['--admin', admin.url]))
      assert.equal(denied.code, 1)
      assert.match(denied.err, /unauthorized/)
      const ok = await captured(() => status(['--admin', admin.url, '--token', 'tok']))
      assert.equal(ok.code, 0, ok.err)
      assert.match(ok.out, /config version 1, primary primary/)
      assert.match(ok.out, /NODE\s+ROLE\s+HEALTH\s+BREAKER\s+LAG/)
      assert.match(ok.out, /replica_1\s+replica\s+DOWN\s+closed\s+unknown/)
    } finally {
      await admin.close()
    }
    const unreachable = await captured(() => status(['--admin', 'http://127.0.0.1:1']))
    assert.equal(unreachable.code, 1)
    assert.match(unreachable.err, /cannot reach/)
  })

  it('explain without a config says it shows a demo topology, never calls its target unavailable, and times a warm decision', async () => {
    const text = await captured(() => explain(['/* FRESHNESS: EVENTUAL */ SELECT * FROM orders']))
    assert.equal(text.code, 0)
    assert.match(text.out, /statement: read \(read\) tables: orders/)
    assert.match(text.out, /decision: {2}\S+ .*reason=fallback_least_lagged|decision: {2}.*tier=eventual/)
    assert.match(text.out, /demo topology, not your cluster/)
    assert.doesNotMatch(text.out, /unavailable/)
    assert.match(text.out, /node: {6}primary primary not probed \(the target\)/)
    // warm: a decision with a cached classification takes microseconds, not the parser's first load
    const took = Number(/took=([\d.]+)us/.exec(text.out)?.[1])
    assert.ok(took > 0 && took < 5000, `took=${took}us`)
    assert.match(text.out, /measured warm/)
    const json = await captured(() => explain(['--json', 'DELETE FROM orders']))
    const body = JSON.parse(json.out)
    assert.equal(body.live, false)
    assert.equal(body.decision.reason, 'write')
    assert.equal(body.decision.target, 'primary')
    assert.deepEqual(
      body.nodes.map((n: { state: string }) => n.state),
      ['not probed (the target)', 'not probed'],
    )
  })

  it('explain with an engine: mysql config classifies with the MySQL grammar', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'freshet-explain-mysql-'))
    try {
      const file = join(dir, 'mysql.yaml')
      writeFileSync(
        file,
        'engine: mysql\ncluster:\n  primary: { name: primary, url: mysql://app@127.0.0.1:1/main }\n',
      )
      const json = await captured(() =>
        explain(['--json', '--config', file, '--timeout', '200', 'SELECT * FROM t LOCK IN SHARE MODE']),
      )
      const body = JSON.parse(json.out)
      // PostgreSQL's parser refuses LOCK IN SHARE MODE ('unparsable'); MySQL's knows it
      assert.equal(body.decision.classReason, 'locking_read')
      assert.equal(body.decision.target, 'primary')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('explain labels node states: probed healthy, never probed, unreachable, unreachable but the target', () => {
    const at = '2026-01-01T00:00:00Z'
    assert.equal(nodeState({ name: 'r1', healthy: true, checked_at: at }, 'primary'), 'healthy')
    assert.equal(nodeState({ name: 'r1', healthy: false, checked_at: null }, 'primary'), 'not probed')
    assert.equal(nodeState({ name: 'r1', healthy: false, checked_at: at }, 'primary'), 'unavailable')
    assert.match(
      nodeState({ name: 'primary', healthy: false, checked_at: at }, 'primary'),
      /^not reachable now \(still the target/,
    )
  })

  it('check-config says valid with a summary, or lists every error with its key path and exits 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'freshet-check-'))
    try {
      const good = join(dir, 'good.yaml')
      writeFileSync(
        good,
        'version: 3\ncluster:\n  primary: { name: primary, url: "postgres://app@db:5432/main" }\n' +
          '  replicas: [{ name: replica_1, url: "postgres://app@r1:5432/main" }]\n',
      )
      const ok = await captured(() => checkConfig([good]))
      assert.equal(ok.code, 0)
      assert.match(ok.out, /valid \(version 3; primary primary; replicas replica_1;/)

      const bad = join(dir, 'bad.yaml')
      writeFileSync(
        bad,
        'version: 3\ncluster:\n  primary: { name: primary, url: "postgres://app@db:5432/main" }\n' +
          'routing:\n  unannotated: sometimes\n  tiers: { near_rt: { max_lag_ms: "fast" } }\npools: { max_wating: 3 }\n',
      )
      const refused = await captured(() => checkConfig([bad]))
      assert.equal(refused.code, 1)
      assert.match(refused.err, /invalid, \d+ errors:/)
      assert.match(refused.err, /routing\.tiers\.near_rt\.max_lag_ms: /)
      assert.match(
        refused.err,
        /pools\.max_wating: unknown key \(check the spelling against docs\/configuration\.md/,
      )
      assert.equal((await captured(() => checkConfig([]))).code, 2, 'no file: usage')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
