// A token bucket on an injected clock: `rate` tokens per second, bursts up to `capacity`.

/**
 * Classic token bucket. Refills continuously from the clock passed to `take`, so it needs no timer.
 *
 * @example
 * const bucket = new TokenBucket(10, 10, Date.now())
 * if (!bucket.take(Date.now())) throw new Error('over the cap')
 */
export class TokenBucket {
  readonly #perMs: number
  readonly #capacity: number
  #tokens: number
  #last: number

  /**
   * @param ratePerSecond tokens added per second (> 0)
   * @param capacity most tokens held at once; the bucket starts full
   * @param now epoch ms of creation
   */
  constructor(ratePerSecond: number, capacity: number, now: number) {
    if (!(ratePerSecond > 0)) throw new RangeError(`rate must be > 0, got ${ratePerSecond}`)
    if (!(capacity >= 1)) throw new RangeError(`capacity must be >= 1, got ${capacity}`)
    this.#perMs = ratePerSecond / 1000
    this.#capacity = capacity
    this.#tokens = capacity
    this.#last = now
  }

  /** Takes one token if there is one; returns false (and takes nothing) when the bucket is empty. */
  take(now: number): boolean {
    this.#refill(now)
    if (this.#tokens < 1) return false
    this.#tokens -= 1
    return true
  }

  /** Tokens available at `now` (fractional). */
  available(now: number): number {
    this.#refill(now)
    return this.#tokens
  }

  #refill(now: number): void {
    // a clock that steps backwards refills nothing instead of draining the bucket
    if (now > this.#last) {
      this.#tokens = Math.min(this.#capacity, this.#tokens + (now - this.#last) * this.#perMs)
      this.#last = now
    }
  }
}
