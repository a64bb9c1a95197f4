// `npm run test:load -- --duration 180 --clients 500`: the proxy under many clients with abrupt
// disconnects; exit 1 on unexpected errors, leaks, wrong write accounting or heap growth (see proxy-load.ts).

import { parseArgs } from 'node:util'
import { formatLoadReport, HEAP_GROWTH_LIMIT, loadFindings, runProxyLoad } from './proxy-load.js'

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '180' },
    clients: { type: 'string', default: '500' },
  },
})
const durationS = Number(values.duration)
const clients = Number(values.clients)
if (!(durationS > 0) || !Number.isInteger(clients) || clients < 1) {
  console.error('usage: npm run test:load -- [--duration SECONDS] [--clients N]')
  process.exit(2)
}
console.log(
  `proxy load: ${clients} clients for ${durationS} s; heap limit: growth over ` +
    `${HEAP_GROWTH_LIMIT.fraction * 100} % and ${HEAP_GROWTH_LIMIT.bytes / 1024 / 1024} MB fails`,
)
const started = Date.now()
const report = await runProxyLoad({
  durationMs: durationS * 1000,
  clients,
  log: (line) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${line}`),
})
console.log(formatLoadReport(report))
const findings = loadFindings(report)
for (const f of findings) console.log(`FINDING: ${f}`)
console.log(findings.length > 0 ? 'FAILED' : 'PASSED')
process.exit(findings.length > 0 ? 1 : 0)
