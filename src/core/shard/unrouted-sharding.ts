// Until the routing engine routes by shard, a config with `shards` is validated (check-config, the JSON
// Schema, the core) but refused where statements would run, rather than silently served by one shard.

import { ConfigError } from '../errors.js'

/**
 * Throws a ConfigError at `shards` for a sharded config: this build validates sharding and computes
 * shards in its core (src/core/shard) but does not yet dispatch statements to them.
 */
export function refuseUnroutedSharding(config: { readonly shards?: readonly unknown[] | undefined }): void {
  if (config.shards === undefined) return
  throw new ConfigError([
    {
      path: 'shards',
      message:
        'sharded routing is not wired into the pool and proxy in this build yet (the config is valid; see docs/sharding.md)',
    },
  ])
}
