// One raw protocol connection from freshet to a PostgreSQL node: startup, login, then framed passthrough.

import { connect, type Socket } from 'node:net'
import type { Budget } from '../backend/tier-budget.js'
import { FreshetError, NodeUnavailableError } from '../core/errors.js'
import {
  BackendCode,
  decodeBackendKeyData,
  decodeErrorFields,
  decodeParameterStatus,
  type ErrorFields,
  FrameReader,
  type RawFrameHandler,
  startupMessage,
  TERMINATE,
} from '../protocol/index.js'
import { ServerLogin } from './auth/server-login.js'
import type { ChunkOwner } from './client-output.js'
import { ServerStatementCache } from './prepared-statements.js'

// every message: 1 byte code, then int32 length that counts itself but not the code
const HEADER_LENGTH = 5
// The buffer each server socket reads into (libuv's default read size).
const READ_BUFFER_SIZE = 64 * 1024

/** Where a connected node is and whom to log in as. */
export interface ServerConnectionOptions {
  /** Node name (from config). */
  node: string
  host: string
  port: number
  user: string
  database: string
  password?: string
  connectTimeoutMs: number
  /** Server-side prepared statements kept per connection before the least recently used is closed. */
  maxPrepared: number
  /** statement_timeout (ms) sent at login, for replica connections (`pools.replica_statement_timeout_ms`). */
  statementTimeoutMs?: number
  /** application_name sent at login: only for freshet's own connections (clients' see PostgreSQL's default). */
  applicationName?: string
}

/** Receives what the server sends while a client holds the connection. */
export interface ServerSink {
  /**
   * One message: `buffer[start, end)`, valid only until `onServerChunkEnd()` returns: the connection
   * reads into one reused buffer. Copy what must outlive the chunk, or call `keepChunk()` (a socket
   * write queued a view of it).
   */
  onServerFrame: RawFrameHandler
  /** End of one socket chunk: flush what was gathered. */
  onServerChunkEnd(): void
  /** The connection failed or closed under the client. */
  onServerLost(conn: ServerConnection, err: Error): void
  /**
   * Reading or handling a server message threw (a malformed message, or a bug in freshet): the
   * connection is already closed, never to be reused; what the client expected will not come.
   */
  onServerMessageFailed(conn: ServerConnection, err: Error): void
}

/**
 * PostgreSQL refused the login (unknown database, role, password): `raw` is its ErrorResponse, forwarded
 * to the client untouched so it sees PostgreSQL's own text.
 */
export class ServerStartupError extends FreshetError {
  readonly raw: Buffer
  readonly fields: ErrorFields
  constructor(raw: Buffer, fields: ErrorFields) {
    super('FRESHET_NODE_UNAVAILABLE', `server refused the connection: ${fields.message}`)
    this.raw = raw
    this.fields = fields
  }
}

/**
 * A logged-in server connection. A client session attaches itself as the sink while it holds the
 * connection; the pool keeps it otherwise. Tracks the server's parameters, its cancel key and the
 * prepared statements freshet created on it (`statements`, an LRU of server-side names). Only this
 * class writes its socket: a client session sends with write(), or queue() then flush() for a batch.
 *
 * @example
 * const conn = await ServerConnection.connect({ node: 'primary', host, port, user: 'app', database: 'db', password, connectTimeoutMs: 1000, maxPrepared: 1000 })
 * conn.attach(sink); conn.write(query('SELECT 1'))
 */
