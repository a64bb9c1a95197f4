// Nothing is left behind: not when the harness's process is killed, and clusters do not interfere.

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { eventually } from '../support/eventually.js'
import { exists, processesUnder } from '../support/processes.js'
import { startCluster } from './index.js'

const FIXTURE = fileURLToPath(new URL('../support/start-cluster.ts', import.meta.url))

/** Starts a cluster in a child process and returns the child with what it printed. */
async function clusterInChild() {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const lines = createInterface({ input: child.stdout! })
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve)
    child.once('exit', (code) => reject(new Error(`fixture exited with ${code} before printing`)))
  })
  lines.close()
  return { child, ...(JSON.parse(first) as { root: string; pids: number[] }) }
}

for (const sig of ['SIGKILL', 'SIGTERM'] as const) {
  test(`${sig} of the harness's process leaves no server and no directory behind`, {
    timeout: 60_000,
  }, async () => {
    const { child, root, pids } = await clusterInChild()
    assert.equal(pids.length, 2)
    for (const pid of pids) assert.ok(exists(pid), `postmaster ${pid} runs`)
    assert.ok(processesUnder(root).length >= 2)
    assert.ok(existsSync(root))

    child.kill(sig)
    await eventually(
      'no process and no directory left under the cluster root',
      () => processesUnder(root).length === 0 && !existsSync(root),
      15_000,
    ).catch(() =>
      assert.fail(
        `left behind: processes ${processesUnder(root).join(', ')}; dir exists: ${existsSync(root)}`,
      ),
    )
    // Orphaned postmasters are reaped by init, which may take a moment after they died.
    await eventually('postmasters are gone', () => pids.every((pid) => !exists(pid)), 10_000)
  })
}

test('two clusters run side by side without seeing each other', async () => {
  const [a, b] = await Promise.all([startCluster({ replicas: 1 }), startCluster({ replicas: 1 })])
  try {
    const ports = new Set([...a.nodes, ...b.nodes].map((n) => n.port))
    assert.equal(ports.size, 4)
    assert.notEqual(a.root, b.root)
    await a.query('primary', "CREATE TABLE whoami AS SELECT 'a' AS name")
    await b.query('primary', "CREATE TABLE whoami AS SELECT 'b' AS name")
    await Promise.all([a.waitForCatchUp(10_000), b.waitForCatchUp(10_000)])
    assert.deepEqual((await a.query('replica_1', 'SELECT name FROM whoami')).rows, [{ name: 'a' }])
    assert.deepEqual((await b.query('replica_1', 'SELECT name FROM whoami')).rows, [{ name: 'b' }])
  } finally {
    await Promise.all([a.stop(), b.stop()])
  }
  assert.equal(existsSync(a.root), false)
  assert.equal(existsSync(b.root), false)
})
