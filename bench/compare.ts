// Compares bench/results/latest.json with the committed baseline.json: flags ratio drops beyond noise, exit 1 on regression.
// Run: npm run bench:compare -- [--latest FILE] [--baseline FILE] [--threshold 0.10]

import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { printTable } from './bench-util.js'
import type { E2eResults } from './e2e-results.js'

const { values } = parseArgs({
  options: {
    latest: { type: 'string', default: 'bench/results/latest.json' },
    baseline: { type: 'string', default: 'bench/results/baseline.json' },
    threshold: { type: 'string', default: '0.10' },
  },
})
const threshold = Number(values.threshold)
const load = (f: string) => JSON.parse(readFileSync(f, 'utf8')) as E2eResults
const latest = load(values.latest)
const baseline = load(values.baseline)

// Ratios (×direct, ×pg.Pool) rather than absolute TPS: both sides of a ratio ran in the same minute,
// so a busier machine moves them far less than it moves raw throughput.
const key = (c: { workload: string; clients: number; router: string }) =>
  `${c.workload}|${c.clients}|${c.router}`
const base = new Map(baseline.cells.map((c) => [key(c), c]))
const rows: (string | number)[][] = []
let regressions = 0
for (const c of latest.cells) {
  const b = base.get(key(c))
  if (!b || c.vsDirect === null || b.vsDirect === null || c.router === 'direct' || c.router === 'pg.Pool')
    continue
  const change = c.vsDirect / b.vsDirect - 1
  const bad = change < -threshold
  if (bad) regressions++
  rows.push([
    c.workload,
    c.clients,
    c.router,
    b.vsDirect.toFixed(2),
    c.vsDirect.toFixed(2),
    `${(change * 100).toFixed(1)}%`,
    bad ? 'REGRESSION' : '',
  ])
}
console.log(
  `latest ${latest.date} vs baseline ${baseline.date}; ratio ×direct (library: ×pg.Pool), threshold -${threshold * 100}%`,
)
printTable(['workload', 'clients', 'router', 'baseline', 'latest', 'change', ''], rows)

// Routing quality: a freshet router that serves more stale reads than it did is a regression whatever the noise.
if (latest.lag && baseline.lag) {
  const lagBase = new Map(baseline.lag.rows.map((r) => [r.router, r]))
  for (const r of latest.lag.rows) {
    const b = lagBase.get(r.router)
    if (!b || !r.router.startsWith('freshet')) continue
    const share = (x: { staleReads: number; reads: number }) => (x.reads ? x.staleReads / x.reads : 0)
    if (share(r) > share(b) + 0.01) {
      regressions++
      console.log(
        `REGRESSION lag ${r.router}: stale reads ${(share(b) * 100).toFixed(2)}% -> ${(share(r) * 100).toFixed(2)}%`,
      )
    }
  }
}
const missing = baseline.cells.filter((c) => !latest.cells.some((l) => key(l) === key(c))).length
if (missing) console.log(`${missing} baseline cell(s) not in latest (other flags or a router skipped)`)
console.log(regressions ? `${regressions} regression(s)` : 'no regression beyond noise')
process.exit(regressions ? 1 : 0)
