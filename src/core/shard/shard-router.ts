// Picks the shard of a statement from the ranked key sources (ROUTE_TO / SHARD_KEY hints, request context,
// SET freshet.shard_key, the parsed statement) and enforces the shard rules: a transaction stays on one
// shard, a write never spans shards, and what names no single shard goes to the aggregate node or fails.

import { CrossShardError, ShardKeyError } from '../errors.js'
import type { KeyRef, ShardKeyFacts } from './extract-shard-keys.js'
import { formatShardKey, normalizeShardKey, type ShardKeyType } from './shard-key.js'
import type { ShardMap } from './shard-map.js'

/**
 * Where the shard came from, highest rank first (like PgDog's ShardSource): a `ROUTE_TO` hint naming a
 * shard or one of its nodes, a `SHARD_KEY` hint, the request context, `SET freshet.shard_key`, the
 * statement's own key, the open transaction's shard, `any` (the statement reads no sharded table: the
 * default shard serves it), `cross_shard` (it names no single shard: the aggregate node serves it).
 */
export type ShardSource =
  | 'route_to'
  | 'hint'
  | 'context'
  | 'session'
  | 'statement'
  | 'transaction'
  | 'any'
  | 'cross_shard'

/** The aggregate node's pseudo shard name in decisions and transaction pins. */
export const AGGREGATE = '@aggregate'

/** Which shard serves a statement and why; frozen, printed as is by explain and the decision log. */
export interface ShardDecision {
  /** A shard name from `shards`, or {@link AGGREGATE}. */
  readonly shard: string
  readonly source: ShardSource
  /** The key that decided, as text (`42`, `'eu'`), when a key decided. */
  readonly key?: string
  /** Sharded tables the statement reached without a key (cross-shard statements: the metric's labels). */
  readonly crossShardTables?: readonly string[]
}

/** What the router needs to know about one statement. */
export interface ShardRequest {
  /** The statement must run on a primary (classification.requiresPrimary). */
  readonly write: boolean
  /** Tables the statement touches (classification.tables), for the reference-table write rule. */
  readonly tables?: readonly string[]
  readonly hints?: { readonly shardKey?: string; readonly routeTo?: string }
  /** From `withShardKey(value, fn)` or an `X-DB-Shard-Key` header. */
  readonly contextKey?: unknown
  /** From `SET freshet.shard_key` in this session. */
  readonly sessionKey?: string | null
  readonly facts: ShardKeyFacts
  /** Bound parameter values ($1 is `params[0]`), text or numbers; undefined before Bind. */
  readonly params?: readonly unknown[]
  /** The shard (or {@link AGGREGATE}) the open transaction is pinned to; null outside a transaction or before its first keyed statement. */
  readonly pinned?: string | null
  /**
   * The map to route by instead of the router's: the one the open transaction began under, so that it
   * finishes on its shard after a routing-map change (new transactions take the new map).
   */
  readonly map?: ShardMap
}

/** The sharding config the router works from (CONTRACT section 9), with names lower-cased. */
export interface ShardRouterConfig {
  readonly shards: readonly { readonly name: string; readonly nodes: readonly string[] }[]
  /** Key type of each sharded table (configured name -> type). */
  readonly tableTypes: ReadonlyMap<string, ShardKeyType>
  /** Key column of each sharded table, for messages. */
  readonly tableKeys: ReadonlyMap<string, string>
  readonly referenceTables: readonly string[]
  readonly crossShard: 'aggregate' | 'error'
}

function freezeDecision(d: ShardDecision): ShardDecision {
  return Object.freeze(d)
}

/**
 * Decides shards. The map is swappable (`router.map = next`) so that a new routing-map version applies
 * to the next statement while statements already routed keep theirs.
 *
 * @example
 * const d = router.route({ write: false, facts: extractShardKeys(stmts, tables), params: ['42'] })
 * d.shard // 'shard_1'     d.source // 'statement'     d.key // '42'
 */
export class ShardRouter {
  map: ShardMap
  readonly #config: ShardRouterConfig
  readonly #shardOfNode = new Map<string, string>()
  readonly #shardNames: ReadonlySet<string>
  readonly #defaultType: ShardKeyType
  readonly #reference: ReadonlySet<string>

