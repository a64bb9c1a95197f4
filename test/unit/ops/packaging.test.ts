// ops/Dockerfile and ops/freshet.service: Docker cannot run here, so the Dockerfile is checked for its
// structure (multi-stage, non-root, healthcheck on /healthz, nothing fetched from outside the registries)
// and its healthcheck command is run; the systemd unit is linted by systemd-analyze verify.

import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

interface Instruction {
  readonly op: string
  readonly args: string
}

/** Dockerfile instructions with line continuations joined and comments dropped. */
function instructions(text: string): Instruction[] {
  const joined = text.replace(/\\\n/g, ' ')
  return joined
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const space = l.indexOf(' ')
      return { op: l.slice(0, space).toUpperCase(), args: l.slice(space + 1).trim() }
    })
}

/** The instructions split into stages at each FROM. */
function stages(list: Instruction[]): { from: string; name: string | null; body: Instruction[] }[] {
  const out: { from: string; name: string | null; body: Instruction[] }[] = []
  for (const ins of list) {
    if (ins.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args)
      assert.ok(m, `FROM ${ins.args}`)
      out.push({ from: m[1]!, name: m[2] ?? null, body: [] })
    } else {
      assert.ok(out.length > 0, `${ins.op} before the first FROM`)
      out.at(-1)!.body.push(ins)
    }
  }
  return out
}

