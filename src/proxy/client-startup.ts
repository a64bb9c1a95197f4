// A proxy client's way in: SSLRequest / GSSENCRequest / CancelRequest / StartupMessage, TLS, client
// authentication, the startup settings checked on a server connection, then the login answer.

import type { Socket } from 'node:net'
import { TLSSocket } from 'node:tls'
import { SQLSTATE } from '../core/errors.js'
import {
  BackendCode,
  backendKeyData,
  decodeParameterStatus,
  decodeStartupPacket,
  type ErrorFields,
  errorResponse,
  FrontendCode,
  negotiateProtocolVersion,
  ProtocolError,
  parameterStatus,
  readyForQuery,
  STARTUP_FRAME,
  type StartupPacket,
} from '../protocol/index.js'
import type { SessionState } from '../session/session-state.js'
import type { AuthStep } from './auth/auth-step.js'
import type { ClientAuthenticator } from './auth/client-authenticator.js'
import { createClientAuthenticator } from './auth/create-client-authenticator.js'
import { errorFields, errorFieldsOf } from './client-errors.js'
import type { ProxyRuntime, RegisteredClient } from './proxy-runtime.js'
import { type ServerConnection, ServerStartupError } from './server-connection.js'
import { type LoginIdentity, loginIdentity } from './server-pool.js'
import { planSettings, REPORTED_SETTINGS, startupSettings } from './startup-settings.js'

// every message: 1 byte code, then int32 length that counts itself but not the code
const HEADER_LENGTH = 5

/** Where a client session is: logging in, serving statements, or gone. */
export type SessionPhase = 'startup' | 'auth' | 'connecting' | 'ready' | 'closed'

/** What the login fills in on the client session (a ClientSession is one). */
export interface StartupClient extends RegisteredClient {
  pid: number
  secret: number
  identity: LoginIdentity
  settings: ReadonlyMap<string, string>
  readonly state: SessionState
}

/** The client session as its startup sees it. */
export interface StartupHost {
  readonly client: StartupClient
  /** The client socket now (a TLS socket after the upgrade). */
  socket(): Socket
  phase(): SessionPhase
  setPhase(phase: SessionPhase): void
  /** Bytes read from the client but not yet handled. */
  buffered(): number
  /**
   * The client switches to TLS: stop listening on the plain socket, then read and write the TLS
   * socket `wrap` makes of it from now on.
   */
  upgrade(wrap: (raw: Socket) => TLSSocket): void
  /** Logged in: the session may run what the client sent meanwhile. */
  loggedIn(): void
  /** Stops listening on the client socket and gives it away (the admin console takes it over). */
  handOff(): Socket
  /** Closes the client. */
  close(): void
}

