// One client of the proxy: startup and auth, then statements routed per transaction onto pooled
// server connections, forwarding original bytes both ways and renaming prepared statements.

import { createHash } from 'node:crypto'
import type { Socket } from 'node:net'
import { TLSSocket } from 'node:tls'
import type { Span } from '@opentelemetry/api'
import type { Classification } from '../core/classify/classification.js'
import type { FreshetConfig } from '../core/config/schema.js'
import { isFreshetError, isRecoveryConflict, NodeUnavailableError, SQLSTATE } from '../core/errors.js'
import { parseLsn } from '../core/lsn.js'
import type { Decision } from '../core/route/decision.js'
import { decisionError } from '../core/route/decision-error.js'
import {
  BackendCode,
  BIND_COMPLETE,
  backendKeyData,
  close as closeMessage,
  commandComplete,
  decodeBind,
  decodeClose,
  decodeDescribe,
  decodeErrorFields,
  decodeParameterStatus,
  decodeParse,
  decodeQuery,
  decodeStartupPacket,
  type ErrorFields,
  errorResponse,
  FrameReader,
  FrontendCode,
  NO_DATA,
  negotiateProtocolVersion,
  noticeResponse,
  PARSE_COMPLETE,
  ProtocolError,
  parameterStatus,
  parse as parseMessage,
  query as queryMessage,
  type RawFrameHandler,
  readyForQuery,
  renameBind,
  renameDescribeOrClose,
  renameParse,
  STARTUP_FRAME,
  type StartupPacket,
  type TransactionStatus,
} from '../protocol/index.js'
import type { RoutingEngine } from '../routing/routing-engine.js'
import { localOutsideTransaction, onlyFreshetSettings, SessionState } from '../session/session-state.js'
import { splitStatements } from '../session/split-statements.js'
import { failSpan, startStatementSpan } from '../telemetry/statement-span.js'
import type { AuthStep } from './auth/auth-step.js'
import type { ClientAuthenticator } from './auth/client-authenticator.js'
import { createClientAuthenticator, type UserCredential } from './auth/create-client-authenticator.js'
import type { Evicted, ServerConnection, ServerSink } from './server-connection.js'
import { ServerStartupError } from './server-connection.js'
import type { LoginIdentity, ServerPool } from './server-pool.js'
import { planSettings, REPORTED_SETTINGS, startupSettings } from './startup-settings.js'

// every message: 1 byte code, then int32 length that counts itself but not the code
const HEADER_LENGTH = 5
// ReadyForQuery status bytes
const STATUS_IDLE = 0x49 // I
const STATUS_IN_TX = 0x54 // T
// A Parse of the empty query into the unnamed statement: stands in for a client Parse of a statement the
// server connection already has, so the client still gets its ParseComplete in the right place.
const EMPTY_PARSE = parseMessage('', '')
// Close of a name freshet never creates: stands in for a client's Close of a named statement (closing a
// nonexistent statement is not an error), so the client gets its CloseComplete in order.
const CLOSE_NOTHING = closeMessage('S', 'fr_none')
// The read-your-writes token, fetched on the connection that committed (its answer is never forwarded).
const CURRENT_LSN = queryMessage('SELECT pg_current_wal_lsn()::text')
// Jobs a pipelining client may queue before we stop reading from it.
const MAX_QUEUED_JOBS = 256
// What PostgreSQL answers to SET LOCAL outside a transaction block (before its SET), and then ignores it.
const SET_LOCAL_WARNING = noticeResponse({
  severity: 'WARNING',
  code: '25P01',
  message: 'SET LOCAL can only be used in transaction blocks',
})
const NO_STATEMENTS: readonly Classification[] = Object.freeze([])

/** What a client session needs from the proxy around it. */
/** What the proxy reports for its metrics (FreshetMetrics has these methods). */
export interface ProxyObserver {
  /** An error talking to node `backend`: a connection that failed or was lost. */
  backendError(backend: string): void
  /** A statement moved to another node after its backend failed. */
  backendFailover(): void
  /** Seconds from a client's message arriving to its forwarding to a server. */
  observeProxyRoutingLatency(seconds: number): void
}

export interface ProxyRuntime {
  readonly engine: RoutingEngine
  readonly pool: ServerPool
  readonly observer: ProxyObserver | null
  config(): FreshetConfig
  /** Prepared credential of a configured user, or null. */
  credential(user: string): UserCredential | null
  /** The user's password from `proxy.auth.users` (for server login), if any. */
  password(user: string): string | undefined
  tlsOptions(): { cert: string | Buffer; key: string | Buffer } | null
  /** ParameterStatus messages of a server connection for this identity (cached); rejects like a login. */
  startupParameters(identity: LoginIdentity): Promise<Buffer>
  register(session: ClientSession): { pid: number; secret: number }
  unregister(session: ClientSession): void
  cancel(pid: number, secret: Buffer): void
  /** Cancels the statement a server connection is running (PostgreSQL's CancelRequest). */
  cancelServer(conn: ServerConnection): void
  readonly draining: boolean
  log(level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>): void
}

/**
 * A client's named prepared statement. On a server connection it lives under the client's own name
 * when that name is free there or holds the same statement (then Parse and Bind go out byte for byte),
 * else under `key`, `fr_<hash of text and parameter types>`, shared by every client with that statement.
 */
interface Statement {
  readonly text: string
  readonly clientName: string
  readonly key: string
  /** The client's Parse (a copy: the statement outlives the chunk). */
  readonly parse: Buffer
  /** The client's Parse renamed to `key`, made when first needed. */
  keyed: Buffer | null
}

/** One extended-protocol message of a batch, with what it refers to at the time it was sent. */
interface BatchItem {
  readonly code: number
  readonly whole: Buffer
  /** Named statement it creates or uses. */
  readonly stmt: Statement | null
  /** For uses of the unnamed statement: the client's Parse that defined it. */
  readonly unnamed: Buffer | null
  /** Describe/Close of a statement ('S'), not a portal. */
  readonly statementTarget: boolean
  readonly text: string | null
}

interface Job {
  readonly kind: 'simple' | 'extended' | 'function'
  /** Simple query or function call: the message. */
  readonly whole: Buffer | null
  readonly items: BatchItem[] | null
  /** The statement that routes the job (for a batch of several, set at dispatch: see #dispatch). */
  sql: string | null
  /** An extended batch of several statements: their distinct texts in order, else null. */
  readonly texts: readonly string[] | null
  /** ReadyForQuery answers still expected (0 for a batch ended by Flush). */
  syncs: number
  classification: Classification | null
  failed: boolean
  /** performance.now() when the message (or the batch's last message) arrived. */
  receivedAt: number
  startedAt: number
  /** Some of the server's answer reached the client: the job can no longer move to another node. */
  answered: boolean
  /** Already moved once after a backend failure. */
  retried: boolean
  /** A replica cancelled it for a recovery conflict (that message); it moves at ReadyForQuery. */
  conflict: string | null
  /** The statement's trace span (a no-op without an OpenTelemetry SDK), ended when the server answers. */
  span: Span | null
}

