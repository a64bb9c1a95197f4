// The config schema (CONTRACT section 4) as zod: one source for validation, defaults, types and the
// JSON Schema file users point their editor at.

import { z } from 'zod'
import { EngineSchema, engineOfUrl } from './engine-schema.js'
import { FleetSchema } from './fleet-schema.js'
import { nodeUrlIssue } from './node-url.js'
import { refineSharding, shardingKeys } from './schema-sharding.js'

const duration = z.number().int().nonnegative()
const name = z
  .string()
  .min(1)
  .regex(/^[A-Za-z0-9_.-]+$/, 'use letters, digits, _ . - only')

export const NodeSchema = z.strictObject({
  name,
  url: z.string().min(1),
  weight: z.number().int().min(0).max(10000).default(100),
  zone: z.string().nullable().default(null),
})

export const TierSchema = z.strictObject({
  /** Largest replica lag this tier accepts; 0 means the primary only (or a replica proven caught up). */
  max_lag_ms: duration,
  fallback: z.enum(['primary', 'error', 'least_lagged']).default('primary'),
  /** Most fallbacks to the primary per second for this tier; 0 = no cap. Over the cap: error. */
  fallback_rate_limit: z.number().nonnegative().default(0),
})

const DEFAULT_TIERS = {
  strict: { max_lag_ms: 0, fallback: 'primary', fallback_rate_limit: 0 },
  near_rt: { max_lag_ms: 500, fallback: 'primary', fallback_rate_limit: 0 },
  eventual: { max_lag_ms: 60000, fallback: 'least_lagged', fallback_rate_limit: 0 },
} as const

export const RuleSchema = z.strictObject({
  pattern: z.string().superRefine((p, ctx) => {
    try {
      new RegExp(p, 'i')
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `not a valid regular expression: ${(err as Error).message}` })
    }
  }),
  action: z.union([
    z.literal('route_replica'),
    z.literal('route_primary'),
    z.string().regex(/^tier:[A-Za-z0-9_]+$/, 'use route_replica, route_primary or tier:<name>'),
  ]),
  priority: z.number().int().default(0),
})

const poolCommon = {
  connection_timeout_ms: duration,
  max_lifetime_sec: z.number().int().nonnegative().default(1800),
}

const ClusterSchema = z.strictObject({
  primary: NodeSchema,
  replicas: z.array(NodeSchema).default([]),
  discovery: z
    .strictObject({
      endpoint: z.string().url(),
      refresh_interval_ms: duration.default(15000),
      fallback_cache_ttl_ms: duration.default(300000),
      mode: z.enum(['replace', 'extend']).default('replace'),
    })
    .nullable()
    .default(null),
})

