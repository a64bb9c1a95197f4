// The config schema (CONTRACT section 4) as zod: one source for validation, defaults, types and the
// JSON Schema file users point their editor at.

import { z } from 'zod'

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

export const ConfigSchema = z
  .strictObject({
    version: z.number().int().nonnegative().default(1),
    cluster: z.strictObject({
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
    }),
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
        prepared_statement_cache_size: z.number().int().positive().default(1000),
        shutdown_timeout_ms: duration.default(30000),
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
  })
  .superRefine((cfg, ctx) => {
    const names = new Set<string>([cfg.cluster.primary.name])
    cfg.cluster.replicas.forEach((r, i) => {
      if (names.has(r.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['cluster', 'replicas', i, 'name'],
          message: `duplicate node name '${r.name}'`,
        })
      }
      names.add(r.name)
    })
    const tiers = cfg.routing.tiers
    const tierOk = (t: string) => Object.hasOwn(tiers, t)
    const u = cfg.routing.unannotated
    if (u !== 'primary' && u !== 'error' && !tierOk(u)) {
      ctx.addIssue({
        code: 'custom',
        path: ['routing', 'unannotated'],
        message: `'${u}' is not primary, error or a tier in routing.tiers (${Object.keys(tiers).join(', ')})`,
      })
    }
    for (const [table, tier] of Object.entries(cfg.domains)) {
      if (!tierOk(tier.toLowerCase())) {
        ctx.addIssue({ code: 'custom', path: ['domains', table], message: `unknown tier '${tier}'` })
      }
    }
    for (const [tier] of Object.entries(cfg.pools.tier_budgets)) {
      if (!tierOk(tier))
        ctx.addIssue({
          code: 'custom',
          path: ['pools', 'tier_budgets', tier],
          message: `unknown tier '${tier}'`,
        })
    }
    cfg.classifier.rules.forEach((r, i) => {
      const tier = r.action.startsWith('tier:') ? r.action.slice(5).toLowerCase() : null
      if (tier && !tierOk(tier)) {
        ctx.addIssue({
          code: 'custom',
          path: ['classifier', 'rules', i, 'action'],
          message: `unknown tier '${tier}'`,
        })
      }
    })
    if (
      cfg.routing.local_zone !== null &&
      ![...cfg.cluster.replicas].some((r) => r.zone === cfg.routing.local_zone)
    ) {
      // not an error: discovery may bring same-zone replicas later
    }
  })

/** A validated config with every default filled in. */
export type FreshetConfig = z.infer<typeof ConfigSchema>
/** What a user may write: every key with a default is optional. */
export type FreshetConfigInput = z.input<typeof ConfigSchema>
export type NodeConfig = z.infer<typeof NodeSchema>
export type TierConfig = z.infer<typeof TierSchema>
export type ClassifierRule = z.infer<typeof RuleSchema>
