// Micro-benchmark of the hot path of a decision: classify (cached) + decide, against a live-looking
// topology. Run: npx tsx bench/micro-route.ts
import { Classifier } from '../src/core/classify/classifier.js'
import { parseConfig } from '../src/core/config/parse-config.js'
import { Decider } from '../src/core/route/decider.js'
import { IDLE_SESSION } from '../src/core/route/routing-context.js'
import type { NodeState, TopologyView } from '../src/core/topology/node-state.js'
import { bytesPerOp, nsPerOp, printTable } from './bench-util.js'

const config = parseConfig(`
cluster:
  primary: { name: primary, url: postgres://x }
  replicas: [{ name: replica_1, url: postgres://y }, { name: replica_2, url: postgres://z }]
domains: { ledger_entries: strict }
`)

/** One instant for every topology and decision here: staleness bounds stay what the nodes say. */
const T = Date.now()

function node(name: string, role: 'primary' | 'replica', lagMs: number): NodeState {
  return Object.freeze({
    name,
    role,
    weight: 100,
    zone: null,
    healthy: true,
    breaker: 'closed',
    lagMs,
    replayLsn: 1000n,
    checkedAt: T,
    freshAsOf: T - lagMs,
    active: 0,
    latencyEwmaMs: 1,
    rampFactor: 1,
  })
}
const topology: TopologyView = Object.freeze({
  primary: 'primary',
  replicas: ['replica_1', 'replica_2'],
  nodes: new Map([
    ['primary', node('primary', 'primary', 0)],
    ['replica_1', node('replica_1', 'replica', 20)],
    ['replica_2', node('replica_2', 'replica', 40)],
  ]),
})

const STATEMENTS = {
  'prisma select (unannotated)':
    'SELECT "public"."User"."id", "public"."User"."email" FROM "public"."User" WHERE "public"."User"."id" = $1 LIMIT $2 OFFSET $3',
  'hinted NEAR_RT read': '/* FRESHNESS: NEAR_RT */ SELECT id, total FROM orders WHERE customer_id = $1',
  'insert (write)': 'INSERT INTO orders (customer_id, total) VALUES ($1, $2) RETURNING id',
  'domain strict read': 'SELECT sum(amount) FROM ledger_entries WHERE account_id = $1',
}

export async function runMicroRoute(): Promise<
  { name: string; classifyNs: number; decideNs: number; totalNs: number }[]
> {
  await Classifier.loadParser()
  const classifier = new Classifier()
  const decider = new Decider(config)
  const context = { tier: undefined } as const
  const results = []
  for (const [name, sql] of Object.entries(STATEMENTS)) {
    const c = classifier.classify(sql)
    const classifyNs = nsPerOp(1_000_000, () => classifier.classify(sql))
    const input = {
      session: IDLE_SESSION,
      context: name.includes('unannotated') ? {} : context,
      topology,
      now: T,
    }
    const decideNs = nsPerOp(1_000_000, () => decider.decide(c, input))
    const totalNs = nsPerOp(1_000_000, () => decider.decide(classifier.classify(sql), input))
    results.push({ name, classifyNs, decideNs, totalNs })
  }
  const first = new Classifier({ cacheSize: 100_000 })
  const fresh = Array.from(
    { length: 5000 },
    (_, i) => `SELECT a, b FROM t${i} JOIN u ON u.id = t${i}.u_id WHERE x = $1`,
  )
  // No warm-up here: every text must be new to the classifier.
  const t0 = process.hrtime.bigint()
  for (const sql of fresh) first.classify(sql)
  const firstNs = Number(process.hrtime.bigint() - t0) / fresh.length
  results.push({
    name: 'first-seen statement (one parse)',
    classifyNs: firstNs,
    decideNs: 0,
    totalNs: firstNs,
  })
  return results
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await runMicroRoute()
  printTable(
    ['statement', 'classify ns', 'decide ns', 'classify+decide ns'],
    rows.map((r) => [r.name, r.classifyNs.toFixed(0), r.decideNs.toFixed(0), r.totalNs.toFixed(0)]),
  )
  const c = new Classifier()
  const sql = STATEMENTS['hinted NEAR_RT read']
  const d = new Decider(config)
  const input = { session: IDLE_SESSION, context: {}, topology, now: T }
  const bytes = bytesPerOp(200_000, () => d.decide(c.classify(sql), input))
  console.log(
    `\nheap growth per cached classify+decide: ~${bytes.toFixed(0)} bytes (approximate; run with --expose-gc)`,
  )
}