/** `-c freshet.freshness=eventual` (or `--freshet.freshness=eventual`) inside the startup `options`. */
export function freshnessFromOptions(options: string | undefined): string | undefined {
  if (!options) return undefined
  const m = /(?:^|\s)(?:-c\s*|--)freshet\.freshness=(\S+)/i.exec(options)
  return m?.[1]?.replace(/^['"]|['"]$/g, '').toLowerCase()
}

/**
 * The session tier a StartupMessage asks for: a `freshet.freshness` parameter (any case, as PostgreSQL
 * matches setting names), else `-c freshet.freshness=` in `options`. PostgreSQL applies the parameters
 * after `options`, so a parameter wins when both are given.
 * @example
 * freshnessFromStartup({ user: 'app', 'freshet.freshness': 'EVENTUAL' }) // 'eventual'
 */
export function freshnessFromStartup(params: Readonly<Record<string, string>>): string | undefined {
  for (const [key, value] of Object.entries(params)) {
    if (value !== '' && key.toLowerCase() === 'freshet.freshness') return value.toLowerCase()
  }
  return freshnessFromOptions(params.options)
}

/**
 * Runs one client's login. `packet()` takes the startup packets, `password()` each 'p' message while
 * authenticating; the host's phase moves startup -> auth -> connecting -> ready (or closed).
 *
 * @example
 * const startup = new ClientStartup(runtime, host)
 * startup.packet(decodeStartupPacket(body))
 */
export class ClientStartup {
  readonly #rt: ProxyRuntime
  readonly #host: StartupHost
  #auth: ClientAuthenticator | null = null
  /** This client logs in to the virtual admin database (`proxy.admin.database`). */
  #admin = false

  constructor(runtime: ProxyRuntime, host: StartupHost) {
    this.#rt = runtime
    this.#host = host
  }

  /**
   * A startup packet, or a client message in the startup or auth phase: a password message while
   * authenticating; anything else is a protocol violation (thrown: the client is closed).
   */
  frame(code: number, buf: Buffer, start: number, end: number): void {
    if (code === STARTUP_FRAME) {
      this.packet(decodeStartupPacket(buf.subarray(start + 4, end)))
      return
    }
    const phase = this.#host.phase()
    if (phase === 'auth') {
      if (code !== FrontendCode.Password)
        throw new ProtocolError(`expected a password message, got '${String.fromCharCode(code)}'`)
      this.password(buf.subarray(start + HEADER_LENGTH, end))
      return
    }
    throw new ProtocolError('message before the startup packet')
  }

  /**
   * Bytes that are no startup packet at all (a bad length: Terminate before the StartupMessage, as
   * node-postgres' quick-disconnect test sends, or a port scanner): PostgreSQL logs "invalid length of
   * startup packet" and closes without a word, so do we.
   */
  unframed(err: unknown): void {
    this.#rt.log('info', 'closing client: invalid startup packet', { error: (err as Error)?.message })
    this.#host.close()
  }

  /** One startup packet (SSLRequest, GSSENCRequest, CancelRequest or StartupMessage). */
  packet(p: StartupPacket): void {
    const host = this.#host
    if (host.phase() !== 'startup') throw new ProtocolError('a second startup packet')
    switch (p.kind) {
      case 'ssl': {
        const tls = this.#rt.tlsOptions()
        const socket = host.socket()
        if (!tls || socket instanceof TLSSocket) {
          socket.write('N')
          return
        }
        // bytes after the SSLRequest and before the handshake would be unencrypted: refuse (CVE-2021-23214)
        if (host.buffered() > 0) throw new ProtocolError('data received before the TLS handshake')
        socket.write('S')
        host.upgrade((raw) => new TLSSocket(raw, { isServer: true, cert: tls.cert, key: tls.key }))
        return
      }
      case 'gssenc':
        host.socket().write('N')
        return
      case 'cancel':
        this.#rt.cancel(p.pid, p.secretKey)
        host.setPhase('closed')
        host.socket().end()
        return
      case 'startup':
        break
    }
    if (p.major !== 3) throw new ProtocolError(`unsupported frontend protocol ${p.major}.${p.minor}`)
    const params = p.params
    const user = params.user
    if (!user) {
      this.#reject({
        severity: 'FATAL',
        code: '28000',
        message: 'no PostgreSQL user name specified in startup packet',
      })
      return
    }
    if (params.replication !== undefined && params.replication !== 'false' && params.replication !== '0') {
      this.#reject({
        severity: 'FATAL',
        code: '08P01',
        message: 'freshet: replication connections are not supported',
      })
      return
    }
    const protocolOptions = Object.keys(params).filter((k) => k.startsWith('_pq_.'))
    if (p.minor !== 0 || protocolOptions.length > 0)
      host.socket().write(negotiateProtocolVersion(0, protocolOptions))
    host.client.identity = loginIdentity(user, params.database || user, this.#rt.password(user))
    host.client.settings = startupSettings(params)
    const tier = freshnessFromStartup(params)
    if (tier !== undefined) host.client.state.startupTier = tier
    const auth = this.#rt.config().proxy.auth
    // the virtual admin database: its own users, and never trust
    this.#admin = host.client.identity.database === this.#rt.config().proxy.admin.database
    if (this.#admin && this.#refuseAdmin(user)) return
    this.#auth = createClientAuthenticator(
      this.#admin && auth.type === 'trust' ? 'scram-sha-256' : auth.type,
      user,
      this.#admin ? this.#rt.adminCredential(user) : this.#rt.credential(user),
      { trustListedOnly: this.#admin || Object.keys(auth.users).length > 0 },
    )
    host.setPhase('auth')
    this.#authStep(this.#auth.start())
  }

  /** The body of a 'p' message while authenticating. */
  password(body: Buffer): void {
    this.#authStep(this.#auth!.receive(body))
  }

  #authStep(step: AuthStep): void {
    const host = this.#host
    const socket = host.socket()
    if (step.send) for (const m of step.send) socket.write(m)
    if (!step.done) return
    if (!step.ok) {
      this.#rt.log('warn', 'client authentication failed', {
        user: host.client.identity.user,
        client: `${socket.remoteAddress}:${socket.remotePort}`,
        method: this.#rt.config().proxy.auth.type,
        reason: step.reason,
      })
      this.#reject({
        severity: 'FATAL',
        code: step.sqlState ?? SQLSTATE.FRESHET_AUTH,
        message: step.error ?? 'freshet: authentication failed',
      })
      return
    }
    this.#auth = null
    if (this.#admin) {
      // the admin console owns the socket from here (AuthenticationOk went out with the last step)
      host.setPhase('closed')
      this.#rt.adminConsole!.accept(host.handOff(), host.client.identity)
      return
    }
    host.setPhase('connecting')
    this.#rt
      .startupParameters(host.client.identity)
      .then(async (statuses) => ({ statuses, reported: await this.#checkSettings() }))
      .then(
        ({ statuses, reported }) => {
          if (host.phase() === 'closed') return
          const key = this.#rt.register(host.client)
          host.client.pid = key.pid
          host.client.secret = key.secret
          // what PostgreSQL reports for the settings this client chose: the server's own spelling when
          // they were checked on a server connection, else the client's value as given
          const chosen = new Map<string, string>()
          for (const [name, value] of host.client.settings) {
            const spelled = REPORTED_SETTINGS.get(name)
            if (spelled !== undefined) chosen.set(spelled, reported.get(spelled) ?? value)
          }
          // one ParameterStatus per setting, in the server's order, as PostgreSQL sends them: the
          // client's value where it chose one (application_name: empty unless it did, as directly)
          const out: Buffer[] = []
          for (const [name, value] of statuses) {
            const own = chosen.get(name) ?? (name === 'application_name' ? '' : value)
            out.push(parameterStatus(name, own))
            chosen.delete(name)
          }
          for (const [name, value] of chosen) out.push(parameterStatus(name, value))
          if (!statuses.has('application_name') && !host.client.settings.has('application_name'))
            out.push(parameterStatus('application_name', ''))
          out.push(backendKeyData(key.pid, key.secret), readyForQuery('I'))
          host.socket().write(Buffer.concat(out))
          host.setPhase('ready')
          host.loggedIn()
        },
        (err: unknown) => {
          if (host.phase() === 'closed') return
          if (err instanceof ServerStartupError) {
            host.setPhase('closed')
            host.socket().end(err.raw)
            return
          }
          if (err instanceof SettingsRefused) {
            // as PostgreSQL does at login: FATAL with its own code and text
            this.#reject({ severity: 'FATAL', code: err.fields.code, message: err.fields.message })
            return
          }
          this.#reject(errorFields(err, 'FATAL'))
        },
      )
  }

  /** Refuses a login to the admin database without a console or as a user not in `proxy.admin.users`. */
  #refuseAdmin(user: string): boolean {
    const database = this.#host.client.identity.database
    if (this.#rt.adminConsole === null) {
      this.#reject({
        severity: 'FATAL',
        code: '3D000',
        message: `freshet: the admin console (${database}) is not served here`,
      })
      return true
    }
    if (this.#rt.adminCredential(user) === null) {
      this.#reject({
        severity: 'FATAL',
        code: '28000',
        message: `freshet: user '${user}' may not use the admin console ${database} (proxy.admin.users)`,
      })
      return true
    }
    return false
  }

  /**
   * Checks the client's startup settings on a primary connection at login, as PostgreSQL would: a value
   * the server refuses fails the login (SettingsRefused); the connection keeps the settings for this
   * client's first statement. Returns the ParameterStatus values the server reported. Without a primary
   * connection the check is left to the first statement.
   */
  async #checkSettings(): Promise<Map<string, string>> {
    const none = new Map<string, string>()
    const host = this.#host
    if (host.client.settings.size === 0) return none
    const pool = this.#rt.pool
    const primary = this.#rt.engine.tracker.primary
    let conn: ServerConnection
    try {
      conn =
        pool.tryAcquire(primary, host.client.identity) ?? (await pool.acquire(primary, host.client.identity))
    } catch {
      return none
    }
    const plan = planSettings(host.client.settings, conn)
    if (plan === null) {
      pool.release(conn)
      return none
    }
    let outcome: { error: ErrorFields | null; statuses: Map<string, string> }
    try {
      outcome = await runHidden(conn, plan.message)
    } catch {
      pool.release(conn)
      return none
    }
    if (outcome.error !== null) {
      conn.dirty = true
      pool.release(conn)
      throw new SettingsRefused(outcome.error)
    }
    conn.settings = plan.next
    pool.release(conn)
    return outcome.statuses
  }

  /** Sends a FATAL error and closes (startup and auth failures). */
  #reject(fields: { severity: string; code: string; message: string }): void {
    this.#host.setPhase('closed')
    this.#host.socket().end(errorResponse(fields))
    this.#rt.unregister(this.#host.client)
  }
}

