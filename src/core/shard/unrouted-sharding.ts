// A RoutingEngine serves one cluster. A config with `shards` runs through ShardedRouting (one engine per
// shard: createPool, freshet proxy); anything that would build one engine over it (freshet/mysql, a
// hand-made RoutingEngine) is refused rather than silently served by the first shard.

import { ConfigError } from '../errors.js'

/**
 * Throws a ConfigError at `shards` for a sharded config handed to something that serves one cluster.
 * @example
 * refuseUnroutedSharding(config) // in RoutingEngine's constructor and reload
 */
export function refuseUnroutedSharding(config: { readonly shards?: readonly unknown[] | undefined }): void {
  if (config.shards === undefined) return
  throw new ConfigError([
    {
      path: 'shards',
      message:
        'a sharded config runs through ShardedRouting (createPool, freshet proxy), one routing engine per shard; a single RoutingEngine, freshet/mysql and MySQL/MariaDB do not shard (docs/sharding.md)',
    },
  ])
}
