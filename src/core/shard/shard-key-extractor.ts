// Shard keys of SQL text, cached by exact text: a prepared statement (`WHERE customer_id = $1`) is parsed
// once and its keys resolved from each Bind's parameters; a text with inlined literals costs one parse.

import { parseSync } from 'libpg-query'
import { LruCache } from '../classify/lru-cache.js'
import { extractShardKeys, type ShardedTables, type ShardKeyFacts } from './extract-shard-keys.js'

const NOTHING: ShardKeyFacts = Object.freeze({
  keys: [],
  unkeyed: [],
  sharded: [],
  moves: [],
  unknownMove: false,
})

/**
 * Parses SQL (libpg-query, loaded once by the classifier) and extracts its {@link ShardKeyFacts}, caching
 * by exact text. A text the parser refuses names no sharded table here (its classification already
 * sends it to the primary as `unknown`).
 * @example
 * const keys = new ShardKeyExtractor(tables)
 * router.route({ write: false, facts: keys.facts('SELECT * FROM orders WHERE customer_id = $1'), params: ['42'] })
 */
export class ShardKeyExtractor {
  readonly #tables: ShardedTables
  readonly #cache: LruCache<ShardKeyFacts>

  constructor(tables: ShardedTables, cacheSize = 10_000) {
    this.#tables = tables
    this.#cache = new LruCache(cacheSize)
  }

  /** The shard-key facts of `sql`. */
  facts(sql: string): ShardKeyFacts {
    const hit = this.#cache.get(sql)
    if (hit) return hit
    let facts = NOTHING
    try {
      facts = extractShardKeys(parseSync(sql).stmts ?? [], this.#tables)
    } catch {
      // unparsable: the classifier reports it; nothing to extract
    }
    this.#cache.set(sql, facts)
    return facts
  }
}
