// Records where each statement of a named step went (the pool's 'decision' events), for the MySQL examples.

import type { Decision } from '../../src/core/route/decision.js'
import type { MysqlPool } from '../../src/mysql/index.js'

/** Targets per step: `await steps.run('feed', () => ...)` then `steps.targets.feed` is e.g. ['replica_1']. */
export class Steps {
  readonly targets: Record<string, string[]> = {}
  #current: string | null = null

  constructor(pool: MysqlPool, log: (line: string) => void) {
    pool.on('decision', (d: Decision) => {
      if (this.#current === null) return
      this.targets[this.#current]!.push(d.target ?? 'none')
      log(`${this.#current}: routed to ${d.target} (${d.reason})`)
    })
  }

  async run<T>(name: string, fn: () => Promise<T>): Promise<T> {
    this.#current = name
    this.targets[name] ??= []
    try {
      return await fn()
    } finally {
      this.#current = null
    }
  }
}
