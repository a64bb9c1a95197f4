// The etcd harness: a real 3-member cluster on free loopback ports that keeps quorum when a member is
// killed, takes it back on restart, and leaves nothing behind when the harness's process dies.

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { Etcd3 } from 'etcd3'
import { eventually } from '../support/eventually.js'
import { exists, processesUnder } from '../support/processes.js'
import { startEtcdCluster } from './index.js'

const FIXTURE = fileURLToPath(new URL('../support/start-etcd.ts', import.meta.url))

test('three members on free ports; a killed member leaves quorum; a restarted one rejoins', {
  timeout: 60_000,
}, async () => {
  const etcd = await startEtcdCluster({ members: 3 })
  const client = new Etcd3({
    hosts: etcd.endpoints,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 2000 }),
  })
  try {
    assert.equal(new Set(etcd.members.flatMap((m) => [m.clientPort, m.peerPort])).size, 6)
    await client.put('k').value('1')
    await etcd.kill('etcd_1')
    assert.equal(etcd.member('etcd_1').running, false)
    // two of three still commit writes
    await eventually('a write with one member down', () =>
      client
        .put('k')
        .value('2')
        .then(
          () => true,
          () => false,
        ),
    )
    await etcd.start('etcd_1')
    assert.equal(await etcd.member('etcd_1').healthy(), true)
    assert.equal(await client.get('k').string(), '2')
  } finally {
    client.close()
    await etcd.stop()
  }
  assert.equal(existsSync(etcd.root), false)
})

test("SIGKILL of the harness's process leaves no etcd member and no directory behind", {
  timeout: 60_000,
}, async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const lines = createInterface({ input: child.stdout! })
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve)
    child.once('exit', (code) => reject(new Error(`fixture exited with ${code} before printing`)))
  })
  lines.close()
  const { root, pids } = JSON.parse(first) as { root: string; pids: number[] }
  assert.equal(pids.length, 3)
  for (const pid of pids) assert.ok(exists(pid), `etcd ${pid} runs`)
  child.kill('SIGKILL')
  await eventually(
    'no process and no directory left under the etcd root',
    () => processesUnder(root).length === 0 && !existsSync(root),
    15_000,
  )
  await eventually('etcd members are gone', () => pids.every((pid) => !exists(pid)), 10_000)
})
