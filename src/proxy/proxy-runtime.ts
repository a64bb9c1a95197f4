// What a client session needs from the proxy around it, and what the proxy reports for its metrics.

import type { FreshetConfig } from '../core/config/schema.js'
import type { RoutingEngine } from '../routing/routing-engine.js'
import type { ShardedRouting } from '../routing/sharded-routing.js'
import type { AdminConsoleHook } from './admin-console-hook.js'
import type { UserCredential } from './auth/create-client-authenticator.js'
import type { ServerConnection } from './server-connection.js'
import type { LoginIdentity } from './server-pool.js'
import type { ProxyPool } from './sharded-server-pool.js'
import type { WalPositions } from './wal-positions.js'

/** What the proxy reports for its metrics (FreshetMetrics has these methods). */
export interface ProxyObserver {
  /** An error talking to node `backend`: a connection that failed or was lost. */
  backendError(backend: string): void
  /** A statement moved to another node after its backend failed. */
  backendFailover(): void
  /** Seconds from a client's message arriving to its forwarding to a server. */
  observeProxyRoutingLatency(seconds: number): void
}

/** A logged-in client as the proxy's cancel-key registry sees it. */
export interface RegisteredClient {
  readonly pid: number
  readonly secret: number
  /** The server connection running a statement of this client (for CancelRequest), or null. */
  readonly busyConnection: ServerConnection | null
}

/** What a client session needs from the proxy around it (a ProxyServer is one). */
export interface ProxyRuntime {
  /** The engine (sharded: the first shard's, for the settings every shard shares). */
  readonly engine: RoutingEngine
  readonly pool: ProxyPool
  /** The primaries' WAL positions read after writes, for read-your-writes tokens (shared by all clients). */
  readonly positions: WalPositions
  /** Sharded configs: the front that decides each statement's shard; null otherwise. */
  readonly sharded: ShardedRouting | null
  /** The engine that owns node `node`: its shard's (the one engine when unsharded). */
  engineOf(node: string): RoutingEngine
  readonly observer: ProxyObserver | null
  config(): FreshetConfig
  /** Prepared credential of a configured user, or null. */
  credential(user: string): UserCredential | null
  /** The user's password from `proxy.auth.users` (for server login), if any. */
  password(user: string): string | undefined
  tlsOptions(): { cert: string | Buffer; key: string | Buffer } | null
  /**
   * The ParameterStatus values (name to value, in the server's order) a server connection for this
   * identity reported at login (cached); rejects like a login.
   */
  startupParameters(identity: LoginIdentity): Promise<ReadonlyMap<string, string>>
  register(session: RegisteredClient): { pid: number; secret: number }
  unregister(session: RegisteredClient): void
  cancel(pid: number, secret: Buffer): void
  /** Cancels the statement a server connection is running (PostgreSQL's CancelRequest). */
  cancelServer(conn: ServerConnection): void
  readonly draining: boolean
  /** Serves logins to `proxy.admin.database` (see admin-console-hook.ts), or null: they are refused. */
  readonly adminConsole: AdminConsoleHook | null
  /** Prepared credential of an admin console user (`proxy.admin.users`), or null. */
  adminCredential(user: string): UserCredential | null
  log(level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>): void
}
