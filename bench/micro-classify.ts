// Micro-benchmark of Classifier.classify: cached, normalised-cache hit, first-seen (parse), hint lexing.
// Run: npx tsx bench/micro-classify.ts
import { Classifier } from '../src/core/classify/classifier.js'
import { lexHints } from '../src/core/hints/lex-hints.js'

const SQL =
  'SELECT "public"."User"."id", "public"."User"."email" FROM "public"."User" WHERE ("public"."User"."id" = $1 AND 1=1) LIMIT $2 OFFSET $3'

function measure(name: string, iterations: number, fn: (i: number) => unknown): void {
  for (let i = 0; i < Math.min(iterations, 2000); i++) fn(i)
  const start = process.hrtime.bigint()
  for (let i = 0; i < iterations; i++) fn(i)
  const ns = Number(process.hrtime.bigint() - start) / iterations
  console.log(`${name.padEnd(44)} ${ns.toFixed(0).padStart(8)} ns/op  (${iterations} ops)`)
}

async function main(): Promise<void> {
  await Classifier.loadParser()
  // the machine's speed: compare the rows below against a bare Map lookup
  const map = new Map<string, number>([[SQL, 1]])
  measure('baseline: Map.get of the same text', 2_000_000, () => map.get(SQL))
  const cached = new Classifier()
  cached.classify(SQL)
  measure('classify, cached (exact text)', 2_000_000, () => cached.classify(SQL))

  const inlined = new Classifier({ cacheSize: 1_000_000 })
  const texts = Array.from(
    { length: 50_000 },
    (_, i) => `SELECT * FROM orders WHERE id = ${i} AND status = 'open'`,
  )
  inlined.classify(texts[0]!)
  measure('classify, first-seen text, normalised hit', texts.length - 2000, (i) =>
    inlined.classify(texts[i + 2000]!),
  )

  const traced = Array.from(
    { length: 50_000 },
    (_, i) => `${SQL} /*traceparent='00-${i.toString(16).padStart(32, '0')}-00f067aa0ba902b7-01'*/`,
  )
  measure('classify, sqlcommenter traceparent per request', traced.length - 2000, (i) =>
    inlined.classify(traced[i + 2000]!),
  )

  const fresh = Array.from(
    { length: 20_000 },
    (_, i) => `SELECT a, b FROM t${i} JOIN u ON u.id = t${i}.u_id WHERE x = $1`,
  )
  const parser = new Classifier({ cacheSize: 1_000_000 })
  measure('classify, first-seen statement (parseSync)', fresh.length - 2000, (i) =>
    parser.classify(fresh[i + 2000]!),
  )

  measure('lexHints, no comments', 2_000_000, () => lexHints(SQL))
  const hinted = `/* FRESHNESS: near_rt */ ${SQL}`
  measure('lexHints, one leading hint', 500_000, () => lexHints(hinted))
}

await main()