export const ConfigSchema = z
  .strictObject({
    version: z.number().int().nonnegative().default(1),
    engine: EngineSchema,
    // optional only with `shards`, which then fill it with their first shard (refineSharding checks)
    cluster: ClusterSchema.optional(),
    ...shardingKeys(NodeSchema),
    routing: z
      .strictObject({
        policy: z
          .enum(['lag_aware_round_robin', 'least_lag', 'weighted', 'least_connections', 'least_latency'])
          .default('lag_aware_round_robin'),
        unannotated: z.string().min(1).default('primary'),
        write_functions: z.array(z.string().min(1)).default([]),
        read_only_functions: z.array(z.string().min(1)).default([]),
        local_zone: z.string().nullable().default(null),
        shadow: z.boolean().default(false),
        tiers: z
          .record(z.string().regex(/^[a-z0-9_]+$/, 'tier names are lower-case'), TierSchema)
          .default(DEFAULT_TIERS as unknown as Record<string, z.infer<typeof TierSchema>>),
      })
      .prefault({}),
    classifier: z
      .strictObject({
        engine: z.enum(['ast', 'regex', 'hybrid']).default('ast'),
        rules: z.array(RuleSchema).default([]),
        cache_size: z.number().int().positive().default(10000),
      })
      .prefault({}),
    domains: z.record(z.string().min(1), z.string().min(1)).default({}),
    consistency: z
      .strictObject({
        sticky_after_write_ms: duration.default(0),
        causal: z.boolean().default(true),
        max_wait_for_sync_ms: duration.default(1000),
      })
      .prefault({}),
    lag: z
      .strictObject({
        interval_ms: z.number().int().positive().default(250),
        heartbeat: z
          .strictObject({
            enabled: z.boolean().default(true),
            table: z
              .string()
              .regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/, 'a plain table name')
              .default('freshet_heartbeat'),
            interval_ms: z.number().int().positive().default(250),
          })
          .prefault({}),
      })
      .prefault({}),
    health: z
      .strictObject({
        interval_ms: z.number().int().positive().default(1000),
        timeout_ms: z.number().int().positive().default(500),
      })
      .prefault({}),
    circuit_breaker: z
      .strictObject({
        failure_threshold: z.number().int().positive().default(3),
        cooldown_ms: duration.default(5000),
      })
      .prefault({}),
    pools: z
      .strictObject({
        primary: z
          .strictObject({
            min_idle: z.number().int().nonnegative().default(5),
            max_active: z.number().int().positive().default(50),
            ...poolCommon,
            connection_timeout_ms: duration.default(1000),
            idle_timeout_ms: duration.default(30000),
          })
          .prefault({}),
        replicas: z
          .strictObject({
            min_idle: z.number().int().nonnegative().default(10),
            max_active: z.number().int().positive().default(150),
            ...poolCommon,
            connection_timeout_ms: duration.default(500),
            idle_timeout_ms: duration.default(30000),
            validation_interval_ms: duration.default(10000),
          })
          .prefault({}),
        replica_statement_timeout_ms: duration.default(0),
        tier_budgets: z.record(z.string(), z.number().gt(0).max(1)).default({}),
        warmup: z
          .strictObject({
            concurrency: z.number().int().positive().default(4),
            jitter_ms: duration.default(200),
          })
          .prefault({}),
        slow_start_ms: duration.default(10000),
        max_waiting: z.number().int().nonnegative().default(1000),
      })
      .prefault({}),
    controls: z
      .strictObject({
        route_all_to_primary: z.boolean().default(false),
        disable_replica_pools: z.boolean().default(false),
        disable_lag_checks: z.boolean().default(false),
      })
      .prefault({}),
    proxy: z
      .strictObject({
        listen: z.string().default('127.0.0.1:6432'),
        pool_mode: z.enum(['transaction', 'session']).default('transaction'),
        auth: z
          .strictObject({
            type: z.enum(['scram-sha-256', 'md5', 'trust']).default('scram-sha-256'),
            users: z.record(z.string(), z.strictObject({ password: z.string() })).default({}),
          })
          .prefault({}),
        tls: z
          .strictObject({
            cert: z.string().nullable().default(null),
            key: z.string().nullable().default(null),
          })
          .prefault({}),
        /**
         * The admin console: a virtual database (never a real one) where `proxy.admin.users` run SHOW
         * POOLS/SERVERS/CLIENTS/NODES/CONFIG, RELOAD and SET <control>, as in pgbouncer and PgDog.
         */
        admin: z
          .strictObject({
            database: name.default('freshet_admin'),
            users: z.record(z.string(), z.strictObject({ password: z.string() })).default({}),
          })
          .prefault({}),
        prepared_statement_cache_size: z.number().int().positive().default(1000),
        shutdown_timeout_ms: duration.default(30000),
        /** Processes accepting on `listen`: a number, or 'auto' for one per core. */
        workers: z.union([z.number().int().min(1).max(256), z.literal('auto')]).default(1),
      })
      .prefault({}),
    admin: z
      .strictObject({
        listen: z.string().default('127.0.0.1:9187'),
        token: z.string().nullable().default(null),
        allow_remote_without_token: z.boolean().default(false),
      })
      .prefault({}),
    telemetry: z
      .strictObject({
        log_sampling_rate: z.number().min(0).max(1).default(0.1),
        log_level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
      })
      .prefault({}),
    /** Many instances sharing one config through etcd (CONTRACT section 11); null: this instance alone. */
    fleet: FleetSchema.nullable().default(null),
  })
  // Runs even when parts of the document failed their own checks (`when`), so that one pass reports
  // every error: cross-references and URLs too. The value may then be partly unparsed: read defensively.
  .superRefine((parsed, ctx) => crossReferences(parsed as unknown as LooseConfig, ctx), { when: () => true })
  .superRefine((parsed, ctx) => refineSharding(parsed, ctx), { when: () => true })
  // a sharded config has no `cluster` of its own: the first shard stands in where one cluster is expected
  .transform((cfg) => ({ ...cfg, cluster: cfg.cluster ?? clusterOfShard(cfg.shards?.[0]) }))

function clusterOfShard(
  shard: { primary: z.infer<typeof NodeSchema>; replicas: z.infer<typeof NodeSchema>[] } | undefined,
): z.infer<typeof ClusterSchema> {
  // refineSharding has already refused a config with neither cluster nor shards
  return { primary: shard!.primary, replicas: shard!.replicas, discovery: null }
}

/** A config as the cross-reference check sees it: possibly partly invalid, so every part may be missing. */
interface LooseConfig {
  engine?: unknown
  cluster?: { primary?: { name?: unknown; url?: unknown }; replicas?: unknown }
  shards?: unknown
  sharding?: { aggregate?: { url?: unknown } }
  routing?: { tiers?: unknown; unannotated?: unknown }
  domains?: unknown
  pools?: { tier_budgets?: unknown }
  classifier?: { rules?: unknown }
  proxy?: { admin?: { database?: unknown } }
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v)
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : [])

