// The proxy's listener: accepts clients, owns the server pool, cancel keys, credentials and shutdown.

import { randomInt, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net'
import type { FreshetConfig } from '../core/config/schema.js'
import { ConfigError } from '../core/errors.js'
import { cancelRequest } from '../protocol/index.js'
import type { RoutingEngine } from '../routing/routing-engine.js'
import type { ShardedRouting } from '../routing/sharded-routing.js'
import type { AdminConsoleHook } from './admin-console-hook.js'
import { prepareCredential, type UserCredential } from './auth/create-client-authenticator.js'
import { ClientSession } from './client-session.js'
import type { ProxyObserver, ProxyRuntime } from './proxy-runtime.js'
import type { ServerConnection } from './server-connection.js'
import type { LoginIdentity, ServerConnectionInfo, ServerPoolStats } from './server-pool.js'
import { ServerPool } from './server-pool.js'
import { type ProxyPool, ShardedServerPool } from './sharded-server-pool.js'
import { WalPositions } from './wal-positions.js'

// how freshet's own connection that reads WAL positions for tokens shows in pg_stat_activity
const TOKEN_READER_NAME = 'freshet read-your-writes tokens'

/** Options of {@link ProxyServer}. */
export interface ProxyServerOptions {
  /** Overrides `proxy.listen` (e.g. `127.0.0.1:0` in tests). */
  listen?: string
  /** Receives the proxy's log lines; default: the engine's 'log' event. */
  log?: (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void
  /** Receives backend errors, failovers and routing latency: a FreshetMetrics, or anything alike. */
  observer?: ProxyObserver
  /**
   * A CancelRequest whose key no session of this server holds (with `proxy.workers`, the session may
   * live in another worker): passed on here. Default: ignored, as PostgreSQL does.
   */
  onForeignCancel?: (pid: number, secret: Buffer) => void
  /** Serves clients of the virtual admin database (`proxy.admin.database`); none: such logins are refused. */
  adminConsole?: AdminConsoleHook
  /**
   * A sharded config: the routing front; `engine` is then its first shard's engine. Each statement goes
   * to its shard, over one server pool per shard (docs/sharding.md).
   */
  sharded?: ShardedRouting
}

/** A client as the admin console's SHOW CLIENTS lists it. */
export interface ProxyClientInfo {
  pid: number
  user: string
  database: string
  address: string
  state: 'login' | 'idle' | 'active'
  tier: string | null
  connected_at: string
}

type UsersConfig = FreshetConfig['proxy']['auth']['users']

/** A users map of the config with each password prepared for client auth. */
interface PreparedUsers {
  readonly users: UsersConfig | null
  readonly credentials: ReadonlyMap<string, UserCredential>
}
const NO_USERS: PreparedUsers = { users: null, credentials: new Map() }

/** Prepares each user's credential once per config: a SCRAM verifier costs a PBKDF2 run. */
function prepared(users: UsersConfig, previous: PreparedUsers): PreparedUsers {
  if (users === previous.users) return previous
  const credentials = new Map<string, UserCredential>()
  for (const [name, { password }] of Object.entries(users)) {
    const same = previous.users?.[name]?.password === password
    credentials.set(name, same ? previous.credentials.get(name)! : prepareCredential(name, password))
  }
  return { users, credentials }
}

/** `host:port`, `[v6]:port` or `:port` into its parts. */
export function parseProxyListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(listen.trim())
  const port = Number(m?.[3])
  if (!m || port > 65535)
    throw new ConfigError([{ path: 'proxy.listen', message: `'${listen}' is not host:port` }])
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port }
}

/**
 * The PostgreSQL-protocol proxy in front of a routing engine. Clients connect as to PostgreSQL; each
 * statement or transaction goes where the engine decides.
 *
 * @example
 * const engine = new RoutingEngine(config)
 * await engine.start()
 * const proxy = new ProxyServer(engine)
 * const { port } = await proxy.listen()
 * // psql "postgres://app:secret@127.0.0.1:6432/main"
 * await proxy.close(30_000)
 */
