// The admin API in front of a createPool on a real primary + 2 replicas: config PUT while queries run,
// controls on the next statement, /metrics after routed queries, and the dashboard in headless Chromium.

import assert from 'node:assert/strict'
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type AdminServer, startAdmin } from '../../../src/admin/admin-server.js'
import { createPool, type FreshetConfigInput, type FreshetPool } from '../../../src/index.js'
import { createLogger } from '../../../src/telemetry/logger.js'
import { type LocalCluster, startCluster } from '../../cluster/index.js'
import { configFor, nodeByPort } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'

const TOKEN = 'admin-test-token'
const WHERE = 'SELECT inet_server_port() AS port'
const CHROMIUM = process.env.FRESHET_CHROMIUM ?? '/usr/bin/chromium'

describe('admin API against a real cluster', () => {
  let cluster: LocalCluster
  let pool: FreshetPool
  let admin: AdminServer
  let nodeOf: (port: number) => string
  let baseConfig: FreshetConfigInput

  const call = (path: string, init: RequestInit = {}) =>
    fetch(admin.url + path, { ...init, headers: { authorization: `Bearer ${TOKEN}`, ...init.headers } })
  const servedBy = async (sql: string) => nodeOf(Number((await pool.query(sql)).rows[0].port))

  before(async () => {
    cluster = await startCluster({ replicas: 2 })
    nodeOf = nodeByPort(cluster)
    baseConfig = configFor(cluster, {
      admin: { listen: '127.0.0.1:0', token: TOKEN },
      telemetry: { log_level: 'silent', log_sampling_rate: 1 },
    })
    pool = createPool(baseConfig)
    await pool.ready()
    admin = await startAdmin({ pool, logger: createLogger({ log_level: 'silent' }) })
    await eventually('replicas have lag readings', () =>
      pool.snapshot().every((n) => n.role === 'primary' || (n.healthy && n.lag_ms !== null)),
    )
  })

  after(async () => {
    await admin?.close()
    await pool?.end()
    await cluster?.stop()
  })

  it('readyz is 200 with a healthy primary', async () => {
    const res = await call('/readyz')
    assert.equal(res.status, 200)
    assert.equal(((await res.json()) as { primary: string }).primary, 'primary')
  })

  it('PUT /api/v1/config: valid, invalid (422), older (409) while queries run; none fails, config_version moves', async () => {
    let stop = false
    const failures: unknown[] = []
    let done = 0
    const worker = async (i: number) => {
      while (!stop) {
        try {
          await pool.query(
            i % 2 === 0 ? `/* FRESHNESS: EVENTUAL */ ${WHERE}` : `/* FRESHNESS: NEAR_RT */ ${WHERE}`,
          )
          done++
        } catch (err) {
          failures.push(err)
        }
      }
    }
    const workers = Array.from({ length: 6 }, (_, i) => worker(i))
    try {
      await eventually('queries flowing', () => done > 20)
      const v2 = { ...baseConfig, version: 2, domains: { items: 'eventual' } }
      const ok = await call('/api/v1/config', { method: 'PUT', body: JSON.stringify(v2) })
      assert.equal(ok.status, 200, await ok.clone().text())
      assert.equal(pool.config.version, 2)

      const invalid = await call('/api/v1/config', {
        method: 'PUT',
        body: JSON.stringify({
          ...baseConfig,
          version: 3,
          routing: { tiers: { near_rt: { max_lag_ms: 'soon' } } },
        }),
      })
      assert.equal(invalid.status, 422)
      const issues = ((await invalid.json()) as { issues: { path: string }[] }).issues
      assert.ok(
        issues.some((i) => i.path === 'routing.tiers.near_rt.max_lag_ms'),
        JSON.stringify(issues),
      )

      const older = await call('/api/v1/config', { method: 'PUT', body: JSON.stringify(baseConfig) })
      assert.equal(older.status, 409)
      assert.equal(pool.config.version, 2)

      const before = done
      await eventually('queries continue after the reloads', () => done > before + 20)
    } finally {
      stop = true
      await Promise.all(workers)
    }
    assert.deepEqual(failures, [])
    const metrics = await (await call('/metrics')).text()
    assert.match(metrics, /^config_version 2$/m)
  })

  it('POST /api/v1/controls takes effect on the next statement', async () => {
    assert.match(await servedBy(`/* FRESHNESS: EVENTUAL */ ${WHERE}`), /^replica_/)
    const on = await call('/api/v1/controls', {
      method: 'POST',
      body: JSON.stringify({ route_all_to_primary: true }),
    })
    assert.equal(on.status, 200)
    assert.equal(await servedBy(`/* FRESHNESS: EVENTUAL */ ${WHERE}`), 'primary')
    const off = await call('/api/v1/controls', {
      method: 'POST',
      body: JSON.stringify({ route_all_to_primary: false }),
    })
    assert.equal(off.status, 200)
    assert.match(await servedBy(`/* FRESHNESS: EVENTUAL */ ${WHERE}`), /^replica_/)
  })

  it('/metrics has the contract names with their labels after routed queries', async () => {
    for (let i = 0; i < 10; i++) await pool.query(`/* FRESHNESS: EVENTUAL */ ${WHERE}`)
    await pool.query(WHERE)
    const res = await call('/metrics')
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/)
    const text = await res.text()
    const samples = parseExposition(text)
    const has = (name: string, labels: Record<string, string | RegExp> = {}) =>
      samples.some(
        (s) =>
          s.name === name &&
          Object.entries(labels).every(([k, v]) =>
            typeof v === 'string' ? s.labels[k] === v : v.test(s.labels[k] ?? ''),
          ),
      )
    assert.ok(has('routing_decisions_total', { tier: 'eventual', target: /^replica_/, reason: 'replica' }))
    assert.ok(
      has('routing_decisions_total', { tier: 'none', target: 'primary', reason: 'unannotated_primary' }),
    )
    assert.ok(has('replica_lag_seconds', { host: 'replica_1' }))
    assert.ok(has('replica_lag_seconds', { host: 'replica_2' }))
    assert.ok(has('replica_eligible', { host: 'replica_1', tier: 'near_rt' }))
    assert.ok(has('read_staleness_seconds_bucket', { tier: 'eventual', le: '+Inf' }))
    assert.ok(has('routing_decision_latency_seconds_count'))
    assert.ok(has('unannotated_reads_total'))
    assert.ok(has('circuit_breaker_open', { host: 'replica_2' }))
    assert.ok(has('pool_connections', { host: 'primary', state: 'idle' }))
    assert.ok(has('pool_waiting', { host: 'replica_1' }))
    assert.ok(has('freshet_controls_changes_total', { control: 'route_all_to_primary' }))
    assert.ok(has('routing_reads_total', { tier: 'eventual', role: 'replica' }))
    assert.ok(has('replica_offload_ratio', { tier: 'eventual' }))
    const decisions = (await (await call('/api/v1/decisions?limit=5')).json()) as {
      decisions: { staleness_bound_ms: number | null }[]
    }
    assert.equal(decisions.decisions.length, 5)
    assert.ok(decisions.decisions.every((d) => 'staleness_bound_ms' in d))
  })

  it("the topology carries each node's staleness bound; /api/v1/stats the replica share per tier", async () => {
    for (let i = 0; i < 5; i++) await pool.query(`/* FRESHNESS: EVENTUAL */ ${WHERE}`)
    const topo = (await (await call('/api/v1/topology')).json()) as {
      nodes: { name: string; role: string; staleness_bound_ms: number | null; fresh_as_of: string | null }[]
    }
    for (const n of topo.nodes) {
      if (n.role === 'primary') assert.equal(n.staleness_bound_ms, 0)
      else {
        assert.equal(typeof n.staleness_bound_ms, 'number', `${n.name} proven`)
        assert.ok(n.fresh_as_of !== null && Date.parse(n.fresh_as_of) <= Date.now())
      }
    }
    const stats = (await (await call('/api/v1/stats')).json()) as {
      offload: { tier: string; reads: number; replica_reads: number; ratio: number | null }[]
    }
    const eventual = stats.offload.find((o) => o.tier === 'eventual')
    assert.ok(eventual && eventual.reads >= 5 && eventual.replica_reads > 0, JSON.stringify(stats.offload))
    assert.equal(eventual.ratio, eventual.replica_reads / eventual.reads)
  })

  it('the dashboard renders in headless Chromium: topology, one lag line per replica, a screenshot', async (t) => {
    if (!existsSync(CHROMIUM)) {
      t.skip(`chromium not installed at ${CHROMIUM} (apt-get install -y chromium); dashboard not tested`)
      return
    }
    const { chromium } = await import('playwright-core')
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    })
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
      const errors: string[] = []
      page.on('pageerror', (err) => errors.push(err.message))
      // Some traffic so the rates table has rows.
      const traffic = (async () => {
        for (let i = 0; i < 40; i++) await pool.query(`/* FRESHNESS: EVENTUAL */ ${WHERE}`)
      })()
      // the admin server samples lag itself (every second): the chart can start from its history
      const lagHistory = async () =>
        (await (
          await fetch(`${admin.url}/api/v1/lag-history`, { headers: { authorization: `Bearer ${TOKEN}` } })
        ).json()) as { nodes: Record<string, [number, number | null][]> }
      await eventually('three known lag samples per replica in the history', async () => {
        const series = Object.values((await lagHistory()).nodes)
        return series.length === 2 && series.every((s) => s.filter(([, lag]) => lag !== null).length >= 3)
      })
      const served = await lagHistory()
      assert.deepEqual(Object.keys(served.nodes).sort(), ['replica_1', 'replica_2'])
      for (const series of Object.values(served.nodes)) {
        assert.ok(
          series.some(([, lag]) => typeof lag === 'number'),
          'numeric lags were sampled',
        )
      }
      await page.goto(`${admin.url}/?token=${TOKEN}`)
      await page.waitForFunction(
        // biome-ignore lint/suspicious/noExplicitAny: runs in the page
        () => Number((globalThis as any).document.body.getAttribute('data-polls') || 0) >= 1,
        undefined,
        { timeout: 15_000 },
      )
      // after its first poll the chart already draws the server's history, not one lonely point
      const firstPoints = await page
        .locator('#lag-chart path.lag-line')
        .evaluateAll((paths) => paths.map((p) => (p.getAttribute('d') ?? '').split(/[ML]/).length - 1))
      assert.ok(
        firstPoints.length === 2 && firstPoints.every((n) => n >= 3),
        `points per line on first paint: ${firstPoints}`,
      )
      await page.waitForFunction(
        // biome-ignore lint/suspicious/noExplicitAny: runs in the page
        () => Number((globalThis as any).document.body.getAttribute('data-polls') || 0) >= 3,
        undefined,
        {
          timeout: 15_000,
        },
      )
      await traffic
      assert.ok(!page.url().includes('token='), 'the token leaves the address bar')
      const rows = await page.locator('#topology tbody tr').count()
      assert.equal(rows, 3)
      const hosts = await page
        .locator('#lag-chart path.lag-line')
        .evaluateAll((paths) =>
          paths.map((p) => ({ host: p.getAttribute('data-host'), d: p.getAttribute('d') ?? '' })),
        )
      assert.deepEqual(hosts.map((h) => h.host).sort(), ['replica_1', 'replica_2'])
      for (const h of hosts) {
        // one or more segments (a sample with unknown lag lifts the pen), at least one drawn
        assert.match(h.d, /^M[\d.]+ [\d.]+( [ML][\d.]+ [\d.]+)*$/, `${h.host}: a path of points`)
        assert.match(h.d, /L[\d.]+ [\d.]+/, `${h.host}: at least one line segment is drawn`)
      }
      assert.ok((await page.locator('#controls button').count()) === 3)
      assert.ok((await page.locator('#rates tbody tr[data-tier]').count()) >= 1)
      // controls read as what they do and what state they are in
      const routeAll = page.locator('#controls button[data-control="route_all_to_primary"]')
      assert.match(await routeAll.innerText(), /^OFF\s*Route everything to the primary: click to turn on/)
      // the eligibility matrix: one row per replica, one column per tier, eligible for eventual now
      const matrix = await page.locator('#eligibility tbody tr').evaluateAll((trs) =>
        trs.map((tr) => ({
          node: tr.getAttribute('data-node'),
          cells: Object.fromEntries(
            [...tr.querySelectorAll('td[data-tier]')].map((td) => [
              td.getAttribute('data-tier'),
              td.getAttribute('data-reason'),
            ]),
          ),
        })),
      )
      assert.deepEqual(
        matrix.map((r) => r.node),
        ['replica_1', 'replica_2'],
      )
      for (const row of matrix) {
        assert.deepEqual(Object.keys(row.cells).sort(), ['eventual', 'near_rt', 'strict'])
        assert.equal(row.cells.eventual, 'eligible', `${row.node} may serve eventual`)
      }
      // the offload ratio: the eventual reads above went to replicas
      const offload = await page.locator('#offload tr[data-tier="eventual"] td.ratio').innerText()
      assert.ok(Number.parseInt(offload, 10) > 50, `eventual offload ratio ${offload}`)
      // lag cells carry the class of the bounds they break (caught-up replicas break none above 0 ms)
      const lagClasses = await page
        .locator('#topology td.lag')
        .evaluateAll((tds) => tds.map((td) => td.getAttribute('class') ?? ''))
      assert.equal(lagClasses.length, 2)
      for (const c of lagClasses) assert.match(c, /lag-(ok|warn|bad)/)
      // the matrix follows the live state: an emergency control makes every cell say why not
      await call('/api/v1/controls', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ route_all_to_primary: true }),
      })
      try {
        await page.waitForFunction(
          () =>
            // biome-ignore lint/suspicious/noExplicitAny: runs in the page
            [...(globalThis as any).document.querySelectorAll('#eligibility td[data-tier]')].every(
              // biome-ignore lint/suspicious/noExplicitAny: runs in the page
              (td: any) => td.getAttribute('data-reason') === 'controls',
            ),
          undefined,
          { timeout: 10_000 },
        )
        assert.match(await routeAll.innerText(), /^ON\s*Route everything to the primary: click to turn off/)
      } finally {
        await call('/api/v1/controls', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ route_all_to_primary: false }),
        })
      }

      const outDir = join(tmpdir(), 'freshet-test-output')
      mkdirSync(outDir, { recursive: true })
      const file = join(outDir, 'dashboard.png')
      await page.screenshot({ path: file, fullPage: true })
      assert.ok(statSync(file).size > 20_000, `screenshot ${file} has content`)
      const chart = await page.locator('#lag-chart').screenshot()
      writeFileSync(join(outDir, 'lag-chart.png'), chart)
      // Count pixels in the chart screenshot close to any line's colour: the lines were really drawn.
      // (Replicas with equal lag draw on top of each other, so no single colour is sure to show.)
      const strokes = await page
        .locator('#lag-chart path.lag-line')
        .evaluateAll((paths) => paths.map((p) => p.getAttribute('stroke') ?? ''))
      const colored = await page.evaluate(countLinePixels, { b64: chart.toString('base64'), strokes })
      assert.ok(colored > 50, `the lag line is visible in the screenshot (${colored} pixels)`)
      assert.deepEqual(errors, [])

      // a fresh admin API (no decisions counted yet): the panels say so instead of showing bare headers
      const quiet = await startAdmin({ pool, logger: createLogger({ log_level: 'silent' }) })
      try {
        const empty = await browser.newPage()
        await empty.goto(`${quiet.url}/?token=${TOKEN}`)
        await empty.waitForFunction(
          // biome-ignore lint/suspicious/noExplicitAny: runs in the page
          () => Number((globalThis as any).document.body.getAttribute('data-polls') || 0) >= 1,
          undefined,
          { timeout: 15_000 },
        )
        assert.equal(await empty.locator('#rates td.empty').innerText(), 'no traffic yet')
        assert.match(await empty.locator('#offload td.empty').innerText(), /^no traffic yet/)
        assert.equal(await empty.locator('#fallbacks td.empty').innerText(), 'no fallbacks yet')
        assert.match(
          await empty.locator('#lag-legend').innerText(),
          /strict bound 0 ms \(only the primary or a caught-up replica; not drawn\)/,
        )
        assert.equal(await empty.locator('#lag-chart line.tier-bound[data-tier="strict"]').count(), 0)
      } finally {
        await quiet.close()
      }
    } finally {
      await browser.close()
    }
  })
})

