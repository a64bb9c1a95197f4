// The schedule every node monitor shares (PostgreSQL and MySQL): probe at once on start, then on a
// jittered interval (or sooner, when the engine asks near a tier bound), one probe in flight at a time.

import type { NodeReading } from './node-reading.js'

/** What the loop needs to know of its monitor. */
export interface ProbeLoopOptions {
  readonly name: string
  readonly intervalMs: number
  /** The delay until the next scheduled probe, given the jittered default (probe sooner near a tier bound). */
  readonly nextDelayMs?: (name: string, jittered: number) => number
}

/**
 * Runs `probe` on a schedule until stopped; concurrent `probe()` callers share the probe in flight
 * (one connection, one query at a time).
 *
 * @example
 * const loop = new ProbeLoop({ name: 'replica_1', intervalMs: 250 }, () => readNode())
 * loop.start()
 * await loop.probe() // now, shared with a scheduled probe in flight
 * loop.stop()
 */
export class ProbeLoop {
  readonly #options: ProbeLoopOptions
  readonly #run: () => Promise<NodeReading>
  #timer: NodeJS.Timeout | null = null
  #stopped = false
  #inFlight: Promise<NodeReading> | null = null

  constructor(options: ProbeLoopOptions, run: () => Promise<NodeReading>) {
    this.#options = options
    this.#run = run
  }

  /** True after stop(), until the next start(). */
  get stopped(): boolean {
    return this.#stopped
  }

  /** Starts probing: the first probe runs at once, later ones on the schedule. */
  start(): void {
    this.#stopped = false
    void this.#tick()
  }

  /** Runs one probe now (shared with a probe in flight) and returns its reading. */
  probe(): Promise<NodeReading> {
    if (this.#inFlight) return this.#inFlight
    this.#inFlight = this.#run().finally(() => {
      this.#inFlight = null
    })
    return this.#inFlight
  }

  /** Stops scheduling; a probe in flight finishes but its successor is never scheduled. */
  stop(): void {
    this.#stopped = true
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = null
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return
    await this.probe()
    if (this.#stopped) return
    // ±20% jitter so a fleet of freshet instances does not probe in lockstep.
    const jittered = this.#options.intervalMs * (0.8 + Math.random() * 0.4)
    const delay = this.#options.nextDelayMs?.(this.#options.name, jittered) ?? jittered
    this.#timer = setTimeout(() => void this.#tick(), delay)
    this.#timer.unref()
  }
}
