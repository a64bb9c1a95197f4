// freshet's public API: the pg.Pool drop-in, request context, errors and the types they speak.

export { type AdminServer, type StartAdminOptions, startAdmin } from './admin/admin-server.js'
export { ConfigWatcher, type ReloadResult, type ReloadSource } from './backend/config-watcher.js'
export { type DiscoveryState, ReplicaDiscovery } from './backend/discovery.js'
export type { Classification } from './core/classify/classification.js'
export { parseConfig, validateConfig } from './core/config/parse-config.js'
export type { FreshetConfig, FreshetConfigInput } from './core/config/schema.js'
export {
  BackpressureError,
  ConfigError,
  CrossShardError,
  FreshetError,
  type FreshetErrorCode,
  isFreshetError,
  NodeUnavailableError,
  NoEligibleNodeError,
  ShardKeyError,
  SQLSTATE,
} from './core/errors.js'
export type { Decision, DecisionReason } from './core/route/decision.js'
export type { NodeSnapshot } from './core/topology/node-snapshot.js'
export {
  currentContext,
  freshness,
  readYourWrites,
  withPrimary,
  withScope,
  withShardKey,
} from './library/context.js'
export { createPool, createShardedPool, type ShardedConfigInput } from './library/create-pool.js'
export {
  type DevGuardOptions,
  installDevGuard,
  type ReadAfterWriteWarning,
} from './library/dev-guard.js'
export { FreshetClient } from './library/freshet-client.js'
export { type CreatePoolOptions, FreshetPool } from './library/freshet-pool.js'
export { ShardedClient } from './library/sharded-client.js'
export { ShardedPool } from './library/sharded-pool.js'
export { routingMapHost } from './routing/routing-map-host.js'
export { FreshetMetrics } from './telemetry/metrics.js'
export { withStatementSpan } from './telemetry/statement-span.js'
