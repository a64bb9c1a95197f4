// Micro-benchmark of shard routing: what a keyed statement costs on top of an unsharded one (classify),
// for a prepared statement ($1 resolved at Bind), a text with an inlined key, a hint, and the hash alone;
// with --pool, the same through createPool on real servers: the decision (pool.explain, no I/O) and the
// CPU of this process per pool.query, a sharded pool beside an unsharded one on the same shard's nodes.
// Run: npx tsx bench/micro-shard.ts [--pool [--seconds 3] [--rounds 3]]

import { parseArgs } from 'node:util'
import { startShardedCluster } from '../src/cluster/index.js'
import { Classifier } from '../src/core/classify/classifier.js'
import { validateConfig } from '../src/core/config/parse-config.js'
import type { FreshetConfigInput } from '../src/core/config/schema.js'
import { shardSetupOf } from '../src/core/shard/router-from-config.js'
import { hashBucket } from '../src/core/shard/shard-key.js'
import { ShardKeyExtractor } from '../src/core/shard/shard-key-extractor.js'
import { createPool, createShardedPool } from '../src/index.js'
import { alternate, median, nsPerOp, printTable } from './bench-util.js'

const node = (n: string) => ({ name: n, url: `postgres://app@${n}/main` })
const config = validateConfig({
  shards: [
    { name: 'shard_0', primary: node('s0p'), replicas: [node('s0r')] },
    { name: 'shard_1', primary: node('s1p'), replicas: [node('s1r')] },
  ],
  sharding: {
    tables: { orders: { key: 'customer_id' }, customers: { key: 'id' } },
    map: [
      { partition_key_range: '0-511', target_backend: 'shard_0' },
      { partition_key_range: '512-1023', target_backend: 'shard_1' },
    ],
    cross_shard: 'error',
  },
})

async function main(): Promise<void> {
  await Classifier.loadParser()
  const setup = shardSetupOf(config)!
  const classifier = new Classifier({ cacheSize: 1_000_000 })
  const keys = new ShardKeyExtractor(setup.tables, 1_000_000)
  const PREPARED = 'SELECT id, total FROM orders o WHERE o.customer_id = $1 AND status = $2'
  const route = (sql: string, params?: unknown[]) => {
    const c = classifier.classify(sql)
    return setup.router.route({
      write: c.requiresPrimary,
      facts: keys.facts(sql),
      ...(params ? { params } : {}),
      ...(c.hints.shardKey ? { hints: { shardKey: c.hints.shardKey } } : {}),
    })
  }
  const inlined = Array.from(
    { length: 30_000 },
    (_, i) => `SELECT id, total FROM orders WHERE customer_id = ${i} AND status = 'open'`,
  )
  const hinted = Array.from(
    { length: 30_000 },
    (_, i) => `/* SHARD_KEY: ${i} */ SELECT id FROM orders WHERE status = 'open'`,
  )
  classifier.classify(PREPARED)
  const rows: (string | number)[][] = []
  const row = (what: string, ns: number) => rows.push([what, ns.toFixed(0)])
  row(
    'unsharded: classify, cached text',
    nsPerOp(1_000_000, () => classifier.classify(PREPARED)),
  )
  row(
    'keyed, prepared ($1 at Bind): classify + keys + route',
    nsPerOp(1_000_000, (i) => route(PREPARED, [i, 'open'])),
  )
  row(
    '  of which: hash bucket of an int8 key',
    nsPerOp(1_000_000, (i) => hashBucket(BigInt(i), 'integer', 1024)),
  )
  row(
    'keyed, inlined literal, first-seen text (one parse)',
    nsPerOp(inlined.length - 2000, (i) => route(inlined[i + 2000]!)),
  )
  row(
    'keyed, SHARD_KEY hint, first-seen text',
    nsPerOp(hinted.length - 2000, (i) => route(hinted[i + 2000]!)),
  )
  printTable(['case', 'ns/op'], rows)
}

/** CPU microseconds of this process per query, running `query` back to back for `seconds`. */
async function cpuPerQuery(query: (i: number) => Promise<unknown>, seconds: number): Promise<number> {
  const deadline = performance.now() + seconds * 1000
  const before = process.cpuUsage()
  let n = 0
  while (performance.now() < deadline) await query(n++)
  const used = process.cpuUsage(before)
  return (used.user + used.system) / n
}

/** The pool part: a sharded createPool beside an unsharded one over shard_0's own nodes. */
async function poolBench(seconds: number, rounds: number): Promise<void> {
  const sc = await startShardedCluster({ shards: 2, replicasPerShard: 1 })
  try {
    await sc.createShardedTable('orders', 'id bigint, customer_id bigint, total numeric', 'customer_id')
    const s0 = sc.shard('shard_0')
    // keys that live on shard_0, so both pools read the same server
    const keys: number[] = []
    for (let k = 1; keys.length < 1000; k++) {
      const b = hashBucket(BigInt(k), 'integer', sc.bucketCount)
      if (b >= s0.buckets[0] && b <= s0.buckets[1]) keys.push(k)
    }
    await s0.cluster.query('primary', 'INSERT INTO orders SELECT k, k, k FROM unnest($1::bigint[]) k', [keys])
    await sc.waitForCatchUp()
    const common = {
      pools: { primary: { min_idle: 1, max_active: 4 }, replicas: { min_idle: 1, max_active: 4 } },
      telemetry: { log_level: 'silent' as const },
    }
    const sharded = createShardedPool({ ...sc.config(), ...common } as FreshetConfigInput)
    const plain = createPool({
      cluster: {
        primary: { name: 's0_primary', url: s0.cluster.primary.url('app') },
        replicas: s0.cluster.replicas.map((r, i) => ({ name: s0.nodeNames[i + 1]!, url: r.url('app') })),
      },
      ...common,
    })
    await Promise.all([sharded.ready(), plain.ready()])
    const SQL = '/* FRESHNESS: EVENTUAL */ SELECT total FROM orders WHERE customer_id = $1'
    const rows: (string | number)[][] = []
    const decide = {
      plain: nsPerOp(200_000, () => plain.explain(SQL)),
      sharded: nsPerOp(200_000, (i) => sharded.explain(SQL, undefined, [keys[i % keys.length]])),
    }
    rows.push([
      'decision (pool.explain, ns)',
      decide.plain.toFixed(0),
      decide.sharded.toFixed(0),
      (decide.sharded / decide.plain).toFixed(2),
    ])
    const cpu = await alternate(
      {
        plain: () => cpuPerQuery((i) => plain.query(SQL, [keys[i % keys.length]]), seconds),
        sharded: () => cpuPerQuery((i) => sharded.query(SQL, [keys[i % keys.length]]), seconds),
      },
      rounds,
    )
    const base = median(cpu.plain)
    const ours = median(cpu.sharded)
    rows.push([
      'pool.query, CPU us/query (this process)',
      base.toFixed(1),
      ours.toFixed(1),
      (ours / base).toFixed(2),
    ])
    printTable(['through createPool', 'unsharded', 'sharded', 'ratio'], rows)
    await Promise.all([sharded.end(), plain.end()])
  } finally {
    await sc.stop()
  }
}

const { values } = parseArgs({
  options: { pool: { type: 'boolean' }, seconds: { type: 'string' }, rounds: { type: 'string' } },
})
await main()
if (values.pool) await poolBench(Number(values.seconds ?? 3), Number(values.rounds ?? 3))
