// Function volatility from pg_catalog, looked up once per function (pgpool-II does the same): reads that
// call a volatile function outside the read-only allow-list must run on the primary.

import type pg from 'pg'

export type Volatility = 'i' | 's' | 'v'

const RANK: Record<Volatility, number> = { i: 0, s: 1, v: 2 }

/**
 * Loads every function's volatility in one query at start, then answers synchronously. A name with
 * several overloads takes the most volatile one. Unknown names return undefined (the decision treats
 * that as volatile) and are looked up in the background.
 */
export class VolatilityCache {
  readonly #map = new Map<string, Volatility>()
  readonly #pending = new Set<string>()
  #query: ((sql: string, params?: unknown[]) => Promise<pg.QueryResult>) | null = null

  /** Loads all functions visible to the connection. */
  async load(query: (sql: string, params?: unknown[]) => Promise<pg.QueryResult>): Promise<void> {
    this.#query = query
    const res = await query(
      `SELECT n.nspname AS schema, p.proname AS name, p.provolatile AS v
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace`,
    )
    for (const row of res.rows as { schema: string; name: string; v: Volatility }[])
      this.#add(row.schema, row.name, row.v)
  }

  /** Volatility of a function name as written (`fn` or `schema.fn`, any case), if known. */
  get(name: string): Volatility | undefined {
    const key = name.toLowerCase()
    const hit = this.#map.get(key)
    if (hit === undefined && this.#query && !this.#pending.has(key)) void this.#lookup(key)
    return hit
  }

  /** Number of names known. */
  get size(): number {
    return this.#map.size
  }

  #add(schema: string, name: string, v: Volatility): void {
    for (const key of [name, `${schema}.${name}`]) {
      const prev = this.#map.get(key)
      if (prev === undefined || RANK[v] > RANK[prev]) this.#map.set(key, v)
    }
  }

  async #lookup(key: string): Promise<void> {
    const query = this.#query
    if (!query) return
    this.#pending.add(key)
    try {
      const dot = key.lastIndexOf('.')
      const name = dot >= 0 ? key.slice(dot + 1) : key
      const res = await query(
        `SELECT n.nspname AS schema, p.proname AS name, p.provolatile AS v
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.proname = $1`,
        [name],
      )
      for (const row of res.rows as { schema: string; name: string; v: Volatility }[])
        this.#add(row.schema, row.name, row.v)
    } catch {
      // The next call retries; until then the function counts as volatile (primary), which is safe.
    } finally {
      this.#pending.delete(key)
    }
  }
}
