// Micro-benchmark of shard routing: what a keyed statement costs on top of an unsharded one (classify),
// for a prepared statement ($1 resolved at Bind), a text with an inlined key, a hint, and the hash alone.
// Run: npx tsx bench/micro-shard.ts
import { Classifier } from '../src/core/classify/classifier.js'
import { validateConfig } from '../src/core/config/parse-config.js'
import { shardSetupOf } from '../src/core/shard/router-from-config.js'
import { hashBucket } from '../src/core/shard/shard-key.js'
import { ShardKeyExtractor } from '../src/core/shard/shard-key-extractor.js'
import { nsPerOp, printTable } from './bench-util.js'

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

await main()
