// A label-less Prometheus histogram for per-statement timings: observing is a bucket search and three adds.

import type { MetricValueWithName, Registry } from 'prom-client'

/** What prom-client's registry reads from a metric's `get()`. */
export interface HistogramSnapshot {
  readonly name: string
  readonly help: string
  readonly type: 'histogram'
  readonly aggregator: 'sum'
  readonly values: MetricValueWithName<string>[]
}

/**
 * A histogram without labels that prom-client's registry exposes like its own `Histogram`, for values
 * observed on every statement. prom-client's `observe` validates labels and hashes them on each call
 * (a visible share of the proxy's profile); this one counts into a typed array and builds the
 * cumulative buckets only when scraped.
 *
 * @example
 * const h = new BucketHistogram({ name: 'x_seconds', help: 'x', buckets: [0.001, 0.01], registers: [registry] })
 * h.observe(0.002)
 */
export class BucketHistogram {
  readonly name: string
  readonly help: string
  readonly type = 'histogram' as const
  readonly aggregator = 'sum' as const
  readonly #bounds: Float64Array
  // one slot per bound plus +Inf
  readonly #counts: Float64Array
  #sum = 0
  #count = 0

  constructor(options: {
    name: string
    help: string
    buckets: readonly number[]
    registers: readonly Registry[]
  }) {
    this.name = options.name
    this.help = options.help
    this.#bounds = Float64Array.from([...options.buckets].sort((a, b) => a - b))
    this.#counts = new Float64Array(this.#bounds.length + 1)
    for (const r of options.registers) r.registerMetric(this as never)
  }

  /** Counts one value (a non-finite value is ignored, as it cannot be summed). */
  observe(value: number): void {
    if (!Number.isFinite(value)) return
    const bounds = this.#bounds
    let i = 0
    while (i < bounds.length && value > bounds[i]!) i++
    this.#counts[i]!++
    this.#sum += value
    this.#count++
  }

  /** prom-client's metric interface: the cumulative buckets, sum and count. */
  get(): Promise<HistogramSnapshot> {
    const values: MetricValueWithName<string>[] = []
    let cumulative = 0
    for (let i = 0; i <= this.#bounds.length; i++) {
      cumulative += this.#counts[i]!
      const le = i < this.#bounds.length ? this.#bounds[i]! : '+Inf'
      values.push({ labels: { le }, value: cumulative, metricName: `${this.name}_bucket` })
    }
    values.push({ labels: {}, value: this.#sum, metricName: `${this.name}_sum` })
    values.push({ labels: {}, value: this.#count, metricName: `${this.name}_count` })
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: 'histogram',
      aggregator: 'sum',
      values,
    })
  }

  reset(): void {
    this.#counts.fill(0)
    this.#sum = 0
    this.#count = 0
  }
}
