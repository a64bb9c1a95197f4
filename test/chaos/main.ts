// `npm run test:chaos -- --duration 300 [--seed N] [--faces library,proxy]`: the long chaos run; exit 1 on any finding.

import { parseArgs } from 'node:util'
import { formatReport } from './checker.js'
import { BOUNDS, runChaos } from './run-chaos.js'

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '300' },
    seed: { type: 'string', default: String(Date.now() % 100_000) },
    faces: { type: 'string', default: 'library,proxy' },
  },
})
const durationS = Number(values.duration)
const seed = Number(values.seed)
if (!(durationS > 0) || !Number.isInteger(seed)) {
  console.error('usage: npm run test:chaos -- --duration SECONDS [--seed N] [--faces library,proxy]')
  process.exit(2)
}
const faces = values.faces
  .split(',')
  .filter((f): f is 'library' | 'proxy' => f === 'library' || f === 'proxy')
console.log(`chaos: ${durationS} s, seed ${seed}, faces ${faces.join(', ')}, slack ${BOUNDS.slackMs} ms`)
const started = Date.now()
const report = await runChaos({
  durationMs: durationS * 1000,
  seed,
  faces,
  onProgress: (m) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${m}`),
})
console.log(formatReport(report))
const failed =
  report.violations.length > 0 ||
  report.lostWrites.length > 0 ||
  report.lostRywWrites > 0 ||
  report.writesOnStandby.length > 0
console.log(failed ? 'FAILED' : 'PASSED')
process.exit(failed ? 1 : 0)
