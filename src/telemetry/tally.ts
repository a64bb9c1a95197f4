// Per-statement counts kept as plain numbers and handed to their prom-client Counter when it is read.

import type { Counter } from 'prom-client'

/** One label combination's count since the last hand-over. */
export interface Tally {
  n: number
}

/**
 * The children of a prom-client `Counter` counted on every statement. prom-client's `inc` hashes and
 * validates the labels on each call (three per statement in the proxy's profile); a tally is a field
 * increment, and the counts reach the counter in its `collect` hook, so every read of the registry
 * (scrape, JSON for the workers' aggregation, tests) sees them.
 *
 * @example
 * const tallies = new Tallies<'tier'>()
 * const counter = new Counter({ name: 'x_total', help: 'x', labelNames: ['tier'], collect: () => tallies.flush(counter) })
 * tallies.of({ tier: 'near_rt' }).n++
 */
export class Tallies<L extends string> {
  readonly #all: { readonly labels: Partial<Record<L, string>>; readonly tally: Tally }[] = []

  /** A new tally for `labels` (cache it: each call adds one). */
  of(labels: Partial<Record<L, string>>): Tally {
    const tally: Tally = { n: 0 }
    this.#all.push({ labels, tally })
    return tally
  }

  /** Adds the counts since the last flush to `counter`. */
  flush(counter: Counter<L>): void {
    for (const { labels, tally } of this.#all) {
      if (tally.n === 0) continue
      counter.inc(labels, tally.n)
      tally.n = 0
    }
  }
}
