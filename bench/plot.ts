// Hand-written SVG of throughput vs clients per router, one panel per workload. Run alone: npx tsx bench/plot.ts [latest.json] [out.svg]

import { readFileSync, writeFileSync } from 'node:fs'
import type { E2eResults } from './e2e-results.js'

const COLORS = [
  '#222222',
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#98df8a',
  '#9467bd',
  '#ff7f0e',
  '#8c564b',
  '#e377c2',
]
const PANEL_W = 300
const PANEL_H = 220
const PAD = { left: 56, right: 12, top: 28, bottom: 36 }

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** A round "nice" axis maximum at or above `x`. */
function niceMax(x: number): number {
  if (!(x > 0)) return 1
  const p = 10 ** Math.floor(Math.log10(x))
  return ([1, 2, 2.5, 5, 10].find((m) => m * p >= x) ?? 10) * p
}

/** The SVG text: x = clients (evenly spaced), y = TPS, one polyline per router, one panel per workload. */
export function throughputSvg(r: E2eResults): string {
  const workloads = [...new Set(r.cells.map((c) => c.workload))]
  const routers = [...new Set(r.cells.map((c) => c.router))]
  const clients = [...new Set(r.cells.map((c) => c.clients))].sort((a, b) => a - b)
  const color = (router: string) => COLORS[routers.indexOf(router) % COLORS.length]!
  const width = Math.max(640, PANEL_W * workloads.length)
  const perRow = Math.max(1, Math.floor(width / 170))
  const legendH = 20 * Math.ceil(routers.length / perRow) + 10
  const height = PANEL_H + legendH + 24
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="8" y="16" font-size="13" font-weight="bold">Throughput (TPS) vs clients</text>`,
    `<text x="${width - 8}" y="16" text-anchor="end" fill="#555">${esc(r.date.slice(0, 10))}, median of ${r.settings.rounds} × ${r.settings.seconds} s, shared ${r.machine.cpus}-core machine: compare ratios</text>`,
  ]
  workloads.forEach((w, wi) => {
    const x0 = wi * PANEL_W
    const y0 = 20
    const plotW = PANEL_W - PAD.left - PAD.right
    const plotH = PANEL_H - PAD.top - PAD.bottom
    const cells = r.cells.filter((c) => c.workload === w)
    const ymax = niceMax(Math.max(...cells.map((c) => c.tps)))
    const px = (c: number) =>
      x0 + PAD.left + (clients.length === 1 ? plotW / 2 : (clients.indexOf(c) / (clients.length - 1)) * plotW)
    const py = (t: number) => y0 + PAD.top + plotH - (t / ymax) * plotH
    out.push(
      `<text x="${x0 + PAD.left + plotW / 2}" y="${y0 + 16}" text-anchor="middle" font-weight="bold">${esc(w)}</text>`,
    )
    for (let i = 0; i <= 4; i++) {
      const v = (ymax * i) / 4
      const y = py(v)
      out.push(
        `<line x1="${x0 + PAD.left}" x2="${x0 + PAD.left + plotW}" y1="${y}" y2="${y}" stroke="#ddd"/>`,
      )
      out.push(`<text x="${x0 + PAD.left - 4}" y="${y + 4}" text-anchor="end">${Math.round(v)}</text>`)
    }
    for (const c of clients) {
      out.push(`<text x="${px(c)}" y="${y0 + PAD.top + plotH + 14}" text-anchor="middle">${c}</text>`)
    }
    out.push(
      `<text x="${x0 + PAD.left + plotW / 2}" y="${y0 + PAD.top + plotH + 28}" text-anchor="middle">clients</text>`,
    )
    for (const router of routers) {
      const pts = cells
        .filter((c) => c.router === router)
        .sort((a, b) => a.clients - b.clients)
        .map((c) => `${px(c.clients).toFixed(1)},${py(c.tps).toFixed(1)}`)
      if (pts.length === 0) continue
      const dash = router.startsWith('createPool') || router === 'pg.Pool' ? ' stroke-dasharray="5 3"' : ''
      out.push(
        `<polyline fill="none" stroke="${color(router)}" stroke-width="2"${dash} points="${pts.join(' ')}"/>`,
      )
      for (const p of pts) {
        const [x, y] = p.split(',')
        out.push(`<circle cx="${x}" cy="${y}" r="2.5" fill="${color(router)}"/>`)
      }
    }
  })
  routers.forEach((router, i) => {
    const x = 12 + (i % perRow) * 170
    const y = PANEL_H + 34 + Math.floor(i / perRow) * 20
    const dash = router.startsWith('createPool') || router === 'pg.Pool' ? ' stroke-dasharray="5 3"' : ''
    out.push(
      `<line x1="${x}" x2="${x + 24}" y1="${y - 4}" y2="${y - 4}" stroke="${color(router)}" stroke-width="2"${dash}/>`,
    )
    out.push(`<text x="${x + 30}" y="${y}">${esc(router)}</text>`)
  })
  out.push('</svg>')
  return `${out.join('\n')}\n`
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const input = process.argv[2] ?? 'bench/results/latest.json'
  const output = process.argv[3] ?? 'bench/results/throughput.svg'
  writeFileSync(output, throughputSvg(JSON.parse(readFileSync(input, 'utf8')) as E2eResults))
  console.log(`wrote ${output}`)
}