export class ServerConnection implements ChunkOwner {
  readonly node: string
  readonly key: string
  readonly host: string
  readonly port: number
  readonly #socket: Socket
  readonly createdAt = Date.now()
  /** Logged in with the replica statement_timeout: it must not serve the node once it is the primary. */
  readonly replicaTimeout: boolean
  readonly parameters = new Map<string, string>()
  pid = 0
  secretKey: Buffer = Buffer.alloc(4)
  /** Server-side prepared statements and the unnamed statement (changed only by ClientStatements). */
  readonly statements: ServerStatementCache
  /** Settings freshet applied for the clients it served (see startup-settings.ts), by lower-case name. */
  settings = new Map<string, string>()
  /** The tier budget slot this connection holds while lent (`pools.tier_budgets`), or null. */
  budget: Budget | null = null
  /** Holds session state or unknown state: close instead of reusing. */
  dirty = false
  lastUsed = Date.now()
  #closed = false
  #sink: ServerSink | null = null
  // what goes to the server for the batch being sent (see queue())
  #outRun: Buffer | null = null
  readonly #outParts: Buffer[] = []
  readonly #reader = new FrameReader({ transientChunks: true })
  /** The handler for the current phase: login, then the attached sink or the idle watcher. */
  #onChunk: (chunk: Buffer) => void = () => {}
  /** A view of the current chunk outlives it: the next read goes to a new buffer. */
  #chunkKept = false
  readonly #onIdleFrame: RawFrameHandler = (code) => {
    // an idle connection should be silent; an error (admin shutdown) means it is gone
    if (code === BackendCode.ErrorResponse) this.destroy()
  }
  onClose: ((conn: ServerConnection) => void) | null = null

  private constructor(options: ServerConnectionOptions, socket: Socket) {
    this.node = options.node
    this.key = `${options.user}\0${options.database}`
    this.host = options.host
    this.port = options.port
    this.#socket = socket
    this.statements = new ServerStatementCache(options.maxPrepared)
    this.replicaTimeout = (options.statementTimeoutMs ?? 0) > 0
  }

  get closed(): boolean {
    return this.#closed
  }

  /** Opens a connection and logs in; resolves once the server says ReadyForQuery. */
  static connect(options: ServerConnectionOptions): Promise<ServerConnection> {
    return new Promise((resolve, reject) => {
      // Hand-written read path: with `onread` every read lands in one buffer owned by this connection,
      // and the callback gets it directly. The default path allocates a 64 KiB buffer per read and
      // passes each through Readable.push and a 'data' event: a measurable share of the proxy's CPU.
      // A client write that queues a view of the buffer (keepChunk) makes the next read go to a new one.
      let conn: ServerConnection | null = null
      let readBuffer: Buffer = Buffer.allocUnsafeSlow(READ_BUFFER_SIZE)
      const socket = connect({
        host: options.host,
        port: options.port,
        onread: {
          // called for the first read and after each one: the buffer the next read lands in
          buffer: () => {
            if (conn === null) return readBuffer
            readBuffer = conn.#nextReadBuffer(readBuffer)
            return readBuffer
          },
          callback: (n: number, buf: Uint8Array): boolean => {
            conn!.#onChunk((buf as Buffer).subarray(0, n))
            return true // false would pause the socket
          },
        },
      })
      socket.setNoDelay(true)
      conn = new ServerConnection(options, socket)
      const c = conn
      const login = new ServerLogin({
        user: options.user,
        ...(options.password !== undefined ? { password: options.password } : {}),
      })
      let settled = false
      const fail = (err: Error) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        c.#closed = true
        socket.destroy()
        reject(err)
      }
      const timer = setTimeout(
        () =>
          fail(
            new NodeUnavailableError(
              'FRESHET_NODE_UNAVAILABLE',
              `connecting to ${options.node} timed out after ${options.connectTimeoutMs} ms`,
            ),
          ),
        options.connectTimeoutMs,
      )
      const onStartupFrame: RawFrameHandler = (code, buf, start, end) => {
        const body = buf.subarray(start + HEADER_LENGTH, end)
        switch (code) {
          case BackendCode.Authentication: {
            const step = login.receive(body)
            for (const m of step.send ?? []) socket.write(m)
            if (step.done && !step.ok) {
              fail(new FreshetError('FRESHET_AUTH', step.error ?? 'freshet: server login failed'))
            }
            return
          }
          case BackendCode.ParameterStatus: {
            const p = decodeParameterStatus(body)
            c.parameters.set(p.name, p.value)
            return
          }
          case BackendCode.BackendKeyData: {
            const k = decodeBackendKeyData(body)
            c.pid = k.pid
            c.secretKey = Buffer.from(k.secretKey)
            return
          }
          case BackendCode.ErrorResponse:
            fail(new ServerStartupError(Buffer.from(buf.subarray(start, end)), decodeErrorFields(body)))
            return
          case BackendCode.ReadyForQuery:
            if (settled) return
            settled = true
            clearTimeout(timer)
            c.#onChunk = (chunk) => c.#onData(chunk)
            resolve(c)
            return
          default:
            return // NoticeResponse, NegotiateProtocolVersion: nothing to do
        }
      }
      const onStartupData = (chunk: Buffer) => {
        try {
          c.#reader.feedRaw(chunk, onStartupFrame)
        } catch (err) {
          fail(err as Error)
        }
      }
      socket.on('connect', () => {
        socket.write(
          startupMessage({
            user: options.user,
            database: options.database,
            // no application_name: a client that sets none must see PostgreSQL's default (''), as directly
            client_encoding: 'UTF8',
            ...(options.applicationName ? { application_name: options.applicationName } : {}),
            ...(options.statementTimeoutMs ? { statement_timeout: String(options.statementTimeoutMs) } : {}),
          }),
        )
      })
      c.#onChunk = onStartupData
      socket.on('error', (err) => {
        if (!settled) {
          fail(
            new NodeUnavailableError(
              'FRESHET_NODE_UNAVAILABLE',
              `cannot reach ${options.node}: ${err.message}`,
              {
                cause: err,
              },
            ),
          )
        } else c.#lost(err)
      })
      socket.on('close', () => {
        if (!settled) {
          fail(new NodeUnavailableError('FRESHET_NODE_UNAVAILABLE', `${options.node} closed the connection`))
        } else c.#lost(new Error(`connection to ${options.node} closed`))
      })
    })
  }

  #onData(chunk: Buffer): void {
    const sink = this.#sink
    try {
      if (sink) {
        this.#reader.feedRaw(chunk, sink.onServerFrame)
        sink.onServerChunkEnd()
      } else this.#reader.feedRaw(chunk, this.#onIdleFrame)
    } catch (err) {
      // the stream's state is unknown from here: close the connection (never back to the pool) and
      // let the client holding it end its session, rather than treat it as a plain lost connection
      this.dirty = true
      if (this.#closed) return
      this.#closed = true
      this.#sink = null
      this.onClose?.(this)
      this.#socket.destroy()
      sink?.onServerMessageFailed(this, err instanceof Error ? err : new Error(String(err)))
    }
  }

  #lost(err: Error): void {
    if (this.#closed) return
    this.#closed = true
    const sink = this.#sink
    this.#sink = null
    this.onClose?.(this)
    sink?.onServerLost(this, err)
  }

  /** A view of the chunk being handled was queued by a socket write: the next read takes a new buffer. */
  keepChunk(): void {
    this.#chunkKept = true
  }

  #nextReadBuffer(current: Buffer): Buffer {
    if (!this.#chunkKept) return current
    this.#chunkKept = false
    return Buffer.allocUnsafeSlow(READ_BUFFER_SIZE)
  }

  /** Hands the server's messages to `sink` until `detach()`. */
  attach(sink: ServerSink): void {
    this.#sink = sink
  }

  detach(): void {
    this.#sink = null
    this.lastUsed = Date.now()
  }

  /** Sends bytes to the server now. */
  write(bytes: Buffer): void {
    this.#socket.write(bytes)
  }

  /**
   * Queues bytes for the server; flush() sends what is queued. A batch goes out as one write: pieces
   * that lie next to each other in memory (a client's B/E/S received in one chunk) extend one view,
   * others are concatenated at the end. One socket.write per batch instead of cork + a write per
   * message + uncork (writev): each write costs a pass through the stream machinery, more than
   * copying a few hundred bytes.
   */
  queue(piece: Buffer): void {
    const run = this.#outRun
    if (run !== null && run.buffer === piece.buffer && run.byteOffset + run.length === piece.byteOffset) {
      this.#outRun = Buffer.from(run.buffer, run.byteOffset, run.length + piece.length)
      return
    }
    if (run !== null) this.#outParts.push(run)
    this.#outRun = piece
  }

  /** Sends what queue() gathered, in one write. */
  flush(): void {
    const run = this.#outRun
    if (run === null) return
    this.#outRun = null
    if (this.#outParts.length === 0) {
      this.#socket.write(run)
      return
    }
    this.#outParts.push(run)
    this.#socket.write(Buffer.concat(this.#outParts))
    this.#outParts.length = 0
  }

  /**
   * The client reads slower than the server sends: stop reading the server until `client` drains
   * (no-op when already paused).
   */
  pauseUntilDrained(client: Socket): void {
    if (this.#socket.isPaused()) return
    this.#socket.pause()
    client.once('drain', () => this.#socket.resume())
  }

  /** Closes the connection (Terminate, then end). */
  destroy(): void {
    if (this.#closed) return
    this.#closed = true
    this.#sink = null
    this.onClose?.(this)
    if (!this.#socket.destroyed) this.#socket.end(TERMINATE)
    this.#socket.destroySoon()
  }
}