/** Every node URL in the document with its key path: the cluster's, each shard's, the aggregate's. */
function nodeUrls(cfg: LooseConfig): { path: (string | number)[]; url: unknown }[] {
  const out: { path: (string | number)[]; url: unknown }[] = []
  const group = (base: (string | number)[], g: unknown) => {
    if (!isRecord(g)) return
    if (isRecord(g.primary)) out.push({ path: [...base, 'primary', 'url'], url: g.primary.url })
    asArray(g.replicas).forEach((r, i) => {
      if (isRecord(r)) out.push({ path: [...base, 'replicas', i, 'url'], url: r.url })
    })
  }
  group(['cluster'], cfg.cluster)
  asArray(cfg.shards).forEach((shard, i) => {
    group(['shards', i], shard)
  })
  if (isRecord(cfg.sharding?.aggregate))
    out.push({ path: ['sharding', 'aggregate', 'url'], url: cfg.sharding.aggregate.url })
  return out
}

/** `['cluster', 'replicas', 0, 'url']` -> `cluster.replicas[0]` (the node, without its url key). */
const nodePath = (path: (string | number)[]) =>
  path
    .slice(0, -1)
    .map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`))
    .join('')
    .slice(1)

/** The database a node URL names (URL path or conninfo `dbname=`), or null. */
function databaseOf(url: string): string | null {
  const path = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*\/([^?#]+)/i.exec(url)?.[1]
  if (path !== undefined) {
    try {
      return decodeURIComponent(path)
    } catch {
      return path
    }
  }
  return /(?:^|\s)dbname\s*=\s*'?([^'\s]+)/.exec(url)?.[1] ?? null
}

function crossReferences(cfg: LooseConfig, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string) =>
    ctx.addIssue({ code: 'custom', path, message })
  // engine: mysql, or left out with a mysql:// / mariadb:// primary URL (docs/mysql.md)
  const primaryUrl = cfg.cluster?.primary?.url
  const engine =
    cfg.engine === 'mysql' || cfg.engine === 'postgres'
      ? cfg.engine
      : ((typeof primaryUrl === 'string' ? engineOfUrl(primaryUrl) : null) ?? 'postgres')
  for (const { path, url } of nodeUrls(cfg)) {
    const problem = typeof url === 'string' && url !== '' ? nodeUrlIssue(url, engine) : null
    if (problem) issue(path, problem)
  }
  const adminDb = cfg.proxy?.admin?.database ?? 'freshet_admin'
  for (const { path, url } of nodeUrls(cfg)) {
    if (typeof url === 'string' && databaseOf(url) === adminDb) {
      issue(
        ['proxy', 'admin', 'database'],
        `'${adminDb}' is the database of ${nodePath(path)}: the admin console needs a name no real database has`,
      )
    }
  }
  const names = new Set<unknown>([cfg.cluster?.primary?.name])
  asArray(cfg.cluster?.replicas).forEach((r, i) => {
    const replicaName = isRecord(r) ? r.name : undefined
    if (typeof replicaName !== 'string') return
    if (names.has(replicaName))
      issue(['cluster', 'replicas', i, 'name'], `duplicate node name '${replicaName}'`)
    names.add(replicaName)
  })
  // tier references only make sense against a tiers mapping
  const tiers = cfg.routing?.tiers
  if (!isRecord(tiers)) return
  const tierOk = (t: string) => Object.hasOwn(tiers, t)
  const u = cfg.routing?.unannotated
  if (typeof u === 'string' && u !== 'primary' && u !== 'error' && !tierOk(u)) {
    issue(
      ['routing', 'unannotated'],
      `'${u}' is not primary, error or a tier in routing.tiers (${Object.keys(tiers).join(', ')})`,
    )
  }
  if (isRecord(cfg.domains)) {
    for (const [table, tier] of Object.entries(cfg.domains)) {
      if (typeof tier === 'string' && !tierOk(tier.toLowerCase()))
        issue(['domains', table], `unknown tier '${tier}'`)
    }
  }
  if (isRecord(cfg.pools?.tier_budgets)) {
    for (const tier of Object.keys(cfg.pools.tier_budgets)) {
      if (!tierOk(tier)) issue(['pools', 'tier_budgets', tier], `unknown tier '${tier}'`)
    }
  }
  asArray(cfg.classifier?.rules).forEach((r, i) => {
    const action = isRecord(r) ? r.action : undefined
    const tier =
      typeof action === 'string' && action.startsWith('tier:') ? action.slice(5).toLowerCase() : null
    if (tier && !tierOk(tier)) issue(['classifier', 'rules', i, 'action'], `unknown tier '${tier}'`)
  })
}

/** A validated config with every default filled in. */
export type FreshetConfig = z.infer<typeof ConfigSchema>
/** What a user may write: every key with a default is optional. */
export type FreshetConfigInput = z.input<typeof ConfigSchema>
export type NodeConfig = z.infer<typeof NodeSchema>
export type TierConfig = z.infer<typeof TierSchema>
export type ClassifierRule = z.infer<typeof RuleSchema>
