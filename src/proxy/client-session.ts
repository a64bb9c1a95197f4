// One client of the proxy, the dispatch/ready/settle core: statements routed per transaction onto
// pooled server connections, original bytes forwarded both ways. Its concerns live beside it:
// client-startup.ts (startup, TLS, auth), extended-batch.ts (jobs and batch assembly),
// prepared-statements.ts (client names and the server connection's cache), batch-reads.ts (routing a
// batch of reads), client-output.ts (gathering the server's answers for the client).
// Longer than most files because it is one concept: the state machine of one client over the server
// connection it holds (queue, running job, held connection, transaction status, hidden token fetch);
// every method reads and moves the same few fields, and splitting them would spread one transition
// over several files.

import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { reportOutcome } from '../core/breaker/breaker-policy.js'
import type { Classification } from '../core/classify/classification.js'
import { isRecoveryConflict, NodeUnavailableError, SQLSTATE } from '../core/errors.js'
import type { Decision } from '../core/route/decision.js'
import { decisionError } from '../core/route/decision-error.js'
import {
  BackendCode,
  commandComplete,
  decodeStartupPacket,
  errorResponse,
  FrameReader,
  FrontendCode,
  ProtocolError,
  query as queryMessage,
  type RawFrameHandler,
  readyForQuery,
  STARTUP_FRAME,
  type TransactionStatus,
} from '../protocol/index.js'
import { localOutsideTransaction, mayRetryOnPrimary, SessionState } from '../session/session-state.js'
import { failSpan, startStatementSpan } from '../telemetry/statement-span.js'
import { errorFields, errorFieldsOf, serverError } from './client-errors.js'
import { ClientOutput } from './client-output.js'
import { ClientStartup, type SessionPhase } from './client-startup.js'
import { answerSettingsBatch, endSpan, type Job, JobAssembler, SET_LOCAL_WARNING } from './extended-batch.js'
import { classifyJob, decideJob, statementsOf } from './job-routing.js'
import { ClientStatements } from './prepared-statements.js'
import type { ProxyRuntime } from './proxy-runtime.js'
import type { ServerConnection, ServerSink } from './server-connection.js'
import { ServerStartupError } from './server-connection.js'
import type { LoginIdentity } from './server-pool.js'
import { planSettings } from './startup-settings.js'

// every message: 1 byte code, then int32 length that counts itself but not the code
const HEADER_LENGTH = 5
// ReadyForQuery status bytes
const STATUS_IDLE = 0x49 // I
const STATUS_IN_TX = 0x54 // T
// The read-your-writes token, fetched on the connection that committed (its answer is never forwarded).
const CURRENT_LSN = queryMessage('SELECT pg_current_wal_lsn()::text')
// Jobs a pipelining client may queue before we stop reading from it.
const MAX_QUEUED_JOBS = 256

/**
 * A client connection: startup (SSLRequest, GSSENCRequest, CancelRequest, StartupMessage), auth, then
 * statements. Each autocommit statement or transaction is decided by the engine and runs on a server
 * connection borrowed for it; transactions and session state hold the connection until they end.
 */
export class ClientSession implements ServerSink {
  #socket: Socket
  readonly #rt: ProxyRuntime
  readonly #reader = new FrameReader({ startup: true })
  #phase: SessionPhase = 'startup'
  /** A frame of the current chunk reached the handler: errors after that are about its content, not its framing. */
  #framed = false
  /** A FATAL of the server connection reached the client: when that connection goes, so does the client. */
  #serverFatal = false
  readonly #startup: ClientStartup
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

