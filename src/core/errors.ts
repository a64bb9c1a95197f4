// freshet's error family: one base class with a stable code, a few subclasses, and a guard that
// survives duplicate installs of the package.

const BRAND = Symbol.for('freshet.error')

/** Stable error codes, documented in docs/errors.md with the SQLSTATE the proxy sends for each. */
export type FreshetErrorCode =
  | 'FRESHET_CONFIG_INVALID'
  | 'FRESHET_CONFIG_VERSION'
  | 'FRESHET_NO_ELIGIBLE_NODE'
  | 'FRESHET_UNANNOTATED_READ'
  | 'FRESHET_FALLBACK_RATE_LIMITED'
  | 'FRESHET_BACKPRESSURE'
  | 'FRESHET_NODE_UNAVAILABLE'
  | 'FRESHET_PIN_VIOLATION'
  | 'FRESHET_UNKNOWN_NODE'
  | 'FRESHET_POOL_CLOSED'
  | 'FRESHET_PROTOCOL'
  | 'FRESHET_AUTH'
  | 'FRESHET_CLUSTER'
  | 'FRESHET_CROSS_SHARD'
  | 'FRESHET_SHARD_KEY'
  | 'FRESHET_UNSUPPORTED'

/** SQLSTATE the proxy reports for each code (08 connection, 53 resources, 57 operator, F0 config, ZF freshet's own). */
export const SQLSTATE: Readonly<Record<FreshetErrorCode, string>> = Object.freeze({
  FRESHET_CONFIG_INVALID: 'F0000',
  FRESHET_CONFIG_VERSION: 'F0000',
  // freshet's own class ZF (implementation-defined classes start with I-Z; PostgreSQL uses none in Z):
  // not 57P05/57P06, which PostgreSQL 14+ gives idle_session_timeout and later codes
  FRESHET_NO_ELIGIBLE_NODE: 'ZF001', // no node satisfies the freshness tier
  FRESHET_UNANNOTATED_READ: 'ZF002',
  FRESHET_FALLBACK_RATE_LIMITED: '53400',
  FRESHET_BACKPRESSURE: '53300',
  FRESHET_NODE_UNAVAILABLE: '08006',
  FRESHET_PIN_VIOLATION: '25000',
  FRESHET_UNKNOWN_NODE: '42704',
  FRESHET_POOL_CLOSED: '57P01',
  FRESHET_PROTOCOL: '08P01',
  FRESHET_AUTH: '28P01',
  FRESHET_CLUSTER: '58000',
  FRESHET_CROSS_SHARD: 'ZF003', // a statement for another shard in a transaction, a write spanning shards, cross_shard: error
  FRESHET_SHARD_KEY: 'ZF004', // a shard key that is not a value of the key's type or that no map entry owns
  FRESHET_UNSUPPORTED: '0A000', // feature_not_supported (freshet/mysql: result streaming)
})

export interface FreshetErrorOptions {
  cause?: unknown
  /** Extra facts for logs and the admin API (never secrets). */
  details?: Record<string, unknown>
}

/**
 * PostgreSQL's message for SQLSTATE 25P02 (in_failed_sql_transaction), word for word: both faces answer
 * it, as PostgreSQL does, to statements after a refusal aborted the transaction.
 */
export const IN_FAILED_TRANSACTION =
  'current transaction is aborted, commands ignored until end of transaction block'

/** Base class of every error freshet raises itself. PostgreSQL's own errors pass through untouched. */
export class FreshetError extends Error {
  readonly code: FreshetErrorCode
  readonly details: Record<string, unknown> | undefined

  constructor(code: FreshetErrorCode, message: string, options: FreshetErrorOptions = {}) {
    super(message.startsWith('freshet:') ? message : `freshet: ${message}`, { cause: options.cause })
    this.name = new.target.name
    this.code = code
    this.details = options.details
    Object.defineProperty(this, BRAND, { value: true })
  }

  /** The SQLSTATE the proxy sends for this error. */
  get sqlState(): string {
    return SQLSTATE[this.code]
  }
}

/** A config file or payload failed validation; `issues` lists every error with its key path. */
export class ConfigError extends FreshetError {
  readonly issues: readonly { path: string; message: string }[]
  constructor(
    issues: readonly { path: string; message: string }[],
    options: FreshetErrorOptions & {
      code?: 'FRESHET_CONFIG_INVALID' | 'FRESHET_CONFIG_VERSION'
      source?: string
    } = {},
  ) {
    const where = options.source ? ` in ${options.source}` : ''
    const lines = issues.map((i) => `  ${i.path || '(root)'}: ${i.message}`).join('\n')
    super(options.code ?? 'FRESHET_CONFIG_INVALID', `invalid config${where}:\n${lines}`, options)
    this.issues = issues
  }
}

/** No node can serve a statement within its freshness tier and the tier's fallback is `error`. */
export class NoEligibleNodeError extends FreshetError {}

/** Too many requests are waiting for a connection: fail fast instead of queueing forever. */
export class BackpressureError extends FreshetError {
  constructor(message: string, options: FreshetErrorOptions = {}) {
    super('FRESHET_BACKPRESSURE', message, options)
  }
}

/**
 * A statement would cross shards where freshet cannot let it: another shard inside a transaction, a write
 * whose rows span shards, or (with `sharding.cross_shard: error`) a statement that names no single shard.
 * Raised before anything is sent. `details` names the shards, tables and missing key columns.
 */
export class CrossShardError extends FreshetError {
  constructor(message: string, options: FreshetErrorOptions = {}) {
    super('FRESHET_CROSS_SHARD', message, options)
  }
}

/** A shard key (hint, context, `SET freshet.shard_key`, statement) is not a value of its type or has no shard. */
export class ShardKeyError extends FreshetError {
  constructor(message: string, options: FreshetErrorOptions = {}) {
    super('FRESHET_SHARD_KEY', message, options)
  }
}

/** A node could not be reached (connect failure, open breaker, pool closed). */
export class NodeUnavailableError extends FreshetError {}

/** True for any freshet error, even one thrown by another copy of the package. */
export function isFreshetError(value: unknown): value is FreshetError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true
}

/**
 * A replica cancelled the statement because of a conflict with WAL replay (SQLSTATE 40001 or 40P01,
 * "canceling statement due to conflict with recovery"): safe to retry a read elsewhere.
 */
export function isRecoveryConflict(err: unknown): boolean {
  const e = err as { code?: string; message?: string }
  return (e?.code === '40001' || e?.code === '40P01') && /conflict with recovery/i.test(e.message ?? '')
}
