// Fuzzing the config loader (seeded, bounded): random YAML/JSON and mutated valid configs either parse or
// throw ConfigError whose issues name key paths, nothing else.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { parseConfig } from '../../../../src/core/config/parse-config.js'
import { ConfigError } from '../../../../src/core/errors.js'
import { seededRandom } from '../../../chaos/seeded-random.js'

const ITERATIONS = 1500
type Rand = () => number

const VALID: Record<string, unknown> = {
  version: 3,
  cluster: {
    primary: { name: 'primary', url: 'postgres://app:secret@db:5432/main' },
    replicas: [
      { name: 'replica_1', url: 'postgres://app@r1:5432/main', weight: 100, zone: 'eu-1' },
      { name: 'replica_2', url: 'postgres://app@r2:5432/main' },
    ],
  },
  routing: {
    policy: 'least_lag',
    unannotated: 'primary',
    tiers: { strict: { max_lag_ms: 0 }, near_rt: { max_lag_ms: 500, fallback: 'primary' } },
  },
  domains: { ledger: 'strict' },
  lag: { interval_ms: 250, heartbeat: { enabled: true, interval_ms: 250 } },
  pools: { primary: { min_idle: 1, max_active: 5 } },
  proxy: { listen: '127.0.0.1:6432', auth: { type: 'md5', users: { app: { password: 'pw' } } } },
  admin: { listen: '127.0.0.1:9187', token: null },
}

const ODD_VALUES: unknown[] = [
  null,
  -1,
  0,
  1.5,
  1e308,
  '',
  'x',
  '${UNSET_VAR}',
  '${HOME:-d}',
  true,
  [],
  {},
  [1, 'a'],
  { a: { b: {} } },
  '127.0.0.1:99999',
  'postgres://',
  'NaN',
]

/** Every key path of a document, as arrays of keys. */
function paths(value: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []) {
  if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const key = Array.isArray(value) ? Number(k) : k
      out.push([...prefix, key])
      paths(v, [...prefix, key], out)
    }
  }
  return out
}

function mutateDocument(rand: Rand): unknown {
  const doc = structuredClone(VALID)
  const all = paths(doc)
  for (let k = 1 + Math.floor(rand() * 3); k > 0; k--) {
    const path = all[Math.floor(rand() * all.length)]!
    // biome-ignore lint/suspicious/noExplicitAny: walks an arbitrary JSON document
    let parent: any = doc
    for (const key of path.slice(0, -1)) parent = parent?.[key]
    if (parent === null || typeof parent !== 'object') continue
    const last = path.at(-1)!
    const r = rand()
    if (r < 0.5) parent[last] = ODD_VALUES[Math.floor(rand() * ODD_VALUES.length)]
    else if (r < 0.7) delete parent[last]
    else parent[`${String(last)}_typo`] = 1
  }
  return doc
}

function mutateText(rand: Rand, text: string): string {
  let s = text
  for (let k = 1 + Math.floor(rand() * 4); k > 0; k--) {
    const at = Math.floor(rand() * (s.length + 1))
    const junk = [
      ':',
      '-',
      ' ',
      '\n',
      '{',
      '}',
      '[',
      ']',
      '"',
      "'",
      '&a',
      '*a',
      '!!binary',
      '? ',
      '|',
      '#',
      '\t',
      '%YAML 1.2\n---\n',
    ]
    const r = rand()
    if (r < 0.4) s = s.slice(0, at) + junk[Math.floor(rand() * junk.length)]! + s.slice(at)
    else if (r < 0.8) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rand() * 10))
    else s = s.slice(0, at)
  }
  return s
}

/** Parses or throws a ConfigError with issues; the key path is set whenever the document was a mapping. */
function check(text: string): 'ok' | 'error' {
  try {
    parseConfig(text, { env: { HOME: '/h' } })
    return 'ok'
  } catch (err) {
    if (!(err instanceof ConfigError))
      assert.fail(`not a ConfigError for ${JSON.stringify(text)}: ${(err as Error)?.stack ?? err}`)
    assert.ok(err.issues.length > 0, 'a ConfigError without issues')
    for (const issue of err.issues) {
      assert.equal(typeof issue.path, 'string')
      assert.ok(issue.message.length > 0)
      const syntax = /^(not valid YAML\/JSON|the config must be a mapping)/.test(issue.message)
      if (!syntax)
        assert.notEqual(
          issue.path,
          '',
          `an issue without a key path: ${issue.message} for ${JSON.stringify(text)}`,
        )
    }
    return 'error'
  }
}

describe('config loader fuzz', () => {
  // The loader must not print anything: a YAML warning quotes the config line, which may hold a secret.
  const warnings: string[] = []
  const onWarning = (w: Error) => warnings.push(w.message)
  before(() => process.on('warning', onWarning))
  after(() => {
    process.off('warning', onWarning)
    assert.deepEqual(warnings, [])
  })

  it('accepts the valid seed document', () => {
    assert.equal(check(JSON.stringify(VALID)), 'ok')
  })

  it('mutated valid documents (JSON): parse or ConfigError with key paths', () => {
    const rand = seededRandom(0x1234)
    const outcomes = { ok: 0, error: 0 }
    for (let i = 0; i < ITERATIONS; i++) outcomes[check(JSON.stringify(mutateDocument(rand)))]++
    assert.ok(outcomes.error > 0 && outcomes.ok > 0, JSON.stringify(outcomes))
  })

  it('mutated YAML and JSON text: parse or ConfigError, nothing else', () => {
    const rand = seededRandom(0x4321)
    const yaml = [
      'version: 2',
      'cluster:',
      '  primary: { name: primary, url: "postgres://app:pw@db/main" }',
      '  replicas:',
      '    - { name: r1, url: "postgres://app@r1/main" }',
      'routing:',
      '  tiers:',
      '    eventual: { max_lag_ms: 60000, fallback: least_lagged }',
      'admin: { token: "${HOME}" }',
    ].join('\n')
    for (let i = 0; i < ITERATIONS; i++) {
      check(mutateText(rand, i % 2 === 0 ? yaml : JSON.stringify(VALID, null, 1)))
    }
  })

  it('hostile YAML: alias bombs, deep nesting, tags, non-mapping roots', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]']
    for (let i = 0; i < 12; i++)
      bomb.push(
        `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}]`,
      )
    const cases = [
      bomb.join('\n'),
      `${'['.repeat(5000)}${']'.repeat(5000)}`,
      `${'{a: '.repeat(2000)}1${'}'.repeat(2000)}`,
      'version: !!binary aGVsbG8=',
      'version: !!js/function "function () {}"',
      '--- 1\n--- 2',
      '42',
      '"string"',
      '[1, 2]',
      '',
      '~',
      '\u0000',
      'version: 1\nversion: 2',
      '__proto__: { polluted: true }\nversion: 1',
      'constructor: { prototype: { x: 1 } }',
    ]
    for (const text of cases) check(text)
    assert.equal(({} as Record<string, unknown>).polluted, undefined)
  })
})
