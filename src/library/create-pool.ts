// createPool(): the library's entry point. An unsharded config gets a FreshetPool, a config with `shards`
// a ShardedPool; both are pg.Pool drop-ins.

import { loadConfigFileSync } from '../backend/config-file.js'
import { validateConfig } from '../core/config/parse-config.js'
import type { FreshetConfig, FreshetConfigInput } from '../core/config/schema.js'
import { ConfigError } from '../core/errors.js'
import { type CreatePoolOptions, FreshetPool } from './freshet-pool.js'
import { ShardedPool } from './sharded-pool.js'

/** A config object with `shards` (CONTRACT section 9): createPool returns a ShardedPool for it. */
export type ShardedConfigInput = FreshetConfigInput & { shards: NonNullable<FreshetConfigInput['shards']> }

function isValidated(config: FreshetConfig | FreshetConfigInput): config is FreshetConfig {
  return Object.isFrozen(config)
}

function resolve(
  config: FreshetConfigInput | FreshetConfig | string,
  options: CreatePoolOptions,
): FreshetConfig {
  const env = options.env ?? process.env
  if (typeof config === 'string') return loadConfigFileSync(config, env)
  return isValidated(config) ? config : validateConfig(config, { env, source: 'createPool(config)' })
}

/**
 * Creates a routing pool from a config object or a YAML/JSON file path: a FreshetPool, or a ShardedPool
 * when the config has `shards`. The compiler sees a ShardedPool for an object literal with `shards`; for a
 * path or a config typed without `shards` it says FreshetPool (both are pg.Pool drop-ins with the same
 * query / connect / end / explain / snapshot / lastWriteToken), so TypeScript code that needs the
 * ShardedPool type from a path calls createShardedPool.
 * @example
 * import { createPool } from 'freshet'
 * const pool = createPool('freshet.yaml')
 * const { rows } = await pool.query('SELECT now()')
 */
export function createPool(config: ShardedConfigInput, options?: CreatePoolOptions): ShardedPool
export function createPool(
  config: FreshetConfigInput | FreshetConfig | string,
  options?: CreatePoolOptions,
): FreshetPool
export function createPool(
  config: FreshetConfigInput | FreshetConfig | string,
  options: CreatePoolOptions = {},
): FreshetPool | ShardedPool {
  const resolved = resolve(config, options)
  return resolved.shards ? new ShardedPool(resolved, options) : new FreshetPool(resolved, options)
}

/**
 * createPool for a config that must be sharded, typed ShardedPool; throws a ConfigError at `shards`
 * when the config has none.
 * @example
 * const pool = createShardedPool('sharded.yaml')
 */
export function createShardedPool(
  config: FreshetConfigInput | FreshetConfig | string,
  options: CreatePoolOptions = {},
): ShardedPool {
  const resolved = resolve(config, options)
  if (!resolved.shards) {
    throw new ConfigError([{ path: 'shards', message: 'createShardedPool needs a config with shards' }])
  }
  return new ShardedPool(resolved, options)
}
