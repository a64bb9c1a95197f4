// `freshet sandbox` as a user runs it: boots, prints connection strings that work, stops on Ctrl-C.

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { parseDuration } from '../../src/cli/sandbox.js'
import { eventually, processesUnder } from './fixtures/processes.js'

const CLI = fileURLToPath(new URL('./fixtures/run-cli.ts', import.meta.url))

async function queryOne(url: string, sql: string): Promise<Record<string, unknown>> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query(sql)).rows[0]
  } finally {
    await client.end()
  }
}

test('durations parse as the CLI documents them', () => {
  assert.equal(parseDuration('500ms'), 500)
  assert.equal(parseDuration('12s'), 12_000)
  assert.equal(parseDuration('1.5s'), 1500)
  assert.equal(parseDuration('1m'), 60_000)
  assert.equal(parseDuration('250'), 250)
  assert.throws(() => parseDuration('12 parsecs'), /invalid duration/)
})

test('freshet sandbox prints working connection strings and cleans up on SIGINT', {
  timeout: 60_000,
}, async () => {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', CLI, 'sandbox', '--replicas', '2', '--lag', 'replica_2=3s'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let stderr = ''
  child.stderr.on('data', (chunk) => {
    stderr += chunk
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const output: string[] = []
  const urls = new Map<string, string>()
  let root = ''
  let proxyUrl = ''
  let dashboardUrl = ''
  try {
    const lines = createInterface({ input: child.stdout })
    await new Promise<void>((resolve, reject) => {
      lines.on('line', (line) => {
        output.push(line)
        const node = /^\s+(primary|replica_\d+)\s+(postgres:\/\/\S+)/.exec(line)
        if (node) urls.set(node[1]!, node[2]!)
        const dir = /\(data in (\S+)\)/.exec(line)
        if (dir) root = dir[1]!
        const proxy = /^proxy:\s+(postgres:\/\/\S+)/.exec(line)
        if (proxy) proxyUrl = proxy[1]!
        const dashboard = /^dashboard:\s+(http:\/\/\S+)/.exec(line)
        if (dashboard) dashboardUrl = dashboard[1]!
        if (line.startsWith('hint:')) resolve()
      })
      exited.then((code) =>
        reject(new Error(`sandbox exited (${code}) early:\n${output.join('\n')}\n${stderr}`)),
      )
    })
    assert.ok(output.some((l) => /^starting primary on 127\.0\.0\.1:\d+\.\.\.$/.test(l)))
    assert.ok(output.includes('replica_1 streaming'))
    assert.deepEqual([...urls.keys()], ['primary', 'replica_1', 'replica_2'])
    assert.match(output.find((l) => l.includes('replica_2  postgres'))!, /3 s behind/)
    assert.ok(existsSync(root))

    const onReplica = await queryOne(
      urls.get('replica_1')!,
      'SELECT pg_is_in_recovery() AS standby, current_user AS who, (SELECT count(*)::int FROM orders) AS orders',
    )
    assert.deepEqual(onReplica, { standby: true, who: 'app', orders: 5000 })
    const delay = await queryOne(urls.get('replica_2')!, 'SHOW recovery_min_apply_delay')
    assert.equal(delay.recovery_min_apply_delay, '3s')

    // the proxy it prints routes: a hinted read reaches a standby, an unannotated one the primary
    assert.match(proxyUrl, /^postgres:\/\/app:app@127\.0\.0\.1:\d+\/freshet$/)
    const hinted = await queryOne(
      proxyUrl,
      '/* FRESHNESS: EVENTUAL */ SELECT pg_is_in_recovery() AS standby, (SELECT count(*)::int FROM orders) AS orders',
    )
    assert.deepEqual(hinted, { standby: true, orders: 5000 })
    assert.deepEqual(await queryOne(proxyUrl, 'SELECT pg_is_in_recovery() AS standby'), { standby: false })
    // and the dashboard it prints is served
    const page = await fetch(dashboardUrl)
    assert.equal(page.status, 200)
    assert.match(page.headers.get('content-type') ?? '', /text\/html/)
    assert.match(await page.text(), /freshet/i)
  } finally {
    child.kill('SIGINT')
  }
  assert.equal(await exited, 0, stderr)
  assert.ok(output.some((l) => l.startsWith('stopped every server')))
  assert.equal(existsSync(root), false)
  assert.ok(await eventually(() => processesUnder(root).length === 0, 5000))
})
