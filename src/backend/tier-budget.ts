// The share of a node's pool a freshness tier may hold (`pools.tier_budgets`), used by the library's node
// pools and the proxy's server pool alike: a surge of EVENTUAL reads cannot starve STRICT or NEAR_RT.

/**
 * A counting semaphore with a FIFO of waiters: the per-tier share of a node's pool.
 * @example
 * const b = new Budget(2)
 * const gate = b.acquire() // null: a slot was free; else a promise that resolves when one is
 * if (gate) await gate
 * try { ... } finally { b.release() }
 */
export class Budget {
  #inUse = 0
  readonly #waiters: (() => void)[] = []
  constructor(readonly capacity: number) {}

  get waiting(): number {
    return this.#waiters.length
  }

  /** Takes a slot now (returns null) or queues for one (returns a promise). */
  acquire(): Promise<void> | null {
    if (this.#inUse < this.capacity) {
      this.#inUse++
      return null
    }
    return new Promise((resolve) => this.#waiters.push(resolve))
  }

  /** Takes a slot only if one is free now. */
  tryAcquire(): boolean {
    if (this.#inUse >= this.capacity) return false
    this.#inUse++
    return true
  }

  /** Gives a slot back: to the first waiter, else to the pool. */
  release(): void {
    const next = this.#waiters.shift()
    if (next) next()
    else this.#inUse--
  }
}

/** Slots a tier with `share` of `maxActive` connections may hold: at least one. */
export function budgetCapacity(share: number, maxActive: number): number {
  return Math.max(1, Math.floor(share * maxActive))
}