  constructor(config: ShardRouterConfig, map: ShardMap) {
    this.#config = config
    this.map = map
    for (const s of config.shards) for (const n of s.nodes) this.#shardOfNode.set(n.toLowerCase(), s.name)
    this.#shardNames = new Set(config.shards.map((s) => s.name))
    this.#defaultType =
      map.spec.method === 'hash' ? ([...config.tableTypes.values()][0] ?? 'integer') : map.spec.keyType
    this.#reference = new Set(config.referenceTables.map((t) => t.toLowerCase()))
  }

  /** The shard that serves statements reading no sharded table (the first in `shards`). */
  get defaultShard(): string {
    return this.#config.shards[0]!.name
  }

  /**
   * The shard of a key given on its own (hint, context, SET), hashed as `type` (default: the key type of
   * the statement's first sharded table, else of the first configured table).
   * @throws ShardKeyError when the value is not a key of that type or no entry owns it
   */
  shardOfKey(
    raw: unknown,
    type: ShardKeyType = this.#defaultType,
    what = 'shard key',
    map?: ShardMap,
  ): string {
    const key = normalizeShardKey(raw, type)
    if (key === null) {
      throw new ShardKeyError(`${what} ${JSON.stringify(String(raw))} is not a ${type} value`, {
        details: { key: String(raw), type },
      })
    }
    const shard = (map ?? this.map).shardOf(key, type)
    if (shard === null) {
      throw new ShardKeyError(`${what} ${formatShardKey(key)} belongs to no entry of the routing map`, {
        details: { key: String(raw) },
      })
    }
    return shard
  }

  /**
   * Picks the shard for one statement, or throws before anything is sent.
   * @throws CrossShardError (ZF003) for another shard inside a transaction, a write spanning shards, a
   *   reference-table write, or a statement naming no single shard under `cross_shard: error`
   * @throws ShardKeyError (ZF004) for a given key that is not a value of its type or has no shard
   */
  route(req: ShardRequest): ShardDecision {
    const type = this.#typeOf(req.facts.sharded[0])
    let decision: ShardDecision | null = null
    const routeTo = req.hints?.routeTo?.toLowerCase()
    if (routeTo !== undefined) {
      const shard = this.#shardNames.has(routeTo) ? routeTo : this.#shardOfNode.get(routeTo)
      if (shard !== undefined) decision = { shard, source: 'route_to' }
    }
    const given: [unknown, ShardSource, string][] = [
      [req.hints?.shardKey, 'hint', 'SHARD_KEY hint'],
      [req.contextKey, 'context', 'request shard key'],
      [req.sessionKey, 'session', 'freshet.shard_key'],
    ]
    for (const [raw, source, what] of given) {
      if (decision) break
      if (raw === undefined || raw === null || raw === '') continue
      decision = { shard: this.shardOfKey(raw, type, what, req.map), source, key: String(raw) }
    }
    decision ??= this.#fromStatement(req)
    this.#checkWrite(req, decision)
    return freezeDecision(this.#checkPin(req, decision))
  }

  #typeOf(table: string | undefined): ShardKeyType {
    return (table !== undefined ? this.#config.tableTypes.get(table) : undefined) ?? this.#defaultType
  }

  #resolve(
    ref: KeyRef,
    params: readonly unknown[] | undefined,
    map: ShardMap | undefined,
  ): { shard: string | null; key: string } | null {
    const raw = ref.kind === 'literal' ? ref.value : params?.[ref.index - 1]
    if (raw === undefined) return null
    const type = this.#typeOf(ref.table)
    const key = raw === null ? null : normalizeShardKey(raw, type)
    if (key === null && raw !== null) return null
    // a NULL key: PostgreSQL's hash partitioning puts it in bucket 0; range and list maps own no NULL
    return { shard: (map ?? this.map).shardOf(key, type), key: formatShardKey(key) }
  }

