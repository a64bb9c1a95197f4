// The `shards` and `sharding` config keys (CONTRACT section 9) and their cross-checks: the map covers the
// key space exactly once, targets and tables exist, node names are unique across every shard.

import { z } from 'zod'
import type { ShardKeyType } from '../shard/shard-key.js'
import { ShardMap } from '../shard/shard-map.js'

const name = z
  .string()
  .min(1)
  .regex(/^[A-Za-z0-9_.-]+$/, 'use letters, digits, _ . - only')
const ident = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_$]*$/, 'a plain column name')
  .transform((s) => s.toLowerCase())
const tableName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/, 'a table name, optionally schema-qualified')

/** The node shape is the cluster's (`NodeSchema` in schema.ts), passed in to keep one definition. */
export function shardingKeys<N extends z.ZodType>(node: N) {
  const ShardSchema = z.strictObject({
    name,
    primary: node,
    replicas: z.array(node).default([]),
  })
  return {
    /** Instead of `cluster`: each shard a primary with its replicas. */
    shards: z.array(ShardSchema).min(1).optional(),
    sharding: z
      .strictObject({
        method: z.enum(['hash', 'range', 'list']).default('hash'),
        /** hash: PostgreSQL's hash-partition value of the key modulo this (a MODULUS that native partitions can share). */
        buckets: z.number().int().min(1).max(2147483647).default(1024),
        tables: z.record(
          tableName.transform((s) => s.toLowerCase()),
          z.strictObject({
            key: ident,
            /** integer (smallint, integer, bigint), text (text, varchar) or uuid. */
            type: z.enum(['integer', 'text', 'uuid']).default('integer'),
          }),
        ),
        reference_tables: z.array(tableName.transform((s) => s.toLowerCase())).default([]),
        map: z.array(
          z.strictObject({
            partition_key_range: z.string().min(1),
            target_backend: name,
          }),
        ),
        cross_shard: z.enum(['aggregate', 'error']).default('aggregate'),
        aggregate: node.nullable().default(null),
      })
      .nullable()
      .default(null),
  }
}

type Loose = Record<string, unknown>
const rec = (v: unknown): v is Loose => v !== null && typeof v === 'object' && !Array.isArray(v)
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : [])
const nameOf = (node: unknown): string | undefined =>
  rec(node) && typeof node.name === 'string' ? node.name : undefined

/** The key type every map entry is written in: integer for range maps, the tables' common type for list maps. */
export function mapKeyType(sharding: { method?: unknown; tables?: unknown }): ShardKeyType {
  if (sharding.method === 'range') return 'integer'
  const first = rec(sharding.tables) ? Object.values(sharding.tables)[0] : undefined
  const type = rec(first) ? first.type : undefined
  return type === 'text' || type === 'uuid' ? type : 'integer'
}

/**
 * Cross-checks `cluster` / `shards` / `sharding`; called from the config schema's superRefine, also
 * when other parts of the document failed (one pass reports every error), so it reads defensively.
 */
export function refineSharding(
  cfg: { cluster?: unknown; shards?: unknown; sharding?: unknown },
  ctx: z.RefinementCtx,
): void {
  const issue = (path: PropertyKey[], message: string) => ctx.addIssue({ code: 'custom', path, message })
  const shards = Array.isArray(cfg.shards) ? cfg.shards : undefined
  const cluster = rec(cfg.cluster) ? cfg.cluster : undefined
  // a validated sharded config carries its first shard as `cluster` (for code that expects one cluster);
  // writing that back is accepted, any other cluster beside shards is not
  const firstPrimary = rec(shards?.[0]) ? nameOf(shards[0].primary) : undefined
  if (cluster && shards && nameOf(cluster.primary) !== firstPrimary) {
    issue(['shards'], 'use either cluster or shards, not both (with shards, cluster is the first shard)')
  }
  // ShardedRouting builds each shard's cluster from shards[n] (discovery: null): a discovery endpoint here
  // would be silently ignored, so it is refused, as fleet and proxy.workers are
  if (cluster && shards && rec(cluster.discovery)) {
    issue(
      ['cluster', 'discovery'],
      "replica discovery is not available with shards in this build: list each shard's replicas in shards[n].replicas",
    )
  }
  if (cfg.cluster === undefined && cfg.shards === undefined)
    issue(['cluster'], 'required (or shards, for a sharded setup)')
  const sh = rec(cfg.sharding) ? cfg.sharding : undefined
  if (shards && !sh) issue(['sharding'], 'required with shards: method, tables and map')
  if (sh && !shards) issue(['shards'], 'required with sharding: the shards the map points at')
  const names = new Map<string, string>()
  const seen = (n: string | undefined, where: string, path: PropertyKey[]) => {
    if (n === undefined) return
    const other = names.get(n)
    if (other) issue(path, `duplicate node name '${n}' (also ${other})`)
    else names.set(n, where)
  }
  const shardNames: string[] = []
  list(shards).forEach((s, i) => {
    if (!rec(s)) return
    const n = nameOf(s)
    if (n !== undefined && shardNames.includes(n)) issue(['shards', i, 'name'], `duplicate shard name '${n}'`)
    if (n !== undefined) shardNames.push(n)
    seen(nameOf(s.primary), `shards[${i}].primary`, ['shards', i, 'primary', 'name'])
    list(s.replicas).forEach((r, j) => {
      seen(nameOf(r), `shards[${i}].replicas[${j}]`, ['shards', i, 'replicas', j, 'name'])
    })
  })
  if (!sh) return
  seen(nameOf(sh.aggregate), 'sharding.aggregate', ['sharding', 'aggregate', 'name'])
  if (sh.cross_shard === 'aggregate' && !sh.aggregate) {
    issue(['sharding', 'aggregate'], 'required when cross_shard is aggregate (or set cross_shard: error)')
  }
  const tables = rec(sh.tables) ? Object.entries(sh.tables) : []
  if (rec(sh.tables) && tables.length === 0)
    issue(['sharding', 'tables'], 'name at least one sharded table and its key column')
  const keyType = mapKeyType(sh)
  for (const [t, spec] of tables) {
    const type = rec(spec) ? spec.type : undefined
    if (sh.method === 'range' && type !== 'integer') {
      issue(['sharding', 'tables', t, 'type'], `range maps need integer keys (got ${type}); use hash or list`)
    }
    if (sh.method === 'list' && type !== keyType) {
      issue(
        ['sharding', 'tables', t, 'type'],
        `list maps need one key type for every table (${keyType} first)`,
      )
    }
    if (list(sh.reference_tables).includes(t))
      issue(['sharding', 'reference_tables'], `'${t}' is also a sharded table`)
  }
  const entries = list(sh.map)
  const method = sh.method
  const usable =
    (method === 'hash' || method === 'range' || method === 'list') &&
    typeof sh.buckets === 'number' &&
    Number.isInteger(sh.buckets) &&
    sh.buckets >= 1 &&
    Array.isArray(sh.map) &&
    entries.every(
      (e) => rec(e) && typeof e.partition_key_range === 'string' && typeof e.target_backend === 'string',
    )
  if (!usable) return
  const { issues } = ShardMap.build(
    { method, buckets: sh.buckets as number, keyType },
    entries as { partition_key_range: string; target_backend: string }[],
    shardNames,
  )
  for (const i of issues) {
    const path: PropertyKey[] = []
    for (const part of i.path.split('.')) {
      const m = /^(\w+)\[(\d+)\]$/.exec(part)
      if (m) path.push(m[1]!, Number(m[2]))
      else path.push(part)
    }
    issue(path, i.message)
  }
}