/** The server refused a startup setting of the client (at login). */
class SettingsRefused extends Error {
  constructor(readonly fields: ErrorFields) {
    super(fields.message)
  }
}

/**
 * Runs one simple query on an idle server connection for freshet itself and collects what matters:
 * the first error and the ParameterStatus values; resolves at ReadyForQuery.
 */
function runHidden(
  conn: ServerConnection,
  message: Buffer,
): Promise<{ error: ErrorFields | null; statuses: Map<string, string> }> {
  return new Promise((resolve, reject) => {
    let error: ErrorFields | null = null
    const statuses = new Map<string, string>()
    conn.attach({
      onServerFrame: (code, buf, start, end) => {
        const body = buf.subarray(start + HEADER_LENGTH, end)
        if (code === BackendCode.ErrorResponse) error ??= errorFieldsOf(body)
        else if (code === BackendCode.ParameterStatus) {
          const p = decodeParameterStatus(body)
          statuses.set(p.name, p.value)
        } else if (code === BackendCode.ReadyForQuery) {
          conn.detach()
          resolve({ error, statuses })
        }
      },
      onServerChunkEnd: () => {},
      onServerLost: (_conn, err) => reject(err),
      onServerMessageFailed: (_conn, err) => reject(err),
    })
    conn.write(message)
  })
}