  #fromStatement(req: ShardRequest): ShardDecision {
    const facts = req.facts
    if (facts.sharded.length === 0) return { shard: this.defaultShard, source: 'any' }
    const shards = new Set<string>()
    const unkeyed = new Set(facts.unkeyed)
    let key: string | undefined
    for (const ref of facts.keys) {
      const r = this.#resolve(ref, req.params, req.map)
      if (r === null || r.shard === null) {
        if (r !== null && req.write) {
          throw new ShardKeyError(
            `shard key ${r.key} of ${ref.table} belongs to no entry of the routing map`,
            {
              details: { table: ref.table, key: r.key },
            },
          )
        }
        unkeyed.add(ref.table)
        continue
      }
      shards.add(r.shard)
      key ??= r.key
    }
    if (shards.size === 1 && unkeyed.size === 0)
      return { shard: [...shards][0]!, source: 'statement', ...(key ? { key } : {}) }
    const tables = [...(unkeyed.size > 0 ? unkeyed : new Set(facts.sharded))]
    if (req.write) {
      const spread = shards.size > 1 ? `its rows are on ${[...shards].join(', ')}` : `no key names one shard`
      throw new CrossShardError(
        `a write spanning shards is refused (${spread}; ${this.#missing(tables)}); nothing was sent`,
        { details: { shards: [...shards], tables } },
      )
    }
    if (this.#config.crossShard === 'error') {
      const spread = shards.size > 1 ? `it reads ${[...shards].join(', ')}` : 'it names no shard'
      throw new CrossShardError(
        `a statement that names no single shard is refused (${spread}; sharding.cross_shard is error): ${this.#missing(tables)}`,
        { details: { shards: [...shards], tables } },
      )
    }
    return { shard: AGGREGATE, source: 'cross_shard', crossShardTables: tables }
  }

  #missing(tables: readonly string[]): string {
    const cols = tables.map((t) => `${t}.${this.#config.tableKeys.get(t) ?? '?'}`)
    return `add equality on ${cols.join(', ')} at the top level of WHERE, or a SHARD_KEY hint`
  }

  #checkWrite(req: ShardRequest, d: ShardDecision): void {
    if (!req.write) return
    const refs = (req.tables ?? []).filter(
      (t) => this.#reference.has(t) || this.#reference.has(t.replace(/^public\./, '')),
    )
    if (refs.length > 0 && d.source !== 'route_to') {
      throw new CrossShardError(
        `a write to reference table ${refs.join(', ')} would change one shard only (freshet does not broadcast writes); write it on every shard, e.g. with ROUTE_TO per shard`,
        { details: { tables: refs, shard: d.shard } },
      )
    }
    if (req.facts.unknownMove) {
      throw new CrossShardError(
        'an UPDATE that sets the shard key to an expression may move rows to another shard; nothing was sent',
        {
          details: { shard: d.shard },
        },
      )
    }
    for (const ref of req.facts.moves) {
      const r = this.#resolve(ref, req.params, req.map)
      if (r?.shard !== d.shard) {
        throw new CrossShardError(
          `setting ${ref.table}.${this.#config.tableKeys.get(ref.table) ?? 'key'} to ${r?.key ?? 'an unknown value'} would move the row from ${d.shard} to ${r?.shard ?? 'an unknown shard'}; nothing was sent`,
          { details: { from: d.shard, to: r?.shard ?? null } },
        )
      }
    }
  }

  #checkPin(req: ShardRequest, d: ShardDecision): ShardDecision {
    const pinned = req.pinned
    if (pinned === undefined || pinned === null) return d
    if (d.source === 'any') return { shard: pinned, source: 'transaction' }
    if (d.shard === pinned) return d
    if (pinned === AGGREGATE && !req.write) return { ...d, shard: AGGREGATE, source: 'transaction' }
    const where = d.shard === AGGREGATE ? 'names no single shard' : `is for ${d.shard}`
    throw new CrossShardError(
      `the transaction is pinned to ${pinned === AGGREGATE ? 'the aggregate node' : pinned} and this statement ${where} (source: ${d.source}); it was not sent`,
      { details: { pinned, shard: d.shard, source: d.source } },
    )
  }
}
