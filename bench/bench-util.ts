// Shared helpers for the benchmarks: timing loops, A/B alternation, a plain-text table, a proxy engine.

import { parseConfig } from '../src/core/config/parse-config.js'
import { RoutingEngine } from '../src/routing/routing-engine.js'

/** ns per operation of `fn` over `iterations`, after a warm-up. */
export function nsPerOp(iterations: number, fn: (i: number) => unknown): number {
  for (let i = 0; i < Math.min(iterations, 5000); i++) fn(i)
  const start = process.hrtime.bigint()
  for (let i = 0; i < iterations; i++) fn(i)
  return Number(process.hrtime.bigint() - start) / iterations
}

/** Bytes allocated per operation (heap growth with GC disabled in between is not available: approximation). */
export function bytesPerOp(iterations: number, fn: (i: number) => unknown): number {
  const gc = (globalThis as { gc?: () => void }).gc
  gc?.()
  const before = process.memoryUsage().heapUsed
  for (let i = 0; i < iterations; i++) fn(i)
  const after = process.memoryUsage().heapUsed
  return Math.max(0, (after - before) / iterations)
}

/** Prints rows as an aligned table. */
export function printTable(headers: string[], rows: (string | number)[][]): void {
  const cells = [headers, ...rows.map((r) => r.map(String))]
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)))
  for (const [n, row] of cells.entries()) {
    console.log(row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '))
    if (n === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '))
  }
}

/** Runs `rounds` alternating rounds of each variant (A B A B ...) so machine noise hits all alike. */
export async function alternate<T extends string>(
  variants: Record<T, () => Promise<number>>,
  rounds: number,
): Promise<Record<T, number[]>> {
  const out = {} as Record<T, number[]>
  for (const k of Object.keys(variants) as T[]) out[k] = []
  for (let r = 0; r < rounds; r++) {
    for (const k of Object.keys(variants) as T[]) out[k].push(await variants[k]())
  }
  return out
}

/**
 * The median of the finite values: a round that failed (pgbench printed no TPS: NaN) does not count,
 * and NaN comes back only when no round gave a figure.
 */
export function median(xs: number[]): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/**
 * A routing engine for a harness cluster with trust auth on 127.0.0.1:0 and silent logs; `proxy` and
 * `pools` are merged into those sections (the benchmarks' proxy setup).
 */
export function benchEngine(
  cluster: { primary: { name: string; url(): string }; replicas: readonly { name: string; url(): string }[] },
  sections: {
    proxy?: Record<string, unknown>
    pools?: Record<string, unknown>
    consistency?: Record<string, unknown>
  } = {},
): RoutingEngine {
  return new RoutingEngine(
    parseConfig(
      JSON.stringify({
        version: 1,
        cluster: {
          primary: { name: cluster.primary.name, url: cluster.primary.url() },
          replicas: cluster.replicas.map((r) => ({ name: r.name, url: r.url() })),
        },
        pools: sections.pools ?? {},
        ...(sections.consistency ? { consistency: sections.consistency } : {}),
        proxy: { listen: '127.0.0.1:0', auth: { type: 'trust' }, ...sections.proxy },
        telemetry: { log_level: 'silent' },
      }),
    ),
  )
}