describe('ops/Dockerfile', () => {
  const text = readFileSync(join(ROOT, 'ops/Dockerfile'), 'utf8')
  const all = instructions(text)
  const built = stages(all)
  const final = built.at(-1)!

  it('is multi-stage: a build stage, a runtime stage that copies only what the build made', () => {
    assert.ok(built.length >= 2, 'two or more stages')
    assert.ok(
      built.every((s) => s.name),
      'every stage is named',
    )
    const build = built[0]!
    assert.ok(
      build.body.some((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args)),
      'npm ci (the lockfile)',
    )
    assert.ok(
      build.body.some((i) => i.op === 'RUN' && /npm prune --omit=dev/.test(i.args)),
      'dev deps pruned',
    )
    const copies = final.body.filter((i) => i.op === 'COPY')
    assert.ok(copies.length > 0 && copies.every((i) => i.args.startsWith(`--from=${build.name} `)))
    assert.ok(!final.body.some((i) => i.op === 'RUN' && /\bnpm (ci|install)\b/.test(i.args)))
  })

  it('runs as a user other than root', () => {
    const users = final.body.filter((i) => i.op === 'USER').map((i) => i.args)
    assert.equal(users.length, 1)
    assert.doesNotMatch(users[0]!, /^(root|0)(:|$)/)
    const user = final.body.findIndex((i) => i.op === 'USER')
    const entry = final.body.findIndex((i) => i.op === 'ENTRYPOINT')
    assert.ok(user < entry, 'USER comes before the entry point')
  })

  it('has a HEALTHCHECK on /healthz and runs freshet proxy from the built package', () => {
    const check = final.body.find((i) => i.op === 'HEALTHCHECK')
    assert.ok(check, 'HEALTHCHECK')
    assert.match(check.args, /CMD \[/)
    const env = final.body
      .filter((i) => i.op === 'ENV')
      .map((i) => i.args)
      .join(' ')
    assert.match(env, /FRESHET_HEALTHCHECK_URL=http:\/\/127\.0\.0\.1:9187\/healthz/)
    assert.match(final.body.find((i) => i.op === 'ENTRYPOINT')?.args ?? '', /bin\/freshet\.js/)
    assert.match(final.body.find((i) => i.op === 'CMD')?.args ?? '', /"proxy", "--config"/)
    assert.ok(final.body.some((i) => i.op === 'EXPOSE' && /\b6432\b/.test(i.args)))
  })

  it('takes only official base images and fetches nothing from outside the registries', () => {
    for (const s of built) {
      // an image from another registry names its host first (registry.example:5000/x); Docker Hub's do not
      assert.match(s.from, /^node:[\w.-]+$/, `base image ${s.from}`)
    }
    for (const i of all.filter((x) => x.op === 'RUN' || x.op === 'ADD')) {
      assert.doesNotMatch(i.args, /\b(curl|wget|git clone)\b|https?:\/\//, `${i.op} ${i.args}`)
    }
    assert.ok(!all.some((i) => i.op === 'ADD'), 'COPY, not ADD (ADD fetches URLs and unpacks archives)')
  })

  it('copies only paths that exist, and the build context leaves local state out', () => {
    for (const i of all.filter((x) => x.op === 'COPY' && !x.args.startsWith('--from='))) {
      const parts = i.args.split(/\s+/).filter((p) => !p.startsWith('--'))
      for (const source of parts.slice(0, -1)) assert.ok(existsSync(join(ROOT, source)), `COPY ${source}`)
    }
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n')
    for (const p of ['node_modules', 'dist', '.git', 'freshet.yaml']) assert.ok(ignore.includes(p), p)
  })

  it('its healthcheck command exits 0 on a 200 from /healthz and 1 when nothing answers', async () => {
    const check = final.body.find((i) => i.op === 'HEALTHCHECK')!
    const argv = JSON.parse(check.args.slice(check.args.indexOf('CMD ') + 4)) as string[]
    assert.equal(argv[0], 'node')
    const server = createServer((req, res) => {
      res.writeHead(req.url === '/healthz' ? 200 : 404).end()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    const runCheck = (url: string) =>
      new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, argv.slice(1), {
          env: { ...process.env, FRESHET_HEALTHCHECK_URL: url },
          stdio: 'ignore',
        })
        child.once('exit', resolve)
      })
    try {
      assert.equal(await runCheck(`http://127.0.0.1:${port}/healthz`), 0)
      assert.equal(await runCheck(`http://127.0.0.1:${port}/nothing`), 1)
    } finally {
      await new Promise((resolve) => server.close(resolve))
    }
    assert.equal(await runCheck(`http://127.0.0.1:${port}/healthz`), 1, 'nothing listens any more')
  })
})

describe('ops/freshet.service', () => {
  const unit = readFileSync(join(ROOT, 'ops/freshet.service'), 'utf8')
  const keys = (section: string) => {
    const body = unit.split(/^\[/m).find((s) => s.startsWith(`${section}]`)) ?? ''
    return new Map(
      body
        .split('\n')
        .slice(1)
        .filter((l) => /^\w+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    )
  }

  it('reloads with SIGHUP, drains on SIGTERM, runs freshet proxy without privileges', () => {
    const service = keys('Service')
    assert.equal(service.get('ExecReload'), '/bin/kill -HUP $MAINPID')
    assert.equal(service.get('KillSignal'), 'SIGTERM')
    assert.match(service.get('ExecStart') ?? '', /freshet\.js proxy --config \/etc\/freshet\/freshet\.yaml$/)
    assert.equal(service.get('DynamicUser'), 'yes')
    assert.equal(service.get('NoNewPrivileges'), 'yes')
    // longer than the default proxy.shutdown_timeout_ms (30 s), so a drain is not cut short
    assert.ok(Number.parseInt(service.get('TimeoutStopSec') ?? '0', 10) > 30)
    assert.equal(keys('Install').get('WantedBy'), 'multi-user.target')
  })

  it('passes systemd-analyze verify without a warning', (t) => {
    const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' })
    if (analyze.error) {
      t.skip('systemd-analyze not installed (apt-get install -y systemd); the unit is not linted')
      return
    }
    const dir = mkdtempSync(join(tmpdir(), 'freshet-unit-'))
    try {
      // verify checks that ExecStart's program exists: use this machine's node where it is elsewhere
      const text = existsSync('/usr/bin/node') ? unit : unit.replaceAll('/usr/bin/node', process.execPath)
      const file = join(dir, 'freshet.service')
      writeFileSync(file, text)
      const run = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' })
      assert.equal(run.status, 0, run.stderr)
      // verify also loads the machine's other units and may warn about them (an installed pgpool2.service
      // did): only lines about this unit count
      const ours = run.stderr.split('\n').filter((l) => l.includes(file))
      assert.deepEqual(ours, [], 'no warnings about freshet.service (unknown keys, bad values)')
      // and the lint is not a rubber stamp: an unknown key is reported
      writeFileSync(file, text.replace('[Service]\n', '[Service]\nReloadSignall=SIGHUP\n'))
      const bad = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' })
      assert.match(bad.stderr, /freshet\.service:\d+: Unknown key 'ReloadSignall'/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
