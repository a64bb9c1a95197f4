// Config watcher: file replaced by rename (as editors do), invalid and older files refused with key
// paths while the running config stays, SIGHUP-style manual reloads.

import assert from 'node:assert/strict'
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ConfigWatcher } from '../../../src/backend/config-watcher.js'
import { Classifier } from '../../../src/core/classify/classifier.js'
import { parseConfig } from '../../../src/core/config/parse-config.js'
import { RoutingEngine } from '../../../src/routing/routing-engine.js'
import { eventually } from '../../support/eventually.js'

const yaml = (version: number, extra = '') =>
  `version: ${version}\ncluster:\n  primary: { name: primary, url: postgres://127.0.0.1:1/x }\n${extra}`

describe('config watcher', () => {
  let dir: string
  before(async () => {
    await Classifier.loadParser()
    dir = mkdtempSync(join(tmpdir(), 'freshet-watch-'))
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  it('applies a file replaced by rename, refuses invalid and older ones, keeps the running config', async () => {
    const file = join(dir, 'freshet.yaml')
    writeFileSync(file, yaml(1))
    const engine = new RoutingEngine(parseConfig(yaml(1)))
    const logs: string[] = []
    engine.on('log', (_level, message) => logs.push(message))
    const watcher = new ConfigWatcher(file, engine, { debounceMs: 30 })
    const refused: string[] = []
    watcher.on('refused', (r) => refused.push(r.status))
    watcher.start()
    try {
      const replace = (text: string) => {
        const tmp = join(dir, `.freshet.yaml.${Math.random()}`)
        writeFileSync(tmp, text)
        renameSync(tmp, file)
      }
      replace(yaml(2, 'routing:\n  unannotated: eventual\n'))
      await eventually('version 2 applied', () => engine.config.version === 2)
      assert.equal(engine.config.routing.unannotated, 'eventual')

      replace(yaml(3, 'routing:\n  polcy: x\n  tiers:\n    near_rt: { max_lag_ms: -5 }\n'))
      await eventually('invalid refused', () => refused.includes('invalid'))
      assert.equal(engine.config.version, 2)
      const line = logs.find((l) => l.includes('refused (invalid)'))!
      assert.match(line, /routing\.polcy/)
      assert.match(line, /routing\.tiers\.near_rt\.max_lag_ms/)
      assert.match(line, /still running version 2/)

      // In-place write (no rename) of an older version.
      writeFileSync(file, yaml(1, '# older\n'))
      await eventually('older refused', () => refused.includes('version'))
      assert.equal(engine.config.version, 2)

      // SIGHUP path: a manual reload of a good file.
      watcher.close()
      writeFileSync(file, yaml(4))
      const result = await watcher.reload('sighup')
      assert.deepEqual(result, { status: 'applied', version: 4 })
      assert.equal(engine.config.version, 4)
    } finally {
      watcher.close()
    }
  })

  it('reports a missing file as refused, not a crash', async () => {
    const engine = new RoutingEngine(parseConfig(yaml(1)))
    const watcher = new ConfigWatcher(join(dir, 'missing.yaml'), engine)
    const result = await watcher.reload('manual')
    assert.equal(result.status, 'invalid')
    assert.equal(engine.config.version, 1)
  })

  it('onSighup() reloads on the signal and can be removed', async () => {
    const file = join(dir, 'hup.yaml')
    writeFileSync(file, yaml(5))
    const engine = new RoutingEngine(parseConfig(yaml(1)))
    const watcher = new ConfigWatcher(file, engine)
    const off = watcher.onSighup()
    try {
      process.kill(process.pid, 'SIGHUP')
      await eventually('SIGHUP reload', () => engine.config.version === 5)
    } finally {
      off()
    }
  })

  it('a reload of the config already running is unchanged, not refused as older', async () => {
    const file = join(dir, 'same.yaml')
    writeFileSync(file, yaml(7, '# a comment only\n'))
    const engine = new RoutingEngine(parseConfig(yaml(7)))
    const levels: string[] = []
    engine.on('log', (level) => levels.push(level))
    const watcher = new ConfigWatcher(file, engine)
    const refused: string[] = []
    watcher.on('refused', (r) => refused.push(r.status))
    assert.deepEqual(await watcher.reload('sighup'), { status: 'unchanged', version: 7 })
    assert.deepEqual(await watcher.reload('file'), { status: 'unchanged', version: 7 })
    assert.deepEqual(refused, [])
    assert.ok(!levels.includes('error'))
    // the running config moved on (an emergency control): the same file is older now
    engine.setControls({ route_all_to_primary: true })
    assert.equal((await watcher.reload('sighup')).status, 'version')
    assert.deepEqual(refused, ['version'])
  })
})