  readonly #statements = new ClientStatements()
  readonly #jobs = new JobAssembler(this.#statements)
  readonly #output = new ClientOutput()
  /** Statements of batches ended by Flush since the last Sync: their pins apply at its ReadyForQuery. */
  readonly #unsynced: Classification[] = []
  /** The server reported an error while no job of this client was running (after a Flush). */
  #unsyncedError = false
  /** A reused one-statement list for {@link SessionState.applyPins}. */
  readonly #one: Classification[] = []
  constructor(socket: Socket, runtime: ProxyRuntime) {
    this.#socket = socket
    this.#rt = runtime
    socket.setNoDelay(true)
    this.#listen(socket)
    this.#startup = new ClientStartup(runtime, {
      client: this,
      socket: () => this.#socket,
      phase: () => this.#phase,
      setPhase: (phase) => {
        this.#phase = phase
      },
      buffered: () => this.#reader.buffered,
      upgrade: (wrap) => this.#upgrade(wrap),
      handOff: () => this.#detach(),
      loggedIn: () => this.#next(),
    })
  }

  /** The client switches to TLS (see ClientStartup). */
  #upgrade(wrap: (raw: Socket) => TLSSocket): void {
    const secure = wrap(this.#detach())
    this.#socket = secure
    this.#listen(secure)
  }

  /** Stops listening on the client socket and returns it (TLS upgrade, admin console hand-off). */
  #detach(): Socket {
    const raw = this.#socket
    raw.removeListener('data', this.#onData)
    raw.removeAllListeners('error')
    raw.removeAllListeners('close')
    return raw
  }

  #listen(socket: Socket): void {
    socket.on('data', this.#onData)
    socket.on('error', () => this.close())
    socket.on('close', () => this.close())
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#framed = false
    try {
      this.#reader.feedRaw(chunk, this.#onClientFrame)
    } catch (err) {
      if (this.#phase === 'startup' && !this.#framed) this.#dropUnframed(err)
      else this.#fatal(err)
    }
  }

  /**
   * Bytes that are no startup packet at all (a bad length: Terminate before the StartupMessage, as
   * node-postgres' quick-disconnect test sends, or a port scanner): PostgreSQL logs "invalid length of
   * startup packet" and closes without a word, so do we.
   */
  #dropUnframed(err: unknown): void {
    this.#rt.log('info', 'closing client: invalid startup packet', { error: (err as Error)?.message })
    this.close()
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
    this.#framed = true
    if (code === STARTUP_FRAME) {
      this.#startup.packet(decodeStartupPacket(buf.subarray(start + 4, end)))
      return
    }
    if (this.#phase === 'auth') {
      if (code !== FrontendCode.Password)
        throw new ProtocolError(`expected a password message, got '${String.fromCharCode(code)}'`)
      this.#startup.password(buf.subarray(start + HEADER_LENGTH, end))
      return
    }
    if (this.#phase === 'startup') throw new ProtocolError('message before the startup packet')
    this.#message(code, buf, start, end)
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
    const whole = buf.subarray(start, end)
    if (this.#jobs.accept(code, whole, this.#push)) return
    switch (code) {
      case FrontendCode.CopyData:
      case FrontendCode.CopyDone:
      case FrontendCode.CopyFail:
        // COPY FROM STDIN: the running statement's connection takes the data as is
        this.#conn?.write(whole)
        return
      case FrontendCode.Terminate:
        this.close()
        return
      default:
        throw new ProtocolError(`unexpected message type '${String.fromCharCode(code)}'`)
    }
  }

  readonly #push = (job: Job): void => {
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
    const reads = classifyJob(engine, job)
    const c = job.classification
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
    } else if (job.kind === 'extended' && c?.settings !== undefined) {
      const answer = answerSettingsBatch(job, c, this.state, this.#txStatus)
      if (answer !== null) {
        this.#socket.write(answer)
        this.#running = null
        this.#next()
        return
      }
    }
    const conn = this.#conn
    if (conn !== null) {
      // held (transaction, session state, open batch): still decided, so logs and metrics see it
      if (c !== null)
        job.span = startStatementSpan(engine.decide(c, this.state.view(), this.state.context()).decision, c)
      this.#send(job, conn)
      return
    }
    if (c === null) {
      this.#acquire(job, engine.tracker.primary)
      return
    }
    const picked = decideJob(engine, this.#rt.config(), this.state, job, reads)
    if ('then' in picked) {
      picked.then(
        ({ classification, decision }) => {
          job.classification = classification
          this.#routed(job, decision)
        },
        (err: unknown) => this.#failJob(job, err),
      )
      return
    }
    job.classification = picked.classification
    this.#routed(job, picked.decision)
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
    conn.write(plan.message)
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
        // a simple Query destroys the unnamed statement; a SQL PREPARE may first close a name it needs
        if (this.#statements.beforeSimpleQuery(conn, job.classification?.prepare?.name)) {
          conn.queue(job.whole)
          conn.flush()
        } else if (this.#pipelinesLsn(job, conn)) {
          // the token fetch goes out with the write: no extra round trip before the next statement
          this.#lsnSent = true
          conn.queue(job.whole)
          conn.queue(CURRENT_LSN)
          conn.flush()
        } else conn.write(job.whole)
      } else conn.write(job.whole)
    } else {
      for (const item of job.items!) this.#statements.send(item, conn)
      conn.flush()
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
    // an autocommit write the parser understood (never COPY FROM: see above)
    if (c.transaction === undefined && (c.kind !== 'write' || c.reason === 'copy_from')) return false
    return this.state.endsWrite(c, this.#txStatus === 'I')
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
          this.#output.drop()
          this.#moveAfterConflict(job, this.#conn!)
          return
        }
        this.#append(buf, start, end)
        this.#flushRun()
        this.#ready(buf[start + HEADER_LENGTH]!)
        return
      }
      case BackendCode.ParseComplete: {
        if (this.#statements.parseComplete()) return
        break
      }
      case BackendCode.CloseComplete:
        if (this.#statements.closeComplete()) return
        break
      case BackendCode.ErrorResponse: {
        if (this.#applying !== null) {
          this.#applyError ??= serverError(buf.subarray(start + HEADER_LENGTH, end))
          return
        }
        const job = this.#running
        const fields = errorFieldsOf(buf.subarray(start + HEADER_LENGTH, end))
        const fatal = fields !== null && (fields.severity === 'FATAL' || fields.severity === 'PANIC')
        if (job === null) {
          if (!this.#hidden) {
            this.#unsyncedError = true
            // the server ends the session the client holds (pg_terminate_backend, idle_session_timeout)
            if (fatal) this.#serverFatal = true
          }
          break
        }
        const conn = this.#conn
        if (!job.answered && conn !== null && conn.node !== this.#rt.engine.tracker.primary) {
          if (fatal) {
            // a replica going away (shutdown, terminate) says FATAL before it closes: held back, so
            // that onServerLost can still move the read to the primary (or report the loss); what came
            // before it in this read (a RowDescription) goes too
            this.#output.drop()
            return
          }
          if (
            fields !== null &&
            isRecoveryConflict(fields) &&
            job.syncs === 1 &&
            this.#canRetry(job, conn.node)
          ) {
            // the replica cancelled the read to replay WAL: held back, and the read moves at ReadyForQuery
            this.#output.drop()
            job.conflict = fields.message
            return
          }
        }
        job.failed = true
        if (fatal && !this.#hidden) this.#serverFatal = true
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
    this.#output.append(buf, start, end, this.#flushRun)
  }

  readonly #flushRun = (): void => {
    const out = this.#output.take()
    if (out === null || this.#phase === 'closed') return
    if (this.#running !== null) this.#running.answered = true
    const ok = this.#socket.write(out)
    // the client reads slower than the server sends: stop reading the server until it catches up
    if (!ok) this.#conn?.pauseUntilDrained(this.#socket)
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
    reportOutcome(engine.tracker.breaker(conn.node), 'answered')
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
    const after = this.#txStatus
    this.state.applyPins(statements, { before, after, failed })
    const tokenDue = this.state.tokenDue(job.classification, {
      before,
      after,
      failed,
      onPrimary: conn.node === engine.tracker.primary,
      functionCall: job.kind === 'function',
    })
    this.#one.length = 0
    this.#statements.settle(conn.statements, job.failed)
    this.#running = null
    const lsnSent = this.#lsnSent
    this.#lsnSent = false
    if (tokenDue) {
      if (this.#rt.config().consistency.causal) {
        this.#hide(true)
        if (!lsnSent) conn.write(CURRENT_LSN)
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

  /** The statements a job ran, in order (see statementsOf); the one-statement list is reused. */
  #ownStatements(job: Job): readonly Classification[] {
    return statementsOf(this.#rt.engine, job, this.#one)
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
      const keep = this.state.keepsConnection(this.#txStatus, {
        batchOpen: this.#extendedOpen,
        sessionMode: this.#rt.config().proxy.pool_mode === 'session',
      })
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
    else this.#output.drop() // nothing of it reached the client: it may still move
    this.#conn = null
    this.#rt.pool.release(conn)
    this.state.setPinned(null, false)
    this.#rt.observer?.backendError(conn.node)
    reportOutcome(this.#rt.engine.tracker.breaker(conn.node), 'connection_failed')
    if (this.#serverFatal) {
      // the client saw the server's FATAL: its session is over, as on a direct connection, where
      // PostgreSQL closes after it (clients and psql rely on that); nothing of freshet's own follows
      this.#rt.log('info', 'closing client: its server session ended with FATAL', { node: conn.node })
      this.#flushRun()
      this.#socket.end()
      this.close()
      return
    }
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
    this.#statements.reset()
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
    return (
      this.#phase === 'ready' &&
      job.syncs !== 0 &&
      mayRetryOnPrimary(job.classification, {
        failedNode: failed,
        primary: this.#rt.engine.tracker.primary,
        retried: job.retried,
        answered: job.answered,
        inTransaction: this.#txStatus !== 'I' || this.state.inTransaction,
        pinned: this.state.sessionPin !== null,
      })
    )
  }

  /**
   * After a replica cancelled a read for a recovery conflict (its error and ReadyForQuery held back):
   * the connection is clean and goes back, and the read runs again on the primary.
   */
  #moveAfterConflict(job: Job, conn: ServerConnection): void {
    const message = job.conflict!
    job.conflict = null
    this.#statements.abandon(conn.statements)
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
