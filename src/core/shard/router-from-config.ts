// Builds the shard machinery (tables, map, router) from a validated sharded config: one place that turns
// `shards` / `sharding` into the objects the routing core works with.

import type { FreshetConfig } from '../config/schema.js'
import { mapKeyType } from '../config/schema-sharding.js'
import { ConfigError } from '../errors.js'
import { ShardedTables } from './extract-shard-keys.js'
import type { ShardKeyType } from './shard-key.js'
import { ShardMap } from './shard-map.js'
import { ShardRouter } from './shard-router.js'

/** What a sharded config turns into. */
export interface ShardSetup {
  readonly tables: ShardedTables
  readonly map: ShardMap
  readonly router: ShardRouter
}

/**
 * The sharded tables, the config's routing map and a router over them, or null for an unsharded config.
 * @example
 * const setup = shardSetupOf(validateConfig(doc))
 * setup?.router.route({ write: false, facts: extractShardKeys(parseSync(sql).stmts, setup.tables) })
 */
export function shardSetupOf(config: FreshetConfig): ShardSetup | null {
  const sh = config.sharding
  if (!sh || !config.shards) return null
  const entries = Object.entries(sh.tables)
  const tables = new ShardedTables(entries.map(([table, t]) => ({ table, key: t.key, type: t.type })))
  const { map, issues } = ShardMap.build(
    { method: sh.method, buckets: sh.buckets, keyType: mapKeyType(sh) },
    sh.map,
    config.shards.map((s) => s.name),
  )
  // the config schema ran the same validation: only a hand-built config gets here with issues
  if (!map) throw new ConfigError(issues)
  const router = new ShardRouter(
    {
      shards: config.shards.map((s) => ({
        name: s.name,
        nodes: [s.primary.name, ...s.replicas.map((r) => r.name)],
      })),
      tableTypes: new Map(entries.map(([t, spec]) => [t, spec.type as ShardKeyType])),
      tableKeys: new Map(entries.map(([t, spec]) => [t, spec.key])),
      referenceTables: sh.reference_tables,
      crossShard: sh.cross_shard,
    },
    map,
  )
  return { tables, map, router }
}