/** Runs in the page: decodes a PNG and counts pixels close to any of the lines' `#rrggbb` stroke colours. */
async function countLinePixels({ b64, strokes }: { b64: string; strokes: string[] }): Promise<number> {
  // Serialised into the page: only browser globals (typed loosely: the test has no DOM types).
  // biome-ignore lint/suspicious/noExplicitAny: browser globals
  const { Image, document } = globalThis as any
  const img = new Image()
  img.src = `data:image/png;base64,${b64}`
  await img.decode()
  const canvas = document.createElement('canvas')
  canvas.width = img.width
  canvas.height = img.height
  const ctx = canvas.getContext('2d')
  ctx.drawImage(img, 0, 0)
  const data: number[] = ctx.getImageData(0, 0, img.width, img.height).data
  const rgbs = strokes.map((s) => [1, 3, 5].map((at) => Number.parseInt(s.slice(at, at + 2), 16)))
  let n = 0
  for (let i = 0; i < data.length; i += 4) {
    for (const [r, g, b] of rgbs) {
      if (
        Math.abs(data[i]! - r!) < 40 &&
        Math.abs(data[i + 1]! - g!) < 40 &&
        Math.abs(data[i + 2]! - b!) < 40
      ) {
        n++
        break
      }
    }
  }
  return n
}

/** A minimal Prometheus text parser: name, labels, value per sample line. */
function parseExposition(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  const out: { name: string; labels: Record<string, string>; value: number }[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    assert.ok(m, `parsable sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!
    out.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return out
}
