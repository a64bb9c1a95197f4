// `freshet sandbox --engine mariadb`: the option, and a real boot that serves the library face and the admin API.

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import YAML from 'yaml'
import { parseSandboxArgs } from '../../src/cli/sandbox.js'
import { createMysqlPool } from '../../src/mysql/index.js'
import { eventually } from '../support/eventually.js'

describe('freshet sandbox --engine mariadb', () => {
  it('parses --engine and refuses other engines', () => {
    assert.equal(parseSandboxArgs(['--engine', 'mariadb']).engine, 'mariadb')
    assert.equal(parseSandboxArgs([]).engine, undefined)
    assert.throws(
      () => parseSandboxArgs(['--engine', 'oracle']),
      /--engine oracle: expected postgres or mariadb/,
    )
  })

  it('boots MariaDB with GTID replicas, writes an engine: mysql freshet.yaml, serves the dashboard API, stops on SIGINT', async () => {
    const configPath = join(tmpdir(), `freshet-sbx-mariadb-${process.pid}.yaml`)
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '-e',
        `import('./src/cli/main.ts').then((m) => m.main(['sandbox', '--engine', 'mariadb', '--replicas', '1', '--admin-port', '0', '--config', ${JSON.stringify(configPath)}])).then((c) => process.exit(c))`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let out = ''
    child.stdout.on('data', (d) => {
      out += d
    })
    child.stderr.on('data', (d) => {
      out += d
    })
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    try {
      await eventually('the sandbox is up', () => out.includes('Ctrl-C'), 90_000, 100)
      assert.match(out, /proxy: {6}none: the freshet proxy speaks the PostgreSQL protocol only/)
      const config = YAML.parse(readFileSync(configPath, 'utf8')) as {
        engine: string
        admin: { listen: string }
      }
      assert.equal(config.engine, 'mysql')
      const topo = (await (await fetch(`http://${config.admin.listen}/api/v1/topology`)).json()) as {
        nodes: { name: string; healthy: boolean }[]
      }
      assert.deepEqual(topo.nodes.map((n) => n.name).sort(), ['primary', 'replica_1'])
      const pool = createMysqlPool(configPath)
      try {
        const [rows] = await pool.query('/* FRESHNESS: EVENTUAL */ SELECT COUNT(*) AS n FROM orders')
        assert.equal(Number((rows as { n: number }[])[0]!.n), 5000)
      } finally {
        await pool.end()
      }
    } finally {
      child.kill('SIGINT')
      assert.equal(await exited, 0, out)
    }
    assert.match(out, /stopped every server and removed/)
    assert.equal(existsSync(configPath), false)
  })
})
