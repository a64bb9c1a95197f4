// The lag of every replica over the last minutes, sampled by the admin server itself, so the dashboard
// shows a history from the moment it opens (not only from when its own polling started).

import type { AdminEngine } from './admin-engine.js'

/** One replica's samples: [epoch ms, lag ms or null when unknown]. */
export type LagSeries = [number, number | null][]

/**
 * Samples `engine.snapshot()` every `intervalMs` and keeps `windowMs` of replica lag.
 * @example
 * const history = new LagHistory(engine)
 * history.start()
 * history.toJSON() // { now, window_ms, interval_ms, nodes: { replica_1: [[t, lag_ms], ...] } }
 */
export class LagHistory {
  readonly #engine: Pick<AdminEngine, 'snapshot'>
  readonly #windowMs: number
  readonly #intervalMs: number
  readonly #series = new Map<string, LagSeries>()
  #timer: NodeJS.Timeout | null = null

  constructor(engine: Pick<AdminEngine, 'snapshot'>, windowMs = 5 * 60_000, intervalMs = 1000) {
    this.#engine = engine
    this.#windowMs = windowMs
    this.#intervalMs = intervalMs
  }

  start(): void {
    if (this.#timer !== null) return
    this.sample()
    this.#timer = setInterval(() => this.sample(), this.#intervalMs)
    this.#timer.unref()
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }

  /** Takes one sample now (the timer calls this). */
  sample(now = Date.now()): void {
    const seen = new Set<string>()
    for (const n of this.#engine.snapshot()) {
      if (n.role !== 'replica') continue
      seen.add(n.name)
      let series = this.#series.get(n.name)
      if (series === undefined) {
        series = []
        this.#series.set(n.name, series)
      }
      series.push([now, n.lag_ms])
      while (series.length > 0 && series[0]![0] < now - this.#windowMs) series.shift()
    }
    // a node that left the topology (or became the primary) has no lag line any more
    for (const name of this.#series.keys()) if (!seen.has(name)) this.#series.delete(name)
  }

  toJSON(now = Date.now()): {
    now: number
    window_ms: number
    interval_ms: number
    nodes: Record<string, LagSeries>
  } {
    return {
      now,
      window_ms: this.#windowMs,
      interval_ms: this.#intervalMs,
      nodes: Object.fromEntries(this.#series),
    }
  }
}
