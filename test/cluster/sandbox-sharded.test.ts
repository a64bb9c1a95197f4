// `freshet sandbox --shards 2` as a user runs it: boots two shards and the aggregate node, prints where they
// are, starts the sharded proxy, writes a sharded config that createPool routes with, serves the dashboard,
// stops all on Ctrl-C.

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import YAML from 'yaml'
import { parseSandboxArgs } from '../../src/cli/sandbox.js'
import { createShardedPool } from '../../src/library/create-pool.js'
import { eventually } from '../support/eventually.js'
import { processesUnder } from '../support/processes.js'

const CLI = fileURLToPath(new URL('../support/run-cli.ts', import.meta.url))

test('--shards: one replica per shard unless --replicas says otherwise; bad values name the option', () => {
  assert.deepEqual(
    { ...parseSandboxArgs(['--shards', '3']) },
    { replicas: 1, lag: {}, shards: 3, help: false },
  )
  assert.equal(parseSandboxArgs(['--shards', '2', '-r', '2']).replicas, 2)
  assert.throws(() => parseSandboxArgs(['--shards', '0']), /--shards 0: expected a whole number 1-8/)
  assert.throws(() => parseSandboxArgs(['--shards', '2', '--engine', 'mariadb']), /PostgreSQL only/)
})