export class ProxyServer implements ProxyRuntime {
  readonly engine: RoutingEngine
  readonly pool: ProxyPool
  readonly sharded: ShardedRouting | null
  readonly #server: Server
  readonly #listen: string
  readonly #log: NonNullable<ProxyServerOptions['log']>
  readonly observer: ProxyObserver | null
  readonly #onForeignCancel: ((pid: number, secret: Buffer) => void) | null
  readonly #sessions = new Map<ClientSession, { address: string; since: number }>()
  readonly adminConsole: AdminConsoleHook | null
  #adminCredentials: PreparedUsers = NO_USERS
  readonly #byPid = new Map<number, ClientSession>()
  readonly #parameters = new Map<string, ReadonlyMap<string, string>>()
  #userCredentials: PreparedUsers = NO_USERS
  #tls: { cert: Buffer; key: Buffer } | null = null
  #tlsFor: FreshetConfig['proxy']['tls'] | null = null
  #nextPid = randomInt(1_000_000, 2_000_000)
  #draining = false
  readonly positions: WalPositions
  readonly #onConfig = (config: FreshetConfig) => (this.pool as ServerPool).setConfig(config)
  /** Node addresses may have moved: the token readers reconnect. */
  readonly #onAnyConfig = () => this.positions.reconnect()

