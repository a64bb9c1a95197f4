// One command for every benchmark: `npm run bench` (add `-- --quick` for short rounds, `-- --no-e2e` to skip end to end).
// Each benchmark runs in its own process so one's heap and JIT state do not colour the next.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'

const quick = process.argv.includes('--quick')
const benches: [string, string[]][] = [
  ['bench/micro-route.ts', []],
  ['bench/micro-classify.ts', []],
  ['bench/micro-shard.ts', []],
  ['bench/micro-frame.ts', []],
  ['bench/library.ts', quick ? ['--seconds', '1', '--rounds', '2'] : ['--seconds', '5', '--rounds', '3']],
  [
    'bench/mysql-library.ts',
    quick ? ['--seconds', '1', '--rounds', '2'] : ['--seconds', '3', '--rounds', '3'],
  ],
  ['bench/proxy.ts', quick ? ['--quick'] : []],
  // End to end (pgbench through pgbouncer, pgpool-II, the freshet proxy; routing under lag): minutes, not seconds.
  ...(process.argv.includes('--no-e2e')
    ? []
    : [['bench/e2e.ts', quick ? ['--quick'] : []] as [string, string[]]]),
]

let failed = 0
for (const [file, args] of benches) {
  if (!existsSync(file)) continue
  console.log(`\n== ${file} ${args.join(' ')}`)
  const res = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', file, ...args], {
    stdio: 'inherit',
  })
  if (res.status !== 0) {
    failed++
    console.error(`${file} exited with ${res.status}`)
  }
}
process.exit(failed ? 1 : 0)
