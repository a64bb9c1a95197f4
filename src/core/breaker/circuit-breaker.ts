// Per-node circuit breaker: closed -> open after N consecutive failures, half-open after a cooldown, one trial.

import type { BreakerState } from '../topology/node-state.js'

/** The small strategy interface the backend talks to (after cockatiel's `IBreaker`). */
export interface Breaker {
  /** Current state; an open breaker whose cooldown has passed reads as `half_open`. */
  readonly state: BreakerState
  /**
   * May a request go to this node now? Closed: yes. Open: no. Half-open: yes for exactly one trial
   * request at a time; the caller must report its outcome with `success()` or `failure()`.
   */
  allowRequest(): boolean
  /** A request (or health probe) to the node succeeded. */
  success(): void
  /** A request (or health probe) to the node failed at the connection level. */
  failure(): void
}

export interface CircuitBreakerOptions {
  /** Consecutive failures that open a closed breaker (config `circuit_breaker.failure_threshold`). */
  readonly failureThreshold: number
  /** How long an open breaker refuses requests before it lets one trial through (`cooldown_ms`). */
  readonly cooldownMs: number
  /** Injected clock, epoch ms. */
  readonly now: () => number
  /** Called on every transition, synchronously, before the call that caused it returns. */
  readonly onStateChange?: (from: BreakerState, to: BreakerState) => void
}

/**
 * A consecutive-failure breaker. Emits nothing itself: wire `onStateChange` to metrics and logs.
 *
 * A half-open trial that never reports back (a request lost without success or failure) would hold the
 * breaker half-open forever, so a trial lease expires after another `cooldownMs` and a new trial may go.
 *
 * @example
 * const breaker = new CircuitBreaker({ failureThreshold: 3, cooldownMs: 5000, now: Date.now })
 * if (breaker.allowRequest()) {
 *   try { await run(); breaker.success() } catch (err) { breaker.failure(); throw err }
 * }
 */
export class CircuitBreaker implements Breaker {
  readonly #threshold: number
  readonly #cooldownMs: number
  readonly #now: () => number
  readonly #onStateChange: ((from: BreakerState, to: BreakerState) => void) | undefined
  #state: BreakerState = 'closed'
  #failures = 0
  #openedAt = 0
  /** Epoch ms when the current half-open trial was handed out, or null when none is in flight. */
  #trialAt: number | null = null

  constructor(options: CircuitBreakerOptions) {
    if (!Number.isInteger(options.failureThreshold) || options.failureThreshold < 1) {
      throw new RangeError(`failureThreshold must be a positive integer, got ${options.failureThreshold}`)
    }
    if (!(options.cooldownMs >= 0)) throw new RangeError(`cooldownMs must be >= 0, got ${options.cooldownMs}`)
    this.#threshold = options.failureThreshold
    this.#cooldownMs = options.cooldownMs
    this.#now = options.now
    this.#onStateChange = options.onStateChange
  }

  get state(): BreakerState {
    if (this.#state === 'open' && this.#now() - this.#openedAt >= this.#cooldownMs) {
      this.#trialAt = null
      this.#transition('half_open')
    }
    return this.#state
  }

  /** Consecutive failures counted while closed. */
  get consecutiveFailures(): number {
    return this.#failures
  }

  allowRequest(): boolean {
    const state = this.state
    if (state === 'closed') return true
    if (state === 'open') return false
    const now = this.#now()
    if (this.#trialAt !== null && now - this.#trialAt < this.#cooldownMs) return false
    this.#trialAt = now
    return true
  }

  success(): void {
    const state = this.state
    this.#failures = 0
    // A late success from a request sent before the breaker opened proves nothing about the node now.
    if (state === 'half_open') {
      this.#trialAt = null
      this.#transition('closed')
    }
  }

  failure(): void {
    const state = this.state
    if (state === 'half_open') {
      this.#open()
      return
    }
    if (state === 'open') return
    this.#failures++
    if (this.#failures >= this.#threshold) this.#open()
  }

  #open(): void {
    this.#openedAt = this.#now()
    this.#trialAt = null
    this.#failures = 0
    this.#transition('open')
  }

  #transition(to: BreakerState): void {
    const from = this.#state
    if (from === to) return
    this.#state = to
    this.#onStateChange?.(from, to)
  }
}