test('freshet sandbox --shards 2 boots shards and the aggregate node, routes by customer id, cleans up on SIGINT', {
  timeout: 180_000,
}, async () => {
  const configDir = mkdtempSync(join(tmpdir(), 'freshet-sandbox-sharded-'))
  const configPath = join(configDir, 'freshet.yaml')
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      CLI,
      'sandbox',
      '--shards',
      '2',
      '--lag',
      's1_replica_1=2s',
      '--port',
      '0',
      '--admin-port',
      '0',
      '-c',
      configPath,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let stderr = ''
  child.stderr.on('data', (chunk) => {
    stderr += chunk
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const output: string[] = []
  const urls = new Map<string, string>()
  let dashboardUrl = ''
  let proxyUrl = ''
  const roots: string[] = []
  try {
    const lines = createInterface({ input: child.stdout })
    await new Promise<void>((resolve, reject) => {
      lines.on('line', (line) => {
        output.push(line)
        const node = /^\s+(s\d_(?:primary|replica_\d+)|aggregate\s+federated)\s+(postgres:\/\/\S+)/.exec(line)
        if (node) urls.set(node[1]!.replace(/\s+/, ' '), node[2]!)
        const dashboard = /^dashboard:\s+(http:\/\/\S+)/.exec(line)
        if (dashboard) dashboardUrl = dashboard[1]!
        const proxy = /^proxy:\s+(postgres:\/\/\S+)/.exec(line)
        if (proxy) proxyUrl = proxy[1]!
        const data = /^\s+data in (.+)$/.exec(line)
        if (data) roots.push(...data[1]!.split(' '))
        if (line.startsWith('hint:')) resolve()
      })
      exited.then((code) =>
        reject(new Error(`sandbox exited (${code}) early:\n${output.join('\n')}\n${stderr}`)),
      )
    })
    assert.deepEqual(
      [...urls.keys()],
      ['s0_primary', 's0_replica_1', 's1_primary', 's1_replica_1', 'aggregate federated'],
    )
    assert.match(output.find((l) => l.includes('s1_replica_1  postgres'))!, /2 s behind/)
    assert.ok(output.some((l) => /^\s+shard_0\s+buckets 0-511 of 1024$/.test(l)))

    // the config it wrote routes through createPool: keyed reads on the shard, cross-shard on the aggregate
    const pool = createShardedPool(configPath)
    try {
      await pool.ready()
      const total = await pool.query('SELECT count(*)::int AS n FROM orders')
      assert.equal(total.rows[0].n, 5000)
      assert.equal(pool.explain('SELECT count(*) FROM orders').target, 'federated')
      const customers = await pool.query(
        'SELECT count(*)::int AS n, count(DISTINCT country)::int AS c FROM customers',
      )
      assert.deepEqual(customers.rows[0], { n: 1000, c: 5 })
      for (const id of [1, 2, 3, 42]) {
        const shard = pool.explain('SELECT * FROM orders WHERE customer_id = $1', undefined, [id]).shard!
          .shard
        const mine = await pool.query(
          "/* FRESHNESS: STRICT */ SELECT count(*)::int AS n, current_setting('port')::int AS port FROM orders WHERE customer_id = $1",
          [id],
        )
        assert.equal(mine.rows[0].n, 5, `customer ${id} has its 5 orders on ${shard}`)
        assert.ok(
          [...urls].some(
            ([name, url]) =>
              name.startsWith(`s${shard.slice(-1)}_`) && url.includes(`:${mine.rows[0].port}/`),
          ),
          `customer ${id} served by a node of ${shard}`,
        )
      }
      const countries = await pool.query("SELECT count(*)::int AS n FROM countries WHERE code = 'DE'")
      assert.equal(countries.rows[0].n, 1)
    } finally {
      await pool.end()
    }
    // the proxy it prints (and wrote into the config) routes by shard: a keyed statement, as a literal and as
    // $1 from Bind, is served by a node of the key's shard
    const written = YAML.parse(readFileSync(configPath, 'utf8')) as {
      proxy: { listen: string }
      admin: { listen: string }
    }
    assert.equal(new URL(proxyUrl).host, written.proxy.listen, 'the config names the proxy port bound')
    assert.equal(new URL(dashboardUrl).host, written.admin.listen)
    const explainer = createShardedPool(configPath)
    const viaProxy = new pg.Client({ connectionString: proxyUrl })
    try {
      await viaProxy.connect()
      for (const id of [1, 2, 3, 42]) {
        const shard = explainer.explain('SELECT * FROM orders WHERE customer_id = $1', undefined, [id]).shard!
          .shard
        const nodeOf = (port: number) =>
          [...urls].find(([, url]) => url.includes(`:${port}/`))?.[0] ?? `unknown port ${port}`
        const bound = await viaProxy.query(
          '/* FRESHNESS: STRICT */ SELECT count(*)::int AS n, inet_server_port() AS port FROM orders WHERE customer_id = $1',
          [id],
        )
        assert.equal(bound.rows[0].n, 5, `customer ${id} has its 5 orders on ${shard} (proxy, $1)`)
        assert.match(nodeOf(bound.rows[0].port), new RegExp(`^s${shard.slice(-1)}_`), `customer ${id}: $1`)
        const literal = await viaProxy.query(
          `SELECT count(*)::int AS n, inet_server_port() AS port FROM orders WHERE customer_id = ${id}`,
        )
        assert.equal(literal.rows[0].n, 5)
        assert.match(
          nodeOf(literal.rows[0].port),
          new RegExp(`^s${shard.slice(-1)}_`),
          `customer ${id}: literal`,
        )
      }
      const all = await viaProxy.query('SELECT count(*)::int AS n, inet_server_port() AS port FROM orders')
      assert.equal(all.rows[0].n, 5000)
      assert.equal(
        [...urls].find(([, url]) => url.includes(`:${all.rows[0].port}/`))?.[0],
        'aggregate federated',
      )
    } finally {
      await viaProxy.end().catch(() => {})
      await explainer.end()
    }
    // the dashboard and the topology it prints show the shards
    assert.equal((await fetch(dashboardUrl)).status, 200)
    const topology = (await (await fetch(new URL('/api/v1/topology', dashboardUrl))).json()) as {
      shards: { name: string; primary: string }[]
    }
    assert.deepEqual(
      topology.shards.map((s) => [s.name, s.primary]),
      [
        ['shard_0', 's0_primary'],
        ['shard_1', 's1_primary'],
        ['@aggregate', 'federated'],
      ],
    )
  } finally {
    child.kill('SIGINT')
  }
  assert.equal(await exited, 0, stderr)
  assert.ok(output.some((l) => l.startsWith('stopped every server')))
  assert.equal(existsSync(configPath), false, 'the sandbox removes the config it wrote')
  rmSync(configDir, { recursive: true, force: true })
  assert.equal(roots.length, 3)
  for (const root of roots) assert.equal(existsSync(root), false, `${root} removed`)
  await eventually(
    'no server of the sandbox left',
    () => roots.every((r) => processesUnder(r).length === 0),
    5000,
  )
})