interface ParseSlot {
  readonly swallow: boolean
  /** Server-side name created by this Parse: forgotten unless it completes. */
  readonly name: string | null
}

/** A job as received: nothing decided, answered or sent yet. */
function newJob(
  kind: Job['kind'],
  whole: Buffer | null,
  items: BatchItem[] | null,
  sql: string | null,
  texts: readonly string[] | null,
  syncs: number,
): Job {
  return {
    kind,
    whole,
    items,
    sql,
    texts,
    syncs,
    classification: null,
    failed: false,
    receivedAt: performance.now(),
    startedAt: 0,
    answered: false,
    retried: false,
    conflict: null,
    span: null,
  }
}

/** ParameterDescription with no parameters. */
const NO_PARAMETERS = Buffer.from([0x74, 0, 0, 0, 6, 0, 0])

interface CloseSlot {
  readonly swallow: boolean
  readonly evicted: Evicted | null
}

const SWALLOW_CLOSE: CloseSlot = Object.freeze({ swallow: true, evicted: null })
const CLIENT_CLOSE: CloseSlot = Object.freeze({ swallow: false, evicted: null })

const CLIENT_SLOT: ParseSlot = Object.freeze({ swallow: false, name: null })
const INJECTED_UNNAMED_SLOT: ParseSlot = Object.freeze({ swallow: true, name: null })

