#!/usr/bin/env node
// Runs the test suite with node's test runner over TypeScript sources (through tsx).
// Usage: node scripts/run-tests.mjs [dir-or-file ...]   (default: test/unit then test/integration)
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

const roots = process.argv.slice(2)
const targets = roots.length > 0 ? roots : ['test/unit', 'test/cluster', 'test/integration']

function collect(path, out) {
  let st
  try {
    st = statSync(path)
  } catch {
    return out
  }
  if (st.isFile()) {
    if (/\.test\.ts$/.test(path)) out.push(path)
    return out
  }
  for (const entry of readdirSync(path).sort()) collect(join(path, entry), out)
  return out
}

const files = targets.flatMap((t) => collect(t, []))
if (files.length === 0) {
  console.error(`no test files under ${targets.join(', ')}`)
  process.exit(1)
}
const concurrency = process.env.FRESHET_TEST_CONCURRENCY ?? '2'
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files],
  { stdio: 'inherit' },
)
process.exit(result.status ?? 1)
