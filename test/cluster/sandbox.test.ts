// `freshet sandbox` as a user runs it: boots, prints connection strings that work, stops on Ctrl-C.

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { loadConfigFile } from '../../src/backend/config-file.js'
import { parseSandboxArgs, sandboxUsage } from '../../src/cli/sandbox.js'
import { parseDuration } from '../../src/cli/sandbox-support.js'
import { eventually } from '../support/eventually.js'
import { processesUnder } from '../support/processes.js'

const CLI = fileURLToPath(new URL('../support/run-cli.ts', import.meta.url))

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

test('sandbox options come from one table: usage lists each, bad values name the option', () => {
  for (const flag of [
    '--replicas N',
    '--lag NAME=DURATION',
    '--port PORT',
    '--admin-port PORT',
    '--config FILE',
  ]) {
    assert.ok(sandboxUsage().includes(flag), flag)
  }
  const request = parseSandboxArgs([
    '-r',
    '1',
    '--lag',
    'replica_1=2s',
    '--port',
    '0',
    '--admin-port',
    '7000',
  ])
  assert.deepEqual(
    { ...request },
    { replicas: 1, lag: { replica_1: 2000 }, port: 0, adminPort: 7000, help: false },
  )
  assert.throws(() => parseSandboxArgs(['--port', '70000']), /--port 70000: expected a port 0-65535/)
  assert.throws(() => parseSandboxArgs(['--admin-port', 'x']), /--admin-port x/)
  assert.throws(() => parseSandboxArgs(['--replicas=-1']), /--replicas -1/)
  assert.throws(() => parseSandboxArgs(['--lag', 'replica_1']), /--lag replica_1: expected NAME=DURATION/)
  assert.throws(() => parseSandboxArgs(['--nope']), /nope/)
})

test('freshet sandbox prints working connection strings, writes its config and cleans up on SIGINT', {
  timeout: 120_000,
}, async () => {
  const configDir = mkdtempSync(join(tmpdir(), 'freshet-sandbox-test-'))
  const configPath = join(configDir, 'freshet.yaml')
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      CLI,
      'sandbox',
      '--replicas',
      '2',
      '--lag',
      'replica_2=3s',
      '--port',
      '0',
      '--admin-port',
      '0',
      '--config',
      configPath,
    ],
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
  let printedConfig = ''
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
        const config = /^config:\s+(\S+)/.exec(line)
        if (config) printedConfig = config[1]!
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
    // the proxy logs in to the servers as the ordinary role app, never as the superuser
    const logins = await queryOne(
      urls.get('primary')!,
      "SELECT array_agg(DISTINCT usename::text) AS users FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
    )
    assert.deepEqual(logins.users, ['app'])
    // the config it writes names the bound ports and loads as a library config
    assert.equal(printedConfig, configPath)
    assert.ok(output.some((l) => l.startsWith(`library:    const pool = createPool('`)))
    const config = await loadConfigFile(configPath)
    assert.equal(`postgres://app:app@${config.proxy.listen}/freshet`, proxyUrl)
    assert.equal(`http://${config.admin.listen}/`, dashboardUrl)
    assert.deepEqual(
      config.cluster.replicas.map((r) => r.url),
      [urls.get('replica_1'), urls.get('replica_2')],
    )
    // the admin console it prints answers SHOW NODES over the wire protocol
    const admin = output.find((l) => l.startsWith('admin:'))
    const adminUrl = /psql '(postgres:\/\/\S+)'/.exec(admin ?? '')?.[1]
    assert.ok(adminUrl, admin)
    const nodes = new pg.Client({ connectionString: adminUrl })
    await nodes.connect()
    try {
      const names = (await nodes.query('SHOW NODES')).rows.map((r) => r.name)
      assert.deepEqual(names.sort(), ['primary', 'replica_1', 'replica_2'])
    } finally {
      await nodes.end()
    }
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
  assert.equal(existsSync(configPath), false, 'the sandbox removes the config it wrote')
  rmSync(configDir, { recursive: true, force: true })
  await eventually('no process left under the cluster root', () => processesUnder(root).length === 0, 5000)
})
