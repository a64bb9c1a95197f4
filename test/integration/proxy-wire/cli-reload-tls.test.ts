// `freshet proxy --config` as a child process: SIGHUP and a change of the file reload a newer config,
// an invalid or older one is refused (logged and counted); TLS with pg and psql.

import assert from 'node:assert/strict'
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import pg from 'pg'
import { type LocalCluster, startCluster } from '../../cluster/index.js'
import { configFor } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'
import { selfSignedCertificate } from '../../support/tls-certificate.js'

const run = promisify(execFile)
const CLI = fileURLToPath(new URL('../../support/run-cli.ts', import.meta.url))

/** The CLI's stdout so far, and a wait for a line matching a pattern. */
function watchOutput(child: ChildProcess): { text(): string; line(re: RegExp): Promise<RegExpExecArray> } {
  let out = ''
  const waiters: Array<() => void> = []
  const onData = (d: Buffer) => {
    out += d
    for (const w of waiters.splice(0)) w()
  }
  child.stdout!.on('data', onData)
  child.stderr!.on('data', onData)
  return {
    text: () => out,
    line: (re) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const m = re.exec(out)
          if (m) resolve(m)
          else if (child.exitCode !== null) reject(new Error(`the CLI exited:\n${out}`))
          else waiters.push(check)
        }
        child.once('exit', check)
        check()
      }),
  }
}

describe('freshet proxy CLI: config reloads and TLS', { timeout: 180_000 }, () => {
  let cluster: LocalCluster
  let dir: string
  let child: ChildProcess
  let output: ReturnType<typeof watchOutput>
  let proxyPort: number
  let adminUrl: string
  const configPath = () => join(dir, 'freshet.yaml')

  function writeConfig(version: number, controls: Record<string, unknown> = {}): void {
    const config = configFor(cluster, {
      version,
      proxy: {
        listen: '127.0.0.1:0',
        auth: { type: 'scram-sha-256', users: { app: { password: 'app' } } },
        tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') },
      },
      admin: { listen: '127.0.0.1:0' },
      telemetry: { log_level: 'info' },
      controls,
    })
    // JSON is YAML
    writeFileSync(configPath(), JSON.stringify(config, null, 2))
  }

  async function adminConfig(): Promise<{ version: number; controls: { route_all_to_primary: boolean } }> {
    const res = await fetch(`${adminUrl}/api/v1/config`)
    assert.equal(res.status, 200)
    return (await res.json()) as { version: number; controls: { route_all_to_primary: boolean } }
  }

  /** Whether a plain read at the eventual tier (else it goes to the primary) ran on a replica, over TLS. */
  async function readRanOnReplica(): Promise<boolean> {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: proxyPort,
      user: 'app',
      password: 'app',
      database: 'freshet',
      ssl: { rejectUnauthorized: false },
      options: '-c freshet.freshness=eventual',
    })
    await client.connect()
    try {
      const r = await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')
      return r.rows[0]!.r
    } finally {
      await client.end()
    }
  }

  before(async () => {
    cluster = await startCluster({ replicas: 1 })
    dir = mkdtempSync(join(tmpdir(), 'freshet-cli-test-'))
    await selfSignedCertificate(dir, 'localhost', { cert: 'cert.pem', key: 'key.pem' })
    await cluster.waitForCatchUp()
    writeConfig(1)
    child = spawn(process.execPath, ['--import', 'tsx', CLI, 'proxy', '--config', configPath()], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    output = watchOutput(child)
    proxyPort = Number((await output.line(/freshet proxy listening on [^\s]*:(\d+)/))[1])
    adminUrl = (await output.line(/admin API and dashboard on (http:\/\/\S+?)\/?\s/))[1]!
  })

  after(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      await exited
    }
    await cluster?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('opens min_idle server connections per node at start, before any client', async () => {
    // configFor sets pools.{primary,replicas}.min_idle = 1; the proxy logs in as the node URL's user
    const idle = async () => {
      const text = await (await fetch(`${adminUrl}/metrics`)).text()
      return [...text.matchAll(/^pool_connections\{host="([^"]+)",state="idle"\} (\d+)$/gm)].map((m) => [
        m[1],
        Number(m[2]),
      ])
    }
    await eventually('every node has an idle connection', async () => {
      const byNode = await idle()
      return byNode.length === 2 && byNode.every(([, n]) => (n as number) >= 1)
    })
  })

  it('serves over TLS: pg with ssl, psql with sslmode=require', async () => {
    await eventually('a read reaches the replica', () => readRanOnReplica(), 30_000)
    const { stdout } = await run(
      'psql',
      [`postgres://app:app@127.0.0.1:${proxyPort}/freshet?sslmode=require`, '-Atc', 'SELECT 41 + 1'],
      { env: { ...process.env, PGCONNECT_TIMEOUT: '10' } },
    )
    assert.equal(stdout.trim(), '42')
    // the client is told TLS is on: psql reports the cipher of its connection
    const { stdout: info } = await run('psql', [
      `postgres://app:app@127.0.0.1:${proxyPort}/freshet?sslmode=require`,
      '-c',
      '\\conninfo',
    ])
    assert.match(info, /SSL connection/)
  })

  /** `freshet_config_reloads_total` by result, summed over sources (file watch and SIGHUP race). */
  async function reloads(result: string): Promise<number> {
    const text = await (await fetch(`${adminUrl}/metrics`)).text()
    const re = new RegExp(
      `^freshet_config_reloads_total\\{source="(?:file|sighup)",result="${result}"\\} (\\d+)$`,
      'gm',
    )
    return [...text.matchAll(re)].reduce((sum, m) => sum + Number(m[1]), 0)
  }

  it('SIGHUP applies a newer config file (the file watch may be first: then SIGHUP finds it unchanged)', async () => {
    assert.equal((await adminConfig()).version, 1)
    writeConfig(2, { route_all_to_primary: true })
    child.kill('SIGHUP')
    await eventually('the admin API shows version 2', async () => (await adminConfig()).version === 2)
    assert.equal((await adminConfig()).controls.route_all_to_primary, true)
    assert.equal(await reloads('applied'), 1)
    // and the proxy acts on it: reads go to the primary now
    assert.equal(await readRanOnReplica(), false)
  })

  it('SIGHUP refuses an invalid file and an older version; the running config keeps serving', async () => {
    writeFileSync(configPath(), 'version: 3\ncluster: [this is not a cluster\n')
    child.kill('SIGHUP')
    await output.line(/refused \(invalid\); still running version 2/)
    writeConfig(1)
    child.kill('SIGHUP')
    await output.line(/refused \(version\); still running version 2/)
    const config = await adminConfig()
    assert.equal(config.version, 2)
    assert.equal(config.controls.route_all_to_primary, true)
    assert.ok((await reloads('invalid')) >= 1)
    assert.ok((await reloads('version')) >= 1)
    assert.equal(await readRanOnReplica(), false)
  })

  it('a change of the config file applies without a signal', async () => {
    writeConfig(3, { route_all_to_primary: false })
    await eventually('the admin API shows version 3', async () => (await adminConfig()).version === 3)
    // the log line comes right after the swap: wait for it rather than read the output at once
    await output.line(/config version 3 applied from \S+ \(file\)/)
    assert.match(output.text(), /"route_all_to_primary":false[^\n]*"msg":"emergency controls changed"/)
    await eventually('reads reach the replica again', () => readRanOnReplica())
  })
})
