// check-config's promises: node URLs are validated (scheme, host, port range, database) and every error,
// structural or cross-reference, is reported in one pass with its key path.

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { nodeUrlIssue } from '../../../../src/core/config/node-url.js'
import { parseConfig } from '../../../../src/core/config/parse-config.js'
import { ConfigError } from '../../../../src/core/errors.js'

const CLI = fileURLToPath(new URL('../../../support/run-cli.ts', import.meta.url))

function issuesOf(text: string): string[] {
  try {
    parseConfig(text)
  } catch (err) {
    assert.ok(err instanceof ConfigError)
    return err.issues.map((i) => `${i.path}: ${i.message}`)
  }
  return []
}

describe('node URLs', () => {
  const cases: [url: string, engine: 'postgres' | 'mysql', problem: RegExp | null][] = [
    ['postgres://app@db:5432/main', 'postgres', null],
    ['postgresql://app:s%40cret@db/main?sslmode=require', 'postgres', null],
    ['postgres://x', 'postgres', null], // database defaults to the user's name, as in libpq
    ['postgres://app@[::1]:5432/main', 'postgres', null],
    ['postgres://app@/main?host=/var/run/postgresql', 'postgres', null],
    ['mysql://app@db:3306/main', 'mysql', null],
    ['host=db2 user=app password=hunter3', 'postgres', null],
    ["host=db port=5432 password='it''s' dbname=main", 'postgres', /keyword=value/],
    ["host=db password='a \\' b' dbname=main", 'postgres', null],
    ['host=db port=99999', 'postgres', /^port '99999'/],
    ['not a url', 'postgres', /^not a URL/],
    ['http://x:99999', 'postgres', /^scheme 'http' is not postgres:\/\/ or postgresql:\/\/$/],
    ['mysql://app@db/main', 'postgres', /needs engine: mysql/],
    ['postgres://app@db/main', 'mysql', /^scheme 'postgres' is not mysql:\/\//],
    ['postgres://app@:5432/main', 'postgres', /^names no host/],
    ['postgres://db:0/main', 'postgres', /^port '0' is not a number from 1 to 65535/],
    ['postgres://db:65536/main', 'postgres', /^port '65536'/],
    ['postgres://db:54x/main', 'postgres', /^port '54x'/],
    ['postgres://db/a/b', 'postgres', /one path segment/],
    ['postgres://db/%zz', 'postgres', /percent-encoding/],
  ]
  for (const [url, engine, problem] of cases) {
    it(`${url} (${engine}) -> ${problem ?? 'valid'}`, () => {
      const got = nodeUrlIssue(url, engine)
      if (problem === null) assert.equal(got, null)
      else assert.match(got ?? '', problem)
    })
  }
})

describe('one pass', () => {
  it('reports structural errors, URL errors and cross-references together, each with its key path', () => {
    const issues = issuesOf(`
cluster:
  primary: { name: primary, url: "not a url" }
  replicas:
    - { name: r1, url: "http://x:99999" }
    - { name: r1, url: "postgres://h/db", weight: heavy }
routing:
  unannotated: fresh
  tiers: { near_rt: { max_lag_ms: -1 } }
domains: { ledger: strictest }
`)
    const paths = issues.map((i) => i.slice(0, i.indexOf(':')))
    assert.deepEqual(paths.sort(), [
      'cluster.primary.url',
      'cluster.replicas[0].url',
      'cluster.replicas[1].name',
      'cluster.replicas[1].weight',
      'domains.ledger',
      'routing.tiers.near_rt.max_lag_ms',
      'routing.unannotated',
    ])
  })

  it('refuses an admin console database that a node really has', () => {
    const issues = issuesOf(`
cluster:
  primary: { name: primary, url: "postgres://app@db/main" }
  replicas: [{ name: r1, url: "host=db2 dbname=freshet_ops" }]
proxy: { admin: { database: freshet_ops } }
`)
    assert.deepEqual(issues, [
      "proxy.admin.database: 'freshet_ops' is the database of cluster.replicas[0]: the admin console needs a name no real database has",
    ])
    const byDefault = issuesOf('cluster:\n  primary: { name: p, url: "postgres://app@db/freshet_admin" }\n')
    assert.deepEqual(byDefault.length, 1)
  })

  it('does not invent cross-reference errors when a whole section is malformed', () => {
    const issues = issuesOf(
      'cluster: 3\nrouting: { tiers: nope, unannotated: eventual }\ndomains: { t: eventual }\n',
    )
    assert.deepEqual(
      issues.map((i) => i.slice(0, i.indexOf(':'))),
      ['cluster', 'routing.tiers'],
    )
  })

  it('freshet check-config prints every error and exits 1', () => {
    const dir = mkdtempSync(join(tmpdir(), 'freshet-check-'))
    try {
      const file = join(dir, 'bad.yaml')
      writeFileSync(file, 'cluster:\n  primary: { name: p, url: "http://x:99999" }\ndomains: { t: nope }\n')
      const run = spawnSync(process.execPath, ['--import', 'tsx', CLI, 'check-config', file], {
        encoding: 'utf8',
      })
      assert.equal(run.status, 1, run.stderr)
      assert.match(run.stderr, /invalid, 2 errors/)
      assert.match(run.stderr, /cluster\.primary\.url: scheme 'http' is not postgres:\/\/ or postgresql:\/\//)
      assert.match(run.stderr, /domains\.t: unknown tier 'nope'/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