  constructor(engine: RoutingEngine, options: ProxyServerOptions = {}) {
    this.engine = engine
    this.sharded = options.sharded ?? null
    if (this.sharded !== null) this.pool = new ShardedServerPool(this.sharded.engines())
    else {
      const pool = new ServerPool(engine.config, engine.tracker)
      this.pool = pool
      engine.tracker.setActiveCounter((node) => pool.active(node))
      engine.on('config', this.#onConfig)
    }
    this.#listen = options.listen ?? engine.config.proxy.listen
    this.#log = options.log ?? ((level, message, fields) => engine.emit('log', level, message, fields))
    this.positions = new WalPositions(
      (node) => this.pool.openOwn(node, TOKEN_READER_NAME),
      (message, fields) => this.#log('warn', message, fields),
    )
    for (const e of this.#engines()) e.on('config', this.#onAnyConfig)
    this.observer = options.observer ?? null
    this.#onForeignCancel = options.onForeignCancel ?? null
    this.adminConsole = options.adminConsole ?? null
    // paused: a plain-text client's socket is remade to read through onread first (client-transport.ts)
    this.#server = createServer({ pauseOnConnect: true }, (socket) => this.#accept(socket))
    this.#server.on('error', (err) => this.#log('error', `proxy listener error: ${err.message}`))
  }

  /** Starts listening; resolves with the bound address. */
  listen(): Promise<AddressInfo> {
    const { host, port } = parseProxyListen(this.#listen)
    this.tlsOptions() // a bad cert/key path fails here, not at the first client
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject)
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject)
        const address = this.#server.address() as AddressInfo
        this.#log('info', `proxy listening on ${address.address}:${address.port}`)
        // in the background: clients are served meanwhile, and warmUp() never throws
        void this.pool.warmUp()
        resolve(address)
      })
    })
  }

  /** The bound address (after `listen()`). */
  get address(): AddressInfo {
    return this.#server.address() as AddressInfo
  }

  /** Clients connected right now. */
  get clients(): number {
    return this.#sessions.size
  }

  /** Per-node server connection counts, for the admin API and metrics. */
  poolStats(): Record<string, ServerPoolStats> {
    return this.pool.stats()
  }

  #accept(socket: Socket): void {
    if (this.#draining) {
      socket.destroy()
      return
    }
    try {
      // a listener without TLS never upgrades a client: its sockets can read through onread
      const session = new ClientSession(socket, this, this.tlsOptions() === null)
      const own = session.socket
      this.#sessions.set(session, {
        address: `${own.remoteAddress}:${own.remotePort}`,
        since: Date.now(),
      })
      own.once('close', () => this.#sessions.delete(session))
    } catch (err) {
      this.#log('error', `cannot accept a client: ${(err as Error).message}`)
      socket.destroy()
    }
  }

  /** Every client connected now (the admin console's SHOW CLIENTS). */
  clientList(): ProxyClientInfo[] {
    return [...this.#sessions].map(([s, { address, since }]) => ({
      pid: s.pid,
      user: s.identity.user,
      database: s.identity.database,
      address,
      state: s.pid === 0 ? 'login' : s.busy ? 'active' : 'idle',
      tier: s.state.startupTier ?? null,
      connected_at: new Date(since).toISOString(),
    }))
  }

  /** Every open server connection (the admin console's SHOW SERVERS). */
  serverConnections(): ServerConnectionInfo[] {
    return this.pool.connections()
  }

  /** Prepared credential of an admin console user (`proxy.admin.users`), or null. */
  adminCredential(user: string): UserCredential | null {
    this.#adminCredentials = prepared(this.engine.config.proxy.admin.users, this.#adminCredentials)
    return this.#adminCredentials.credentials.get(user) ?? null
  }

  // ---- ProxyRuntime ------------------------------------------------------------------------------

  engineOf(node: string): RoutingEngine {
    const sharded = this.sharded
    if (sharded === null) return this.engine
    for (const [, e] of sharded.engines()) if (e.tracker.nodeConfig(node) !== undefined) return e
    return this.engine
  }

  config(): FreshetConfig {
    return this.engine.config
  }

  get draining(): boolean {
    return this.#draining
  }

  credential(user: string): UserCredential | null {
    this.#userCredentials = prepared(this.engine.config.proxy.auth.users, this.#userCredentials)
    return this.#userCredentials.credentials.get(user) ?? null
  }

  password(user: string): string | undefined {
    const password = this.engine.config.proxy.auth.users[user]?.password
    // a stored verifier or hash cannot log in to a server
    if (
      password === undefined ||
      password.startsWith('SCRAM-SHA-256$') ||
      /^md5[0-9a-f]{32}$/.test(password)
    ) {
      return undefined
    }
    return password
  }

  tlsOptions(): { cert: Buffer; key: Buffer } | null {
    const tls = this.engine.config.proxy.tls
    if (tls !== this.#tlsFor) {
      this.#tlsFor = tls
      this.#tls = tls.cert && tls.key ? { cert: readFileSync(tls.cert), key: readFileSync(tls.key) } : null
    }
    return this.#tls
  }

  async startupParameters(identity: LoginIdentity): Promise<ReadonlyMap<string, string>> {
    const key = identity.key
    const cached = this.#parameters.get(key)
    if (cached) return cached
    const nodes = [this.engine.tracker.primary, ...this.engine.tracker.nodes().map((n) => n.name)]
    let lastError: unknown = null
    for (const node of new Set(nodes)) {
      try {
        const conn = this.pool.tryAcquire(node, identity) ?? (await this.pool.acquire(node, identity))
        const statuses: ReadonlyMap<string, string> = new Map(conn.parameters)
        this.pool.release(conn)
        this.#parameters.set(key, statuses)
        return statuses
      } catch (err) {
        lastError = err
        // PostgreSQL's own refusal (unknown database, wrong password) is the answer; else try another node
        if ((err as { raw?: unknown }).raw !== undefined) throw err
      }
    }
    throw lastError
  }

  register(session: ClientSession): { pid: number; secret: number } {
    const pid = this.#nextPid++
    if (this.#nextPid > 0x7fffffff) this.#nextPid = 1_000_000
    const secret = randomInt(0, 0x7fffffff)
    this.#byPid.set(pid, session)
    return { pid, secret }
  }

  unregister(session: ClientSession): void {
    if (this.#byPid.get(session.pid) === session) this.#byPid.delete(session.pid)
  }

  cancel(pid: number, secret: Buffer): void {
    if (!this.cancelLocal(pid, secret)) this.#onForeignCancel?.(pid, secret)
  }

  /**
   * Cancels the statement of this server's session with that key; false when no session here has the
   * key (another worker's may: see `onForeignCancel`).
   */
  cancelLocal(pid: number, secret: Buffer): boolean {
    const session = this.#byPid.get(pid)
    if (!session || secret.length !== 4) return false
    const expected = Buffer.alloc(4)
    expected.writeUInt32BE(session.secret >>> 0)
    if (!timingSafeEqual(expected, secret)) return false
    const conn = session.busyConnection
    if (conn) this.cancelServer(conn)
    return true
  }

  /** Cancels what a server connection is running: PostgreSQL's own cancel, with that backend's key. */
  cancelServer(conn: ServerConnection): void {
    const socket = connect({ host: conn.host, port: conn.port }, () =>
      socket.end(cancelRequest(conn.pid, conn.secretKey)),
    )
    socket.on('error', (err) => this.#log('warn', `cancel request to ${conn.node} failed: ${err.message}`))
    socket.setTimeout(5000, () => socket.destroy())
  }

  log(level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>): void {
    this.#log(level, message, fields)
  }

  // ---- routing-map drain -------------------------------------------------------------------------

  /**
   * After a new routing map applied (version `version`): waits up to `timeoutMs` for the statements and
   * transactions that run on a node of the `from` shards under an older map to finish there (new ones
   * already take the new route), then closes those nodes' idle server connections. Nothing is killed.
   * @example
   * await proxy.drainShards(['shard_0'], 2, 30_000) // { statements: 1, transactions: 2, still_running: 0, ... }
   */
  async drainShards(
    from: readonly string[],
    version: number,
    timeoutMs: number,
  ): Promise<{
    from: readonly string[]
    statements: number
    transactions: number
    still_running: number
    waited_ms: number
    closed_idle_connections: number
  }> {
    const started = Date.now()
    const sharded = this.sharded
    const nodes = new Set<string>()
    if (sharded !== null)
      for (const shard of from) for (const n of sharded.engine(shard).tracker.nodes()) nodes.add(n.name)
    const onOldRoute = (s: ClientSession) => {
      const r = s.shardRoute
      return r !== null && nodes.has(r.node) && (r.version ?? 0) < version && (r.transaction || r.running)
    }
    const waiting = [...this.#sessions.keys()].filter(onOldRoute)
    let transactions = 0
    for (const s of waiting) if (s.shardRoute?.transaction) transactions++
    const deadline = started + timeoutMs
    let left = waiting
    while (left.length > 0 && Date.now() < deadline) {
      // a client's transaction ends when the client says so: poll, there is no event per session for it
      await new Promise((r) => setTimeout(r, 10))
      left = left.filter((s) => this.#sessions.has(s) && onOldRoute(s))
    }
    let closed = 0
    for (const n of nodes) closed += this.pool.closeIdle(n)
    return {
      from,
      statements: waiting.length - transactions,
      transactions,
      still_running: left.length,
      waited_ms: Date.now() - started,
      closed_idle_connections: closed,
    }
  }

  // ---- shutdown ----------------------------------------------------------------------------------

  /**
   * Graceful shutdown: stops accepting, lets open transactions finish (idle clients are told the
   * proxy is shutting down, 57P01), and after `timeoutMs` closes whoever is left. Then closes the pool.
   */
  async close(timeoutMs = this.engine.config.proxy.shutdown_timeout_ms): Promise<void> {
    if (this.#draining) return
    this.#draining = true
    if (this.sharded === null) this.engine.off('config', this.#onConfig)
    for (const e of this.#engines()) e.off('config', this.#onAnyConfig)
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()))
    for (const s of this.#sessions.keys()) s.drain()
    const deadline = Date.now() + timeoutMs
    while (this.#sessions.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20))
    }
    for (const s of this.#sessions.keys()) s.close()
    this.#sessions.clear()
    this.positions.close()
    this.pool.close()
    await closed
  }

  /** Every engine whose nodes this proxy serves (each shard's when sharded). */
  #engines(): RoutingEngine[] {
    return this.sharded === null ? [this.engine] : this.sharded.engines().map(([, e]) => e)
  }
}
