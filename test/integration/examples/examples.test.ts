// Every example under examples/ runs against one `freshet sandbox` exactly as its header says, and what it
// prints about where each statement ran (node and port, read from the server) matches the sandbox's nodes.

import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { runCommand } from '../../support/run-command.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const CLI = fileURLToPath(new URL('../../support/run-cli.ts', import.meta.url))
/** What the headers may say: the sandbox's defaults. */
const DEFAULTS: Readonly<Record<string, string>> = {
  FRESHET_CONFIG: 'freshet.yaml',
  FRESHET_URL: 'postgres://app:app@127.0.0.1:6432/freshet',
}

interface Example {
  readonly file: string
  readonly env: Record<string, string>
  readonly command: string[]
}

/** The `Run` command of every example file that has one, e.g. `FRESHET_CONFIG=freshet.yaml npx tsx examples/pg/index.ts`. */
function examples(): Example[] {
  const found: Example[] = []
  const dir = join(ROOT, 'examples')
  for (const name of readdirSync(dir, { withFileTypes: true })) {
    if (!name.isDirectory()) continue
    for (const file of readdirSync(join(dir, name.name))) {
      if (!file.endsWith('.ts')) continue
      const path = join(dir, name.name, file)
      const header = readFileSync(path, 'utf8').split('\n').slice(0, 12)
      // this test boots the PostgreSQL sandbox; examples for another engine say so in their header
      if (header.some((l) => /freshet sandbox --engine/.test(l))) continue
      const run = header.map((l) => /^\/\/\s+((?:[A-Z_]+=\S+\s+)+)(npx tsx \S+)$/.exec(l)).find(Boolean)
      if (!run) continue
      const env = Object.fromEntries(
        run[1]!
          .trim()
          .split(/\s+/)
          .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
      )
      found.push({ file: relative(ROOT, path), env, command: run[2]!.split(' ') })
    }
  }
  return found
}

interface Sandbox {
  readonly child: ChildProcess
  readonly exited: Promise<number | null>
  readonly ports: Map<string, number>
  readonly proxyUrl: string
  readonly configPath: string
}

async function startSandbox(configPath: string): Promise<Sandbox> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', CLI, 'sandbox', '--port', '0', '--admin-port', '0', '--config', configPath],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let stderr = ''
  child.stderr!.on('data', (chunk) => {
    stderr += chunk
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const ports = new Map<string, number>()
  let proxyUrl = ''
  const output: string[] = []
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output.push(line)
      const node = /^\s+(primary|replica_\d+)\s+postgres:\/\/\S+:(\d+)\/freshet/.exec(line)
      if (node) ports.set(node[1]!, Number(node[2]))
      const proxy = /^proxy:\s+(postgres:\/\/\S+)/.exec(line)
      if (proxy) proxyUrl = proxy[1]!
      if (line.startsWith('hint:')) resolve()
    })
    exited.then((code) =>
      reject(new Error(`sandbox exited (${code}) early:\n${output.join('\n')}\n${stderr}`)),
    )
  })
  return { child, exited, ports, proxyUrl, configPath }
}

describe('examples against one sandbox', { timeout: 600_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'freshet-examples-'))
  let sandbox: Sandbox | undefined
  const list = examples()
  /** Examples in which some statement ran on a replica (read from the server). */
  const onReplica = new Set<string>()

  before(async () => {
    sandbox = await startSandbox(join(dir, 'freshet.yaml'))
  })

  after(async () => {
    if (sandbox) {
      sandbox.child.kill('SIGINT')
      assert.equal(await sandbox.exited, 0)
    }
    rmSync(dir, { recursive: true, force: true })
  })

  it('finds a Run header in every example directory', () => {
    const dirs = readdirSync(join(ROOT, 'examples'), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
    for (const d of dirs.filter((x) => x !== 'mysql'))
      assert.ok(
        list.some((e) => e.file.startsWith(`examples/${d}/`)),
        `examples/${d}`,
      )
    for (const e of list) {
      for (const [key, value] of Object.entries(e.env)) {
        assert.equal(value, DEFAULTS[key], `${e.file}: ${key} in its header is not what the sandbox gives`)
      }
    }
  })

  for (const example of list) {
    it(`${example.file} runs as its header says and prints where each statement ran`, async () => {
      const s = sandbox!
      // the header's values are the sandbox's defaults (checked above); this sandbox has its own ports
      const actual: Record<string, string> = { FRESHET_CONFIG: s.configPath, FRESHET_URL: s.proxyUrl }
      const env = Object.fromEntries(Object.keys(example.env).map((k) => [k, actual[k]!]))
      const {
        status: code,
        stdout,
        stderr,
      } = await runCommand(example.command[0]!, example.command.slice(1), {
        cwd: ROOT,
        env: { ...process.env, ...env },
      })
      assert.equal(code, 0, `${example.file} failed:\n${stdout}\n${stderr}`)
      const ran = stdout
        .split('\n')
        .map((l) => /^(.+): ran on (\S+) \(port (\d+)\)$/.exec(l))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => ({ label: m[1]!, node: m[2]!, port: Number(m[3]) }))
      assert.doesNotMatch(stdout, /no row came back/)
      assert.ok(ran.length >= 2, `${example.file} printed too little routing:\n${stdout}`)
      for (const r of ran) {
        assert.equal(s.ports.get(r.node), r.port, `${r.label}: ${r.node} is not on port ${r.port}`)
        if (r.label.startsWith('write')) assert.equal(r.node, 'primary', r.label)
      }
      assert.ok(
        ran.some((r) => r.label.startsWith('write')),
        `${example.file}: no write shown:\n${stdout}`,
      )
      // an eventual read may fall back to the primary on a loaded machine (no fresh lag reading yet):
      // that is correct routing, so the replica check is over the whole run (below)
      if (ran.some((r) => r.node.startsWith('replica_'))) onReplica.add(example.file)
    })
  }

  it('sent reads to replicas in most examples (server-reported)', () => {
    assert.ok(
      onReplica.size * 2 >= list.length,
      `only ${[...onReplica].join(', ') || 'none'} of ${list.length} examples read from a replica`,
    )
  })
})
