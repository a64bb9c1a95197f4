// Config parsing: defaults, key paths in errors, ${ENV} substitution, version monotonicity, redaction.

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { configJsonSchema } from '../../../../src/core/config/json-schema.js'
import { assertNewerVersion, parseConfig } from '../../../../src/core/config/parse-config.js'
import { redactConfig } from '../../../../src/core/config/redact.js'
import { ConfigError, isFreshetError } from '../../../../src/core/errors.js'

const minimal = `
cluster:
  primary: { name: primary, url: postgres://app@db:5432/main }
`

function issuesOf(text: string, env: Record<string, string> = {}): { path: string; message: string }[] {
  try {
    parseConfig(text, { env })
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`)
    assert.ok(isFreshetError(err))
    assert.equal(err.code, 'FRESHET_CONFIG_INVALID')
    return [...err.issues]
  }
  assert.fail('config was accepted')
}

describe('config', () => {
  it('fills every default of CONTRACT section 4', () => {
    const c = parseConfig(minimal)
    assert.equal(c.version, 1)
    assert.equal(c.routing.policy, 'lag_aware_round_robin')
    assert.equal(c.routing.unannotated, 'primary')
    assert.deepEqual(c.routing.tiers.near_rt, {
      max_lag_ms: 500,
      fallback: 'primary',
      fallback_rate_limit: 0,
    })
    assert.equal(c.routing.tiers.eventual?.fallback, 'least_lagged')
    assert.equal(c.routing.tiers.strict?.max_lag_ms, 0)
    assert.equal(c.classifier.engine, 'ast')
    assert.equal(c.consistency.max_wait_for_sync_ms, 1000)
    assert.equal(c.lag.heartbeat.table, 'freshet_heartbeat')
    assert.equal(c.pools.replicas.max_active, 150)
    assert.equal(c.pools.max_waiting, 1000)
    assert.equal(c.proxy.listen, '127.0.0.1:6432')
    assert.equal(c.proxy.pool_mode, 'transaction')
    assert.equal(c.admin.listen, '127.0.0.1:9187')
    assert.equal(c.admin.token, null)
    assert.equal(c.controls.route_all_to_primary, false)
    assert.ok(Object.isFrozen(c.routing.tiers))
  })

  it('accepts JSON as well as YAML', () => {
    const c = parseConfig(
      JSON.stringify({ version: 7, cluster: { primary: { name: 'p', url: 'postgres://x' } } }),
    )
    assert.equal(c.version, 7)
    assert.equal(c.cluster.primary.name, 'p')
  })

  it('reports every error with its key path', () => {
    const issues = issuesOf(`
cluster:
  primary: { name: primary, url: postgres://x }
  replicas:
    - { name: r1, url: postgres://y, weight: -1 }
routing:
  policy: random
  tiers:
    near_rt: { max_lag_ms: fast }
classifier:
  rules:
    - { pattern: "(unclosed", action: route_replica }
pools:
  primary: { max_activ: 3 }
`)
    const paths = issues.map((i) => i.path)
    assert.ok(paths.includes('cluster.replicas[0].weight'), paths.join(' | '))
    assert.ok(paths.includes('routing.policy'), paths.join(' | '))
    assert.ok(paths.includes('routing.tiers.near_rt.max_lag_ms'), paths.join(' | '))
    assert.ok(paths.includes('classifier.rules[0].pattern'), paths.join(' | '))
    assert.ok(paths.includes('pools.primary.max_activ'), paths.join(' | '))
    assert.ok(issues.length >= 5)
  })

  it('checks cross-references: duplicate node names, unknown tiers', () => {
    const issues = issuesOf(`
cluster:
  primary: { name: primary, url: postgres://x }
  replicas: [{ name: primary, url: postgres://y }]
routing: { unannotated: sometimes }
domains: { ledger_entries: ultra }
`)
    const byPath = new Map(issues.map((i) => [i.path, i.message]))
    assert.match(byPath.get('cluster.replicas[0].name') ?? '', /duplicate/)
    assert.match(byPath.get('routing.unannotated') ?? '', /not primary, error or a tier/)
    assert.match(byPath.get('domains.ledger_entries') ?? '', /unknown tier/)
  })

  it('substitutes ${ENV} and names a missing variable', () => {
    const text = `
cluster:
  primary: { name: primary, url: "postgres://app:\${DB_PASS}@db/main" }
proxy:
  auth: { users: { app: { password: "\${APP_PASSWORD}" } } }
admin: { token: "\${ADMIN_TOKEN:-dflt}" }
`
    const c = parseConfig(text, { env: { DB_PASS: 's3cret', APP_PASSWORD: 'pw' } })
    assert.equal(c.cluster.primary.url, 'postgres://app:s3cret@db/main')
    assert.equal(c.proxy.auth.users.app?.password, 'pw')
    assert.equal(c.admin.token, 'dflt')
    const issues = issuesOf(text, { DB_PASS: 'x' })
    assert.deepEqual(
      issues.map((i) => i.path),
      ['proxy.auth.users.app.password'],
    )
    assert.match(issues[0]!.message, /APP_PASSWORD/)
  })

  it('rejects YAML syntax errors and non-mappings with a clear message', () => {
    assert.match(issuesOf('cluster: [unclosed')[0]!.message, /not valid YAML/)
    assert.match(issuesOf('- a\n- b')[0]!.message, /must be a mapping/)
    // A syntax error names the line but never quotes it: the line may hold a password.
    const broken = issuesOf('cluster:\n  primary: { name: p, url: "postgres://a:hunter2@x }\n')[0]!.message
    assert.match(broken, /not valid YAML\/JSON at line \d+/)
    assert.ok(!broken.includes('hunter2'), broken)
  })

  it('refuses a reload with a lower or equal version', () => {
    const a = parseConfig(`version: 3\n${minimal}`)
    const b = parseConfig(`version: 3\n${minimal}`)
    const c = parseConfig(`version: 4\n${minimal}`)
    assert.throws(
      () => assertNewerVersion(a, b),
      (e: ConfigError) => e.code === 'FRESHET_CONFIG_VERSION',
    )
    assert.doesNotThrow(() => assertNewerVersion(a, c))
  })

  it('redacts passwords in URLs, proxy users and the admin token', () => {
    const c = parseConfig(`
cluster:
  primary: { name: primary, url: "postgres://app:hunter2@db/main" }
  replicas: [{ name: r1, url: "host=db2 user=app password=hunter3" }]
proxy: { auth: { users: { app: { password: hunter4 } } } }
admin: { token: hunter5 }
`)
    const text = JSON.stringify(redactConfig(c))
    for (const secret of ['hunter2', 'hunter3', 'hunter4', 'hunter5'])
      assert.ok(!text.includes(secret), secret)
    assert.ok(text.includes('postgres://app:***@db/main'))
  })

  it('ships a JSON Schema file that matches the zod schema', () => {
    const shipped = JSON.parse(
      readFileSync(new URL('../../../../schema/freshet.schema.json', import.meta.url), 'utf8'),
    )
    assert.deepEqual(
      shipped,
      JSON.parse(JSON.stringify(configJsonSchema())),
      'run: npx tsx scripts/gen-schema.ts',
    )
  })
})