/** SQLSTATE and message for an error freshet raises itself. */
function errorFields(err: unknown, severity = 'ERROR') {
  if (err instanceof ProtocolError) return { severity, code: err.sqlState, message: err.message }
  if (isFreshetError(err)) return { severity, code: SQLSTATE[err.code], message: err.message }
  const sqlState = (err as { sqlState?: unknown })?.sqlState
  if (typeof sqlState === 'string') return { severity, code: sqlState, message: (err as Error).message }
  return { severity, code: 'XX000', message: `freshet: internal error: ${(err as Error)?.message ?? err}` }
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

/** What {@link serverNameOf} makes: client statements with such names always go under their key. */
const KEY_NAME = /^fr_[0-9a-f]{24}$/

/** The server-side name for a statement: a hash of its text and parameter types (the Parse body after the name). */
function serverNameOf(parseWhole: Buffer): string {
  const nameEnd = parseWhole.indexOf(0, HEADER_LENGTH)
  return `fr_${createHash('sha1')
    .update(parseWhole.subarray(nameEnd + 1))
    .digest('hex')
    .slice(0, 24)}`
}

/**
 * A client connection: startup (SSLRequest, GSSENCRequest, CancelRequest, StartupMessage), auth, then
 * statements. Each autocommit statement or transaction is decided by the engine and runs on a server
 * connection borrowed for it; transactions and session state hold the connection until they end.
 */
export class ClientSession implements ServerSink {
  #socket: Socket
  readonly #rt: ProxyRuntime
  readonly #reader = new FrameReader({ startup: true })
  #phase: 'startup' | 'auth' | 'connecting' | 'ready' | 'closed' = 'startup'
  #auth: ClientAuthenticator | null = null
  identity: LoginIdentity = { user: '', database: '', password: undefined }
  /** Settings asked for at startup (application_name, statement_timeout, -c options ...), lower-case names. */
  settings: ReadonlyMap<string, string> = new Map()
  readonly state = new SessionState()
  pid = 0
  secret = 0

  readonly #queue: Job[] = []
  #running: Job | null = null
  #conn: ServerConnection | null = null
  #txStatus: TransactionStatus = 'I'
  #extendedOpen = false
  #skipUntilSync = false
  #txWrote = false
  #hidden = false
  #hiddenLsn: string | null = null
  /** The hidden statement's answer is a token to record (else it is only swallowed). */
  #hiddenRecord = false
  /** The job waiting while the connection it was lent is brought to this client's settings. */
  #applying: Job | null = null
  /** The server's error while applying them. */
  #applyError: Error | null = null
  /** CURRENT_LSN went out right behind the running job (see #pipelinesLsn). */
  #lsnSent = false
  #draining = false
  #readPaused = false

  readonly #statements = new Map<string, Statement>()
  #lastUnnamedParse: Buffer | null = null
  #lastUnnamedText: string | null = null
  #batch: BatchItem[] | null = null
  /** Statements of batches ended by Flush since the last Sync: their pins apply at its ReadyForQuery. */
  readonly #unsynced: Classification[] = []
  /** The server reported an error while no job of this client was running (after a Flush). */
  #unsyncedError = false
  /** A reused one-statement list for {@link SessionState.applyPins}. */
  readonly #one: Classification[] = []
  #parseSlots: ParseSlot[] = []
  /**
   * Per Close sent in the running job, in order: swallow its CloseComplete (freshet's own Close), and
   * for an eviction the statement it closes (restored if the server skipped the Close after an error).
   */
  #closeSwallow: CloseSlot[] = []

  // a run of consecutive server messages in one buffer, written to the client in one go (at the end
  // of each server chunk at the latest: the views are valid only until then)
  #runBuf: Buffer | null = null
  #runStart = 0
  #runEnd = 0
  // what goes to the server for the batch being sent (see #out)
  #outRun: Buffer | null = null
  readonly #outParts: Buffer[] = []

  constructor(socket: Socket, runtime: ProxyRuntime) {
    this.#socket = socket
    this.#rt = runtime
    socket.setNoDelay(true)
    this.#listen(socket)
  }

  #listen(socket: Socket): void {
    socket.on('data', this.#onData)
    socket.on('error', () => this.close())
    socket.on('close', () => this.close())
  }

  readonly #onData = (chunk: Buffer): void => {
    try {
      this.#reader.feedRaw(chunk, this.#onClientFrame)
    } catch (err) {
      this.#fatal(err)
    }
  }

  /** True while a statement of this client runs on a server (for CancelRequest). */
  get busyConnection(): ServerConnection | null {
    return this.#running || this.#hidden ? this.#conn : null
  }

  /** Holding a server connection (open transaction, session state) or running something. */
  get busy(): boolean {
    return this.#conn !== null || this.#running !== null || this.#queue.length > 0
  }

  // ---- client side -------------------------------------------------------------------------------

  readonly #onClientFrame: RawFrameHandler = (code, buf, start, end) => {
    if (this.#phase === 'closed') return
    if (code === STARTUP_FRAME) {
      this.#startupPacket(decodeStartupPacket(buf.subarray(start + 4, end)))
      return
    }
    if (this.#phase === 'auth') {
      if (code !== FrontendCode.Password)
        throw new ProtocolError(`expected a password message, got '${String.fromCharCode(code)}'`)
      this.#authStep(this.#auth!.receive(buf.subarray(start + HEADER_LENGTH, end)))
      return
    }
    if (this.#phase === 'startup') throw new ProtocolError('message before the startup packet')
    this.#message(code, buf, start, end)
  }

  #startupPacket(p: StartupPacket): void {
    if (this.#phase !== 'startup') throw new ProtocolError('a second startup packet')
    switch (p.kind) {
      case 'ssl': {
        const tls = this.#rt.tlsOptions()
        if (!tls || this.#socket instanceof TLSSocket) {
          this.#socket.write('N')
          return
        }
        // bytes after the SSLRequest and before the handshake would be unencrypted: refuse (CVE-2021-23214)
        if (this.#reader.buffered > 0) throw new ProtocolError('data received before the TLS handshake')
        this.#socket.write('S')
        const raw = this.#socket
        raw.removeListener('data', this.#onData)
        raw.removeAllListeners('error')
        raw.removeAllListeners('close')
        const secure = new TLSSocket(raw, { isServer: true, cert: tls.cert, key: tls.key })
        this.#socket = secure
        this.#listen(secure)
        return
      }
      case 'gssenc':
        this.#socket.write('N')
        return
      case 'cancel':
        this.#rt.cancel(p.pid, p.secretKey)
        this.#phase = 'closed'
        this.#socket.end()
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
      this.#socket.write(negotiateProtocolVersion(0, protocolOptions))
    this.identity = { user, database: params.database || user, password: this.#rt.password(user) }
    this.settings = startupSettings(params)
    const tier = freshnessFromStartup(params)
    if (tier !== undefined) this.state.startupTier = tier
    const auth = this.#rt.config().proxy.auth
    this.#auth = createClientAuthenticator(auth.type, user, this.#rt.credential(user), {
      trustListedOnly: Object.keys(auth.users).length > 0,
    })
    this.#phase = 'auth'
    this.#authStep(this.#auth.start())
  }

  #authStep(step: AuthStep): void {
    if (step.send) for (const m of step.send) this.#socket.write(m)
    if (!step.done) return
    if (!step.ok) {
      this.#rt.log('warn', 'client authentication failed', {
        user: this.identity.user,
        client: `${this.#socket.remoteAddress}:${this.#socket.remotePort}`,
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
    this.#phase = 'connecting'
    this.#auth = null
    this.#rt
      .startupParameters(this.identity)
      .then(async (statuses) => ({ statuses, reported: await this.#checkSettings() }))
      .then(
        ({ statuses, reported }) => {
          if (this.#phase === 'closed') return
          const key = this.#rt.register(this)
          this.pid = key.pid
          this.secret = key.secret
          const out = [statuses]
          // what PostgreSQL reports for the settings this client chose: the server's own spelling when
          // they were checked on a server connection, else the client's value as given
          for (const [name, value] of this.settings) {
            const spelled = REPORTED_SETTINGS.get(name)
            if (spelled !== undefined) out.push(parameterStatus(spelled, reported.get(spelled) ?? value))
          }
          if (!this.settings.has('application_name')) out.push(parameterStatus('application_name', ''))
          out.push(backendKeyData(key.pid, key.secret), readyForQuery('I'))
          this.#socket.write(Buffer.concat(out))
          this.#phase = 'ready'
          this.#next()
        },
        (err: unknown) => {
          if (this.#phase === 'closed') return
          if (err instanceof ServerStartupError) {
            this.#phase = 'closed'
            this.#socket.end(err.raw)
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

  /**
   * Checks the client's startup settings on a primary connection at login, as PostgreSQL would: a value
   * the server refuses fails the login (SettingsRefused); the connection keeps the settings for this
   * client's first statement. Returns the ParameterStatus values the server reported. Without a primary
   * connection the check is left to the first statement.
   */
  async #checkSettings(): Promise<Map<string, string>> {
    const none = new Map<string, string>()
    if (this.settings.size === 0) return none
    const pool = this.#rt.pool
    const primary = this.#rt.engine.tracker.primary
    let conn: ServerConnection
    try {
      conn = pool.tryAcquire(primary, this.identity) ?? (await pool.acquire(primary, this.identity))
    } catch {
      return none
    }
    const plan = planSettings(this.settings, conn)
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
    this.#phase = 'closed'
    this.#socket.end(errorResponse(fields))
    this.#rt.unregister(this)
  }

  /** A malformed message or an internal failure: tell the client, close only this client. */
  #fatal(err: unknown): void {
    if (this.#phase === 'closed') return
    this.#rt.log('warn', 'closing client after an error', { error: (err as Error)?.message })
    const fields = errorFields(err, 'FATAL')
    try {
      this.#socket.end(errorResponse(fields))
    } catch {
      // the socket is already gone
    }
    this.close()
  }

  #message(code: number, buf: Buffer, start: number, end: number): void {
    switch (code) {
      case FrontendCode.Query: {
        this.#endBatch(0)
        const whole = buf.subarray(start, end)
        const sql = decodeQuery(buf.subarray(start + HEADER_LENGTH, end))
        this.#push(newJob('simple', whole, null, sql, null, 1))
        return
      }
      case FrontendCode.Parse:
      case FrontendCode.Bind:
      case FrontendCode.Describe:
      case FrontendCode.Close:
      case FrontendCode.Execute:
        this.#batchPush(code, buf.subarray(start, end))
        return
      case FrontendCode.Sync:
        this.#batchPush(code, buf.subarray(start, end))
        this.#endBatch(1)
        return
      case FrontendCode.Flush:
        this.#batchPush(code, buf.subarray(start, end))
        this.#endBatch(0)
        return
      case FrontendCode.CopyData:
      case FrontendCode.CopyDone:
      case FrontendCode.CopyFail:
        // COPY FROM STDIN: the running statement's connection takes the data as is
        this.#conn?.socket.write(buf.subarray(start, end))
        return
      case FrontendCode.FunctionCall:
        this.#endBatch(0)
        this.#push(newJob('function', buf.subarray(start, end), null, null, null, 1))
        return
      case FrontendCode.Terminate:
        this.close()
        return
      default:
        throw new ProtocolError(`unexpected message type '${String.fromCharCode(code)}'`)
    }
  }

  /** Decodes what routing and renaming need from one extended-protocol message, at the time it is sent. */
  #item(code: number, whole: Buffer): BatchItem {
    const body = whole.subarray(HEADER_LENGTH)
    switch (code) {
      case FrontendCode.Parse: {
        const m = decodeParse(body)
        if (m.name === '') {
          this.#lastUnnamedParse = whole
          this.#lastUnnamedText = m.query
          return { code, whole, stmt: null, unnamed: whole, statementTarget: true, text: m.query }
        }
        const stmt: Statement = {
          text: m.query,
          clientName: m.name,
          key: serverNameOf(whole),
          parse: Buffer.from(whole),
          keyed: null,
        }
        this.#statements.set(m.name, stmt)
        return { code, whole, stmt, unnamed: null, statementTarget: true, text: m.query }
      }
      case FrontendCode.Bind: {
        const name = decodeBind(body).statement
        return this.#useItem(code, whole, name, true)
      }
      case FrontendCode.Describe: {
        const t = decodeDescribe(body)
        return this.#useItem(code, whole, t.name, t.kind === 'S')
      }
      case FrontendCode.Close: {
        const t = decodeClose(body)
        if (t.kind === 'S') {
          if (t.name === '') {
            this.#lastUnnamedParse = null
            this.#lastUnnamedText = null
          } else this.#statements.delete(t.name)
        }
        return { code, whole, stmt: null, unnamed: null, statementTarget: t.kind === 'S', text: null }
      }
      default:
        return { code, whole, stmt: null, unnamed: null, statementTarget: false, text: null }
    }
  }

  #useItem(code: number, whole: Buffer, name: string, statementTarget: boolean): BatchItem {
    if (!statementTarget) return { code, whole, stmt: null, unnamed: null, statementTarget, text: null }
    if (name === '') {
      return {
        code,
        whole,
        stmt: null,
        unnamed: this.#lastUnnamedParse,
        statementTarget,
        text: this.#lastUnnamedText,
      }
    }
    const stmt = this.#statements.get(name) ?? null
    return { code, whole, stmt, unnamed: null, statementTarget, text: stmt?.text ?? null }
  }

  #batchPush(code: number, whole: Buffer): void {
    const item = this.#item(code, whole)
    if (this.#batch === null) this.#batch = [item]
    else this.#batch.push(item)
  }

  #endBatch(syncs: number): void {
    const items = this.#batch
    if (!items) return
    this.#batch = null
    // the statements it is about; the common batch has one (P/B/D/E/S, B/E/S): no allocation then
    let sql: string | null = null
    let texts: string[] | null = null
    for (const item of items) {
      const text = item.text
      if (text === null || text === sql) continue
      if (sql === null) sql = text
      else if (texts === null) texts = [sql, text]
      else if (!texts.includes(text)) texts.push(text)
    }
    this.#push(newJob('extended', null, items, sql, texts, syncs))
  }

  #push(job: Job): void {
    this.#queue.push(job)
    if (this.#queue.length > MAX_QUEUED_JOBS && !this.#readPaused) {
      this.#readPaused = true
      this.#socket.pause()
    }
    if (this.#running === null && !this.#hidden) this.#next()
  }

  // ---- dispatch ----------------------------------------------------------------------------------

  #next(): void {
    while (this.#phase === 'ready' && this.#running === null && !this.#hidden) {
      if (this.#draining && this.#conn === null) {
        this.#terminate('57P01', 'freshet: terminating connection because the proxy is shutting down')
        return
      }
      const job = this.#queue.shift()
      if (!job) break
      if (this.#readPaused && this.#queue.length < MAX_QUEUED_JOBS / 2) {
        this.#readPaused = false
        this.#socket.resume()
      }
      this.#running = job
      this.#dispatch(job)
    }
  }

  #dispatch(job: Job): void {
    if (this.#skipUntilSync) {
      // an error ended this extended batch early: discard until Sync, then say ready
      if (job.syncs > 0) {
        this.#skipUntilSync = false
        this.#socket.write(readyForQuery(this.#txStatus))
      }
      this.#running = null
      return
    }
    const engine = this.#rt.engine
    let c = job.sql === null ? null : engine.classify(job.sql)
    // a batch of several statements: the first that needs the primary routes it, else all the reads do
    let reads: Classification[] | null = null
    if (job.texts !== null) {
      reads = []
      for (const text of job.texts) {
        const s = engine.classify(text)
        if (s.requiresPrimary) {
          job.sql = text
          c = s
          reads = null
          break
        }
        reads.push(s)
      }
    }
    job.classification = c
    if (job.kind === 'simple' && c !== null) {
      const inTransaction = this.#txStatus !== 'I'
      const tag = this.state.consumeSettings(c, inTransaction)
      if (tag !== null) {
        const done = Buffer.concat([commandComplete(tag), readyForQuery(this.#txStatus)])
        this.#socket.write(
          localOutsideTransaction(c, inTransaction) ? Buffer.concat([SET_LOCAL_WARNING, done]) : done,
        )
        this.#running = null
        return
      }
    } else if (job.kind === 'extended' && c?.settings !== undefined && this.#answerSettingsBatch(job, c)) {
      this.#running = null
      this.#next()
      return
    }
    const conn = this.#conn
    if (conn !== null) {
      // held (transaction, session state, open batch): still decided, so logs and metrics see it
      if (c !== null)
        job.span = startStatementSpan(engine.decide(c, this.state.view(), this.state.context()), c)
      this.#send(job, conn)
      return
    }
    if (c === null) {
      this.#acquire(job, engine.tracker.primary)
      return
    }
    if (reads !== null) {
      this.#routeReads(job, reads)
      return
    }
    const context = this.state.context()
    if (context.minLsn !== undefined && this.#rt.config().consistency.max_wait_for_sync_ms > 0) {
      engine.routeAwait(job.sql!, this.state.view(), context).then(
        ({ decision }) => this.#routed(job, decision),
        (err: unknown) => this.#failJob(job, err),
      )
      return
    }
    this.#routed(job, engine.decide(c, this.state.view(), context))
  }

  /**
   * `SET freshet.freshness = ...` over the extended protocol (postgres.js, JDBC and others send every
   * statement that way): answered here like the simple-protocol form, never sent to the server. Only a
   * batch about that one statement qualifies (Parse, Bind, Describe, Execute of the portal it binds,
   * Sync, Flush); anything else in it and the batch goes to the server as it is.
   */
  #answerSettingsBatch(job: Job, c: Classification): boolean {
    const items = job.items!
    let bound = false
    for (const item of items) {
      switch (item.code) {
        case FrontendCode.Parse:
        case FrontendCode.Bind:
          if (item.text !== job.sql) return false
          if (item.code === FrontendCode.Bind) bound = true
          break
        case FrontendCode.Describe:
          if (item.statementTarget ? item.text !== job.sql : !bound) return false
          break
        case FrontendCode.Execute:
          if (!bound) return false
          break
        case FrontendCode.Sync:
        case FrontendCode.Flush:
          break
        default:
          return false
      }
    }
    if (!onlyFreshetSettings(c)) return false
    const out: Buffer[] = []
    for (const item of items) {
      switch (item.code) {
        case FrontendCode.Parse:
          out.push(PARSE_COMPLETE)
          break
        case FrontendCode.Bind:
          out.push(BIND_COMPLETE)
          break
        case FrontendCode.Describe:
          if (item.statementTarget) out.push(NO_PARAMETERS)
          out.push(NO_DATA)
          break
        case FrontendCode.Execute: {
          const inTransaction = this.#txStatus !== 'I'
          if (localOutsideTransaction(c, inTransaction)) out.push(SET_LOCAL_WARNING)
          out.push(commandComplete(this.state.consumeSettings(c, inTransaction)!))
          break
        }
        case FrontendCode.Sync:
          out.push(readyForQuery(this.#txStatus))
          break
      }
    }
    this.#socket.write(Buffer.concat(out))
    return true
  }

  /**
   * A batch of several reads (none needs the primary by its class): routed by the strictest. Each
   * distinct statement is decided; a decision for the primary wins (an unannotated read under
   * `routing.unannotated: primary`, a strict tier, a volatile function, a token no replica has...),
   * then an error decision (that statement could not run alone either), else the read whose tier has
   * the smallest `max_lag_ms`, made to honour the latest MIN_LSN of the batch. Waits for a replica to
   * replay the session's token as a single read does.
   */
  #routeReads(job: Job, reads: readonly Classification[]): void {
    const engine = this.#rt.engine
    const started = process.hrtime.bigint()
    const picked = this.#strictest(reads, started)
    const config = this.#rt.config()
    const maxWait = config.consistency.max_wait_for_sync_ms
    const lsn = picked.decision.minLsn
    if (
      picked.decision.reason === 'read_your_writes' &&
      lsn !== null &&
      this.state.context().minLsn !== undefined &&
      maxWait > 0 &&
      !config.routing.shadow
    ) {
      engine.waitForReplay(lsn, maxWait).then(
        (reached) => {
          if (this.#phase === 'closed') return
          const final = reached ? this.#strictest(reads, started) : picked
          job.classification = final.classification
          engine.emit('decision', final.decision, final.classification)
          this.#routed(job, final.decision)
        },
        (err: unknown) => this.#failJob(job, err),
      )
      return
    }
    job.classification = picked.classification
    engine.emit('decision', picked.decision, picked.classification)
    this.#routed(job, picked.decision)
  }

  /** The decision for a batch of reads (see #routeReads), and the classification it was made from. */
  #strictest(
    reads: readonly Classification[],
    started: bigint,
  ): { classification: Classification; decision: Decision } {
    const engine = this.#rt.engine
    const view = this.state.view()
    const context = this.state.context()
    const tiers = this.#rt.config().routing.tiers
    const primary = engine.tracker.primary
    let best: { classification: Classification; decision: Decision } | null = null
    let bestBound = 0
    let failed: { classification: Classification; decision: Decision } | null = null
    let latest: bigint | null = null
    let latestText: string | null = null
    // candidates are compared on dry runs (no round-robin step, fallback token or breaker trial);
    // only the one chosen is decided for real
    const real = (c: Classification) => ({
      classification: c,
      decision: engine.decide(c, view, context, started, false),
    })
    for (const c of reads) {
      const d = engine.decide(c, view, context, started, false, true)
      if (d.target === primary) return real(c)
      if (d.target === null) {
        failed ??= { classification: c, decision: d }
        continue
      }
      // ROUTE_TO: replica / a route_replica rule: any replica, the loosest bound
      const bound = d.tier === null ? Number.POSITIVE_INFINITY : (tiers[d.tier]?.max_lag_ms ?? 0)
      if (best === null || bound < bestBound) {
        best = { classification: c, decision: d }
        bestBound = bound
      }
      const lsn = d.minLsn === null ? null : parseLsn(d.minLsn)
      if (lsn !== null && (latest === null || lsn > latest)) {
        latest = lsn
        latestText = d.minLsn
      }
    }
    if (failed !== null || best === null) return real(failed!.classification)
    if (latest === null || (best.decision.minLsn !== null && parseLsn(best.decision.minLsn) === latest))
      return real(best.classification)
    // the strictest read, decided again with the batch's latest token as its MIN_LSN
    const c = best.classification
    const classification: Classification = Object.freeze({
      ...c,
      hints: Object.freeze({ ...c.hints, minLsn: latestText! }),
    })
    return { classification, decision: engine.decide(classification, view, context, started, false) }
  }

  #routed(job: Job, decision: Decision): void {
    if (this.#phase === 'closed') return
    job.span = startStatementSpan(decision, job.classification!)
    const err = decisionError(decision)
    if (err) {
      this.#failJob(job, err)
      return
    }
    this.#acquire(job, decision.target!, decision.tier)
  }

  /** A server connection on `node` for the job; `tier` counts against its `pools.tier_budgets` share. */
  #acquire(job: Job, node: string, tier: string | null = null): void {
    const pool = this.#rt.pool
    const idle = pool.tryAcquire(node, this.identity, tier)
    if (idle) {
      this.#use(job, idle)
      return
    }
    pool.acquire(node, this.identity, tier).then(
      (conn) => {
        if (this.#phase === 'closed') pool.release(conn)
        else this.#use(job, conn)
      },
      (err: unknown) => {
        if (this.#phase === 'closed') return
        if (err instanceof ServerStartupError) {
          this.#flushRun()
          this.#socket.write(err.raw)
          job.syncs = 0
          this.#failJob(job, null)
          return
        }
        this.#rt.observer?.backendError(node)
        if (this.#retryElsewhere(job, node, err)) return
        this.#failJob(job, err)
      },
    )
  }

  #use(job: Job, conn: ServerConnection): void {
    this.#conn = conn
    conn.attach(this)
    const plan = planSettings(this.settings, conn)
    if (plan === null) {
      this.#send(job, conn)
      return
    }
    // Not pipelined with the job: if a setting fails, the job must not run without it.
    this.#applying = job
    this.#applyError = null
    this.#hide(false)
    conn.settings = plan.next
    conn.socket.write(plan.message)
  }

  /** The connection has this client's settings (or failed to take them): run the job, or fail it. */
  #applied(job: Job, conn: ServerConnection): void {
    const err = this.#applyError
    if (err === null) {
      this.#send(job, conn)
      return
    }
    this.#applyError = null
    conn.dirty = true // what it has set is unknown now
    this.#conn = null
    this.state.setPinned(null, false)
    this.#rt.pool.release(conn)
    const code = (err as { code?: string }).code ?? SQLSTATE.FRESHET_NODE_UNAVAILABLE
    this.#failJob(
      job,
      Object.assign(
        new Error(`freshet: could not apply this connection's startup settings: ${err.message}`),
        {
          sqlState: code,
        },
      ),
    )
  }

  /** An error freshet raises for a job: ErrorResponse, then ReadyForQuery (or skip to the batch's Sync). */
  #failJob(job: Job, err: unknown): void {
    if (this.#phase === 'closed') return
    endSpan(job, err ?? 'the server refused the login')
    if (err !== null) this.#socket.write(errorResponse(errorFields(err)))
    if (job.kind === 'extended' && job.syncs === 0) this.#skipUntilSync = true
    else this.#socket.write(readyForQuery(this.#txStatus))
    this.#running = null
    this.#next()
  }

  #send(job: Job, conn: ServerConnection): void {
    job.startedAt = performance.now()
    this.#rt.observer?.observeProxyRoutingLatency((job.startedAt - job.receivedAt) / 1000)
    if (job.whole !== null) {
      if (job.kind === 'simple') {
        conn.unnamedParse = null // a simple Query destroys the unnamed statement
        const prepare = job.classification?.prepare
        if (prepare !== undefined && conn.preparedKey(prepare.name) !== undefined) {
          // SQL PREPARE of a name that another client's protocol statement holds on this connection (one
          // namespace per server session): close that one first, its CloseComplete is ours
          conn.forgetPrepared(prepare.name)
          this.#out(closeMessage('S', prepare.name))
          this.#closeSwallow.push(SWALLOW_CLOSE)
          this.#out(job.whole)
          this.#flushOut(conn)
        } else if (this.#pipelinesLsn(job, conn)) {
          // the token fetch goes out with the write: no extra round trip before the next statement
          this.#lsnSent = true
          this.#out(job.whole)
          this.#out(CURRENT_LSN)
          this.#flushOut(conn)
        } else conn.socket.write(job.whole)
      } else conn.socket.write(job.whole)
    } else {
      for (const item of job.items!) this.#sendItem(item, conn)
      this.#flushOut(conn)
    }
    if (job.syncs === 0) {
      // a batch ended by Flush: the connection stays with us until a Sync comes back as ReadyForQuery
      endSpan(job, null)
      for (const s of this.#ownStatements(job)) this.#unsynced.push(s)
      this.#extendedOpen = true
      this.#running = null
      this.#next()
    }
  }

  /**
   * Whether this simple query ends a write on the primary (COMMIT of a transaction that wrote, or an
   * autocommit write), so the read-your-writes token can be fetched in the same write. Single
   * statements only, never COPY FROM: the server would take the fetch as part of the copy data.
   */
  #pipelinesLsn(job: Job, conn: ServerConnection): boolean {
    const c = job.classification
    if (c === null || c.statementCount !== 1 || !this.#rt.config().consistency.causal) return false
    if (conn.node !== this.#rt.engine.tracker.primary) return false
    if (c.transaction !== undefined) return c.transaction.action === 'commit' && this.#txWrote
    return this.#txStatus === 'I' && c.kind === 'write' && c.reason !== 'copy_from'
  }

  #sendItem(item: BatchItem, conn: ServerConnection): void {
    const stmt = item.stmt
    switch (item.code) {
      case FrontendCode.Parse:
        if (stmt !== null) {
          if (this.#nameOn(stmt, conn) !== null) {
            this.#out(EMPTY_PARSE)
            conn.unnamedParse = null
            this.#parseSlots.push(CLIENT_SLOT)
          } else this.#create(stmt, conn, false)
        } else {
          this.#out(item.whole)
          conn.unnamedParse = item.whole
          this.#parseSlots.push(CLIENT_SLOT)
        }
        return
      case FrontendCode.Bind:
      case FrontendCode.Describe:
        if (stmt !== null) {
          const name = this.#nameOn(stmt, conn) ?? this.#create(stmt, conn, true)
          // the common case: the server knows it under the client's name, the message goes out as is
          if (name === stmt.clientName) this.#out(item.whole)
          else if (item.code === FrontendCode.Bind) this.#out(renameBind(item.whole, name))
          else this.#out(renameDescribeOrClose(item.whole, name))
          return
        }
        if (item.statementTarget && item.unnamed !== null && conn.unnamedParse !== item.unnamed) {
          // the unnamed statement was parsed on another server connection: recreate it here
          this.#out(item.unnamed)
          conn.unnamedParse = item.unnamed
          this.#parseSlots.push(INJECTED_UNNAMED_SLOT)
        }
        this.#out(item.whole)
        return
      case FrontendCode.Close:
        if (item.statementTarget && item.whole.length > HEADER_LENGTH + 2) {
          // a named statement: only the client's mapping goes; the server keeps it for others
          this.#out(CLOSE_NOTHING)
        } else {
          if (item.statementTarget) conn.unnamedParse = null
          this.#out(item.whole)
        }
        this.#closeSwallow.push(CLIENT_CLOSE)
        return
      default:
        this.#out(item.whole)
    }
  }

  /**
   * Queues bytes for the server. A batch goes out as one write: pieces that lie next to each other in
   * memory (a client's B/E/S received in one chunk) extend one view, others are concatenated at the
   * end. One socket.write per batch instead of cork + a write per message + uncork (writev): each
   * write costs a pass through the stream machinery, more than copying a few hundred bytes.
   */
  #out(piece: Buffer): void {
    const run = this.#outRun
    if (run !== null && run.buffer === piece.buffer && run.byteOffset + run.length === piece.byteOffset) {
      this.#outRun = Buffer.from(run.buffer, run.byteOffset, run.length + piece.length)
      return
    }
    if (run !== null) this.#outParts.push(run)
    this.#outRun = piece
  }

  #flushOut(conn: ServerConnection): void {
    const run = this.#outRun
    if (run === null) return
    this.#outRun = null
    if (this.#outParts.length === 0) {
      conn.socket.write(run)
      return
    }
    this.#outParts.push(run)
    conn.socket.write(Buffer.concat(this.#outParts))
    this.#outParts.length = 0
  }

  /** The name `conn` has `stmt` under (the client's own, else its key), or null when it lacks it. */
  #nameOn(stmt: Statement, conn: ServerConnection): string | null {
    if (conn.preparedKey(stmt.clientName) === stmt.key) return stmt.clientName
    if (conn.preparedKey(stmt.key) === stmt.key) return stmt.key
    return null
  }

  /**
   * Prepares `stmt` on `conn`: under the client's name when the server has nothing by that name (and
   * the name cannot be mistaken for a key), else under its key. `swallow`: freshet's own Parse, whose
   * ParseComplete the client must not see. Returns the name used.
   */
  #create(stmt: Statement, conn: ServerConnection, swallow: boolean): string {
    const own = conn.preparedKey(stmt.clientName) === undefined && !KEY_NAME.test(stmt.clientName)
    const name = own ? stmt.clientName : stmt.key
    this.#evict(conn.addPrepared(name, stmt.key))
    if (own) this.#out(stmt.parse)
    else {
      stmt.keyed ??= renameParse(stmt.parse, stmt.key)
      this.#out(stmt.keyed)
    }
    this.#parseSlots.push({ swallow, name })
    return name
  }

  #evict(evicted: Evicted[] | null): void {
    if (evicted === null) return
    for (const e of evicted) {
      this.#out(e.close)
      this.#closeSwallow.push({ swallow: true, evicted: e })
    }
  }

  // ---- server side -------------------------------------------------------------------------------

  readonly onServerFrame: RawFrameHandler = (code, buf, start, end) => {
    switch (code) {
      case BackendCode.ReadyForQuery: {
        if (this.#hidden) {
          this.#hiddenDone()
          return
        }
        const job = this.#running
        if (job !== null && job.conflict !== null && buf[start + HEADER_LENGTH] === STATUS_IDLE) {
          this.#runBuf = null
          this.#moveAfterConflict(job, this.#conn!)
          return
        }
        this.#append(buf, start, end)
        this.#flushRun()
        this.#ready(buf[start + HEADER_LENGTH]!)
        return
      }
      case BackendCode.ParseComplete: {
        const slot = this.#parseSlots.shift()
        if (slot?.swallow) return
        break
      }
      case BackendCode.CloseComplete:
        if (this.#closeSwallow.shift()?.swallow === true) return
        break
      case BackendCode.ErrorResponse: {
        if (this.#applying !== null) {
          this.#applyError ??= serverError(buf.subarray(start + HEADER_LENGTH, end))
          return
        }
        const job = this.#running
        if (job === null) {
          if (!this.#hidden) this.#unsyncedError = true
          break
        }
        const conn = this.#conn
        if (!job.answered && conn !== null && conn.node !== this.#rt.engine.tracker.primary) {
          const fields = errorFieldsOf(buf.subarray(start + HEADER_LENGTH, end))
          if (fields !== null && (fields.severity === 'FATAL' || fields.severity === 'PANIC')) {
            // a replica going away (shutdown, terminate) says FATAL before it closes: held back, so
            // that onServerLost can still move the read to the primary (or report the loss); what came
            // before it in this read (a RowDescription) goes too
            this.#runBuf = null
            return
          }
          if (
            fields !== null &&
            isRecoveryConflict(fields) &&
            job.syncs === 1 &&
            this.#canRetry(job, conn.node)
          ) {
            // the replica cancelled the read to replay WAL: held back, and the read moves at ReadyForQuery
            this.#runBuf = null
            job.conflict = fields.message
            return
          }
        }
        job.failed = true
        if (job.span?.isRecording()) failSpan(job.span, serverError(buf.subarray(start + HEADER_LENGTH, end)))
        break
      }
      case BackendCode.NotificationResponse:
        // asynchronous, and the client's (only a connection pinned by its LISTEN gets one): forwarded
        // even in the middle of freshet's own hidden query, which PostgreSQL may answer after it
        this.#append(buf, start, end)
        return
      case BackendCode.DataRow:
        if (this.#hidden) {
          // int16 column count, int32 length, the text
          const length = buf.readInt32BE(start + HEADER_LENGTH + 2)
          if (length > 0) {
            const from = start + HEADER_LENGTH + 6
            this.#hiddenLsn = buf.toString('latin1', from, from + length)
          }
        }
        break
    }
    if (this.#hidden) return
    this.#append(buf, start, end)
  }

  onServerChunkEnd(): void {
    this.#flushRun()
  }

  #append(buf: Buffer, start: number, end: number): void {
    if (this.#runBuf === buf && this.#runEnd === start) {
      this.#runEnd = end
      return
    }
    this.#flushRun()
    this.#runBuf = buf
    this.#runStart = start
    this.#runEnd = end
  }

  #flushRun(): void {
    const buf = this.#runBuf
    if (buf === null) return
    this.#runBuf = null
    if (this.#phase === 'closed') return
    if (this.#running !== null) this.#running.answered = true
    // the server connection reads into a reused buffer and a write may be queued: send a copy
    const out = Buffer.allocUnsafe(this.#runEnd - this.#runStart)
    buf.copy(out, 0, this.#runStart, this.#runEnd)
    const ok = this.#socket.write(out)
    const conn = this.#conn
    if (!ok && conn !== null && !conn.socket.isPaused()) {
      // the client reads slower than the server sends: stop reading the server until it catches up
      conn.socket.pause()
      this.#socket.once('drain', () => conn.socket.resume())
    }
  }

  #ready(status: number): void {
    const job = this.#running
    const conn = this.#conn!
    const before = this.#txStatus
    this.#txStatus = status === STATUS_IDLE ? 'I' : status === STATUS_IN_TX ? 'T' : 'E'
    this.#extendedOpen = false
    if (job === null) {
      this.#settle()
      return
    }
    if (--job.syncs > 0) return
    endSpan(job, null) // a server error already marked it failed
    const engine = this.#rt.engine
    engine.tracker.observeLatency(conn.node, performance.now() - job.startedAt)
    const c = job.classification
    if (c !== null) {
      if (
        c.requiresPrimary &&
        (c.kind === 'write' || c.kind === 'unknown') &&
        conn.node === engine.tracker.primary
      ) {
        this.#txWrote = true
      }
    } else if (job.kind === 'function' && conn.node === engine.tracker.primary) this.#txWrote = true
    let statements = this.#ownStatements(job)
    if (this.#unsynced.length > 0) {
      statements = [...this.#unsynced, ...statements]
      this.#unsynced.length = 0
    }
    for (const s of statements) {
      if (s.pin !== undefined || s.unpin !== undefined) {
        // session state, or a DISCARD that dropped freshet's statements: never reuse this connection
        conn.dirty = true
        break
      }
    }
    const failed = job.failed || this.#unsyncedError
    this.#unsyncedError = false
    this.state.applyPins(statements, { before, after: this.#txStatus, failed })
    this.#one.length = 0
    for (const slot of this.#parseSlots) if (slot.name !== null) conn.forgetPrepared(slot.name)
    this.#parseSlots.length = 0
    // Closes that never completed were skipped after an error: their statements are still there
    for (const slot of this.#closeSwallow)
      if (slot.evicted !== null) conn.restorePrepared(slot.evicted.name, slot.evicted.key)
    this.#closeSwallow.length = 0
    if (job.failed) conn.unnamedParse = null
    this.#running = null
    const lsnSent = this.#lsnSent
    this.#lsnSent = false
    if (this.#txStatus === 'I' && this.#txWrote) {
      this.#txWrote = false
      if (this.#rt.config().consistency.causal) {
        this.#hide(true)
        if (!lsnSent) conn.socket.write(CURRENT_LSN)
        return
      }
      this.state.recordWrite(null)
    }
    if (lsnSent) {
      // a pipelined fetch whose write did not end as expected: its answers are still to swallow
      this.#hide(false)
      return
    }
    this.#settle()
  }

  /**
   * The statements a job ran, in order, for pins and transactions: its classification; for a
   * multi-statement string that pins or releases anything, one per statement (the string's own
   * classification keeps only its first pin and its last release); for a batch of several statements,
   * one per Bind. The one-statement list is reused: valid until the next call.
   */
  #ownStatements(job: Job): readonly Classification[] {
    const c = job.classification
    if (c === null) return NO_STATEMENTS
    if (job.kind === 'simple' && c.statementCount > 1 && (c.pin !== undefined || c.unpin !== undefined)) {
      const engine = this.#rt.engine
      const split = splitStatements(job.sql!, (sql) => engine.classify(sql))
      if (split !== null) return split
    } else if (job.texts !== null) {
      const engine = this.#rt.engine
      const out: Classification[] = []
      for (const item of job.items!) {
        if (item.code === FrontendCode.Bind && item.text !== null) out.push(engine.classify(item.text))
      }
      return out
    }
    this.#one[0] = c
    return this.#one
  }

  /** Swallows the server's messages up to the next ReadyForQuery (the token fetch). */
  #hide(record: boolean): void {
    this.#hidden = true
    this.#hiddenLsn = null
    this.#hiddenRecord = record
  }

  #hiddenDone(): void {
    this.#hidden = false
    const applying = this.#applying
    if (applying !== null) {
      this.#applying = null
      this.#applied(applying, this.#conn!)
      return
    }
    if (this.#hiddenRecord) this.state.recordWrite(this.#hiddenLsn)
    this.#settle()
  }

  /** After a job: keep the connection (transaction, session state, session mode) or give it back. */
  #settle(): void {
    const conn = this.#conn
    if (conn !== null) {
      const keep =
        this.#txStatus !== 'I' ||
        this.#extendedOpen ||
        this.state.sessionPin !== null ||
        this.#rt.config().proxy.pool_mode === 'session'
      if (keep && !this.#draining) this.state.setPinned(conn.node, this.#txStatus !== 'I')
      else if (keep && this.#draining && this.#txStatus !== 'I') this.state.setPinned(conn.node, true)
      else {
        this.#conn = null
        this.state.setPinned(null, false)
        this.#rt.pool.release(conn)
      }
    }
    this.#next()
  }

  onServerLost(conn: ServerConnection, err: Error): void {
    if (this.#conn !== conn || this.#phase === 'closed') return
    if (this.#running === null || this.#running.answered) this.#flushRun()
    else this.#runBuf = null // nothing of it reached the client: it may still move
    this.#conn = null
    this.#rt.pool.release(conn)
    this.state.setPinned(null, false)
    this.#rt.observer?.backendError(conn.node)
    const message = `freshet: lost the connection to ${conn.node}: ${err.message}`
    if (this.#running !== null && this.#txStatus === 'I' && this.state.sessionPin === null) {
      this.#resetServerState()
      if (this.#retryElsewhere(this.#running, conn.node, err)) return
    }
    this.#rt.log('warn', message, { node: conn.node })
    if (this.#txStatus !== 'I' || this.state.sessionPin !== null) {
      // the transaction or session state is gone with the server: the client must reconnect
      this.#terminate(SQLSTATE.FRESHET_NODE_UNAVAILABLE, message)
      return
    }
    this.#resetServerState()
    const job = this.#running
    if (job !== null) {
      endSpan(job, new NodeUnavailableError('FRESHET_NODE_UNAVAILABLE', message))
      this.#socket.write(
        errorResponse({ severity: 'ERROR', code: SQLSTATE.FRESHET_NODE_UNAVAILABLE, message }),
      )
      if (job.syncs > 0) this.#socket.write(readyForQuery('I'))
      else this.#skipUntilSync = true
      this.#running = null
    }
    this.#next()
  }

  /** Forgets what was in flight on a server connection that is gone. */
  #resetServerState(): void {
    this.#hidden = false
    this.#applying = null
    this.#applyError = null
    this.#lsnSent = false
    this.#extendedOpen = false
    this.#parseSlots.length = 0
    this.#closeSwallow.length = 0
    this.#unsynced.length = 0
    this.#unsyncedError = false
  }

  /**
   * A read whose replica failed before any of its answer reached the client runs again on the primary,
   * once, like the library's retry: outside a transaction and session state only, never a write, never
   * a batch ended by Flush. Returns false when it cannot move.
   */
  #retryElsewhere(job: Job, failed: string, err: unknown): boolean {
    if (!this.#canRetry(job, failed)) return false
    const primary = this.#rt.engine.tracker.primary
    job.retried = true
    this.#rt.observer?.backendFailover()
    this.#rt.log(
      'warn',
      `retrying a read on ${primary} after ${failed} failed: ${(err as Error)?.message ?? err}`,
      {
        node: failed,
      },
    )
    job.span?.addEvent('freshet.retry', { 'freshet.failed_target': failed, 'freshet.target': primary })
    this.#acquire(job, primary)
    return true
  }

  /** Whether `job` may still run again on the primary after `failed` let it down. */
  #canRetry(job: Job, failed: string): boolean {
    const c = job.classification
    return !(
      failed === this.#rt.engine.tracker.primary ||
      job.retried ||
      job.answered ||
      job.syncs === 0 ||
      c === null ||
      c.kind !== 'read' ||
      c.requiresPrimary ||
      this.#txStatus !== 'I' ||
      this.state.inTransaction ||
      this.state.sessionPin !== null ||
      this.#phase !== 'ready'
    )
  }

  /**
   * After a replica cancelled a read for a recovery conflict (its error and ReadyForQuery held back):
   * the connection is clean and goes back, and the read runs again on the primary.
   */
  #moveAfterConflict(job: Job, conn: ServerConnection): void {
    const message = job.conflict!
    job.conflict = null
    for (const slot of this.#parseSlots) if (slot.name !== null) conn.forgetPrepared(slot.name)
    conn.unnamedParse = null
    this.#resetServerState()
    this.#conn = null
    this.state.setPinned(null, false)
    this.#rt.pool.release(conn)
    this.#retryElsewhere(job, conn.node, new Error(message))
  }

  // ---- lifecycle ---------------------------------------------------------------------------------

  /** Graceful shutdown: finish the open transaction, then close. */
  drain(): void {
    this.#draining = true
    if (this.#phase !== 'ready') {
      this.close()
      return
    }
    if (this.#running === null && !this.#hidden && this.#conn === null) this.#next()
    else if (this.#running === null && !this.#hidden && this.#txStatus === 'I') this.#settle()
  }

  #terminate(code: string, message: string): void {
    if (this.#phase === 'closed') return
    this.#flushRun()
    this.#socket.end(errorResponse({ severity: 'FATAL', code, message }))
    this.close()
  }

  /** Closes the client; a held server connection goes back to the pool if clean, else is closed. */
  close(): void {
    if (this.#phase === 'closed' && this.#conn === null) {
      this.#socket.destroySoon()
      return
    }
    this.#phase = 'closed'
    this.#rt.unregister(this)
    if (this.#running !== null) endSpan(this.#running, 'the client connection closed')
    this.#queue.length = 0
    const conn = this.#conn
    this.#conn = null
    if (conn !== null) {
      const busy = this.#running !== null || this.#hidden || this.#extendedOpen
      if (busy || this.#txStatus !== 'I') conn.dirty = true
      // the client is gone: stop its statement now rather than let the server finish it for nobody
      // (the backend would hold its locks and a server slot beyond max_active until then)
      if (busy) this.#rt.cancelServer(conn)
      this.#rt.pool.release(conn)
    }
    this.#socket.destroySoon()
  }
}

/** Ends a job's span, failed with `err` unless it is null. */
function endSpan(job: Job, err: unknown): void {
  const span = job.span
  if (span === null) return
  job.span = null
  if (err !== null) failSpan(span, err)
  span.end()
}

/** A server's ErrorResponse as an Error with its SQLSTATE and message (not detail: it may hold data). */
function serverError(body: Buffer): Error {
  const fields = errorFieldsOf(body)
  if (fields === null) return new Error('the server sent a malformed ErrorResponse')
  return Object.assign(new Error(fields.message), { code: fields.code })
}

/** An ErrorResponse body's fields, or null when it is malformed. */
function errorFieldsOf(body: Buffer): ErrorFields | null {
  try {
    return decodeErrorFields(body)
  } catch {
    return null
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
    })
    conn.socket.write(message)
  })
}
