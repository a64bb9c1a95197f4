// The `fleet` config section (CONTRACT section 11): etcd connection, instance id, quorum rule, timeouts
// and the emergency-flag interval. Kept apart from schema.ts, which imports it.

import { z } from 'zod'

const duration = z.number().int().nonnegative()

/** `majority` (more than half of the live instances), `all`, or a fixed count. */
export const QuorumSchema = z.union([z.literal('majority'), z.literal('all'), z.number().int().positive()], {
  error: 'use majority, all or a positive whole number',
})

export const FleetSchema = z.strictObject({
  etcd: z.strictObject({
    /** Client URLs of the etcd members, e.g. `http://10.0.0.1:2379` (https:// with `tls`). */
    endpoints: z
      .array(z.string().regex(/^https?:\/\/[^/\s]+\/?$/, 'an http:// or https:// URL with host:port'))
      .min(1),
    /** Every key freshet writes lives below this prefix; instances with the same prefix form one fleet. */
    prefix: z
      .string()
      .regex(/^\/[^\s]*[^/\s]$|^\/$/, 'an absolute key prefix such as /freshet/prod (no trailing slash)')
      .default('/freshet'),
    /** etcd user authentication (etcd `auth enable`). */
    username: z.string().min(1).nullable().default(null),
    password: z.string().nullable().default(null),
    /** TLS to etcd: PEM file paths (a CA alone checks the server; cert and key add a client certificate). */
    tls: z
      .strictObject({
        ca: z.string().min(1),
        cert: z.string().min(1).nullable().default(null),
        key: z.string().min(1).nullable().default(null),
      })
      .nullable()
      .default(null),
    dial_timeout_ms: duration.default(3000),
    /** Deadline of each etcd request; a member that does not answer in time counts as unreachable. */
    request_timeout_ms: z.number().int().positive().default(2000),
  }),
  /** This instance's id in the fleet; null: `hostname:pid`. */
  instance: z
    .string()
    .regex(/^[A-Za-z0-9_.:@-]+$/, 'use letters, digits and _ . : @ - only')
    .nullable()
    .default(null),
  quorum: QuorumSchema.default('majority'),
  /** How long a proposal waits for acknowledgements before it is aborted. */
  ack_timeout_ms: z.number().int().positive().default(5000),
  /** TTL of the membership lease: an instance that stops renewing it leaves the fleet after this long. */
  lease_ttl_s: z.number().int().min(2).default(10),
  /** Local copy of the last committed config, used at start when etcd is unreachable; null: in os.tmpdir(). */
  cache_file: z.string().min(1).nullable().default(null),
  flags: z
    .strictObject({
      /** How often each instance reads the fleet's flags, proposals and commits (and checks etcd). */
      eval_interval_ms: z.number().int().positive().default(2000),
    })
    .prefault({}),
})

/** The validated `fleet` section. */
export type FleetConfig = z.infer<typeof FleetSchema>

/** The emergency controls (config `controls`), which a fleet carries as fleet-wide flags. */
export const CONTROL_KEYS = ['route_all_to_primary', 'disable_replica_pools', 'disable_lag_checks'] as const
/** One emergency control. */
export type ControlKey = (typeof CONTROL_KEYS)[number]
