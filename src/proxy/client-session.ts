// One client of the proxy, the dispatch/ready/settle core: statements routed per transaction onto
// pooled server connections, original bytes forwarded both ways. Its concerns live beside it:
// client-transport.ts (the client socket and framing), client-startup.ts (startup, TLS, auth),
// extended-batch.ts (jobs and batch assembly), job-routing.ts (classify once, decide), own-settings.ts
// (freshet's SET answered here), prepared-statements.ts (client names and the server connection's
// cache), startup-settings.ts (a lent connection brought to the client's settings), hidden-reply.ts
// (freshet's own statements whose answers are not the client's), session-tokens.ts (read-your-writes
// tokens: when to read one, what waits for it), read-failover.ts (a failed replica read moved to the
// primary), batch-send.ts (a batch sent message by message, waiting where a re-created statement is
// described), client-output.ts (gathering the server's answers for the client), shard-session.ts (a
// sharded config: the shard of each job, the held BEGIN, per-shard tokens, refusals). Above 600 lines
// as one concept: the loop that dispatches a client's jobs, reads the server's answers and settles the
// connection at ReadyForQuery.

import type { Socket } from 'node:net'
import { reportOutcome } from '../core/breaker/breaker-policy.js'
import type { Classification } from '../core/classify/classification.js'
import { NodeUnavailableError, SQLSTATE } from '../core/errors.js'
import type { Decision } from '../core/route/decision.js'
import { decisionError } from '../core/route/decision-error.js'
import {
  BackendCode,
  errorResponse,
  FrontendCode,
  ProtocolError,
  type RawFrameHandler,
  readyForQuery,
  STARTUP_FRAME,
} from '../protocol/index.js'
import type { Routed } from '../routing/routing-engine.js'
import { SessionState } from '../session/session-state.js'
import { failSpan, startStatementSpan } from '../telemetry/statement-span.js'
import { BatchSend } from './batch-send.js'
import { errorFields, errorFieldsOf, serverError } from './client-errors.js'
import { ClientOutput } from './client-output.js'
import { ClientStartup, type SessionPhase } from './client-startup.js'
import { ClientTransport } from './client-transport.js'
import { endSpan, type Job, JobAssembler } from './extended-batch.js'
import { HiddenReply } from './hidden-reply.js'
import { classifyJob, statementsOf } from './job-routing.js'
import { answerOwnSettings } from './own-settings.js'
import { ClientStatements } from './prepared-statements.js'
import type { ProxyRuntime } from './proxy-runtime.js'
import { ReadFailover } from './read-failover.js'
import type { ServerConnection, ServerSink } from './server-connection.js'
import { ServerStartupError } from './server-connection.js'
import { type LoginIdentity, loginIdentity } from './server-pool.js'
import { SessionTokens, tokenMatters } from './session-tokens.js'
import { type ShardJobHost, type ShardRoute, ShardSession } from './shard-session.js'
import {
  afterClientResets,
  planSettings,
  SettingsApply,
  settingsNotApplied,
  startupReset,
} from './startup-settings.js'

// every message: 1 byte code, then int32 length that counts itself but not the code
const HEADER_LENGTH = 5
// ReadyForQuery status bytes
const STATUS_IDLE = 0x49 // I
const STATUS_IN_TX = 0x54 // T
const STATUS_FAILED = 0x45 // E
const WAIT = Object.freeze({ wait: true })
const DRY_RUN = Object.freeze({ dryRun: true })
// a server message freshet could not handle ends the client's session with one of these (docs/errors.md)
const SQLSTATE_PROTOCOL_VIOLATION = '08P01'
const SQLSTATE_INTERNAL = 'XX000'
// Jobs a pipelining client may queue before we stop reading from it.
const MAX_QUEUED_JOBS = 256

/**
 * A client connection: startup (SSLRequest, GSSENCRequest, CancelRequest, StartupMessage), auth, then
 * statements. Each autocommit statement or transaction is decided by the engine and runs on a server
 * connection borrowed for it; transactions and session state hold the connection until they end.
 */
export class ClientSession implements ServerSink {
  readonly #client: ClientTransport
  readonly #rt: ProxyRuntime
  #phase: SessionPhase = 'startup'
  /** A FATAL of the server connection reached the client: when that connection goes, so does the client. */
  #serverFatal = false
  readonly #startup: ClientStartup
  identity: LoginIdentity = loginIdentity('', '', undefined)
  /** Settings asked for at startup (application_name, statement_timeout, -c options ...), lower-case names. */
  settings: ReadonlyMap<string, string> = new Map()
  readonly state = new SessionState()
  pid = 0
  secret = 0

  readonly #queue: Job[] = []
  #running: Job | null = null
  #conn: ServerConnection | null = null
  #extendedOpen = false
  #skipUntilSync = false
  /** freshet's own statement on the connection (settings, a held BEGIN): its answers are swallowed. */
  readonly #hidden = new HiddenReply()
  /** Read-your-writes tokens: owed by writes, read on the proxy's shared connection, waited for by reads. */
  readonly #tokens: SessionTokens
  /** The running job is a RESET of a startup setting sent as set_config (its row is not the client's). */
  #resetting = false
  /** The connection lent for a job is brought to this client's startup settings first. */
  readonly #applying = new SettingsApply<Job>()
  #draining = false

  readonly #failover: ReadFailover
  readonly #statements = new ClientStatements()
  readonly #jobs = new JobAssembler(this.#statements)
  readonly #batches = new BatchSend(this.#statements)
  readonly #output = new ClientOutput()
  /** Statements of batches ended by Flush since the last Sync: their pins apply at its ReadyForQuery. */
  readonly #unsynced: Classification[] = []
  /** The server reported an error while no job of this client was running (after a Flush). */
  #unsyncedError = false
  /** A reused one-statement list for {@link SessionState.applyPins}. */
  readonly #one: Classification[] = []
  /** Sharded configs: the job's shard, the transaction's pin, per-shard tokens (shard-session.ts). */
  readonly #shard: ShardSession | null
  /** The job waiting for a held BEGIN (sent first, its answer hidden) to be answered. */
  #afterBegin: Job | null = null
  /** What ShardSession.dispatch does with a job, in this session's terms. */
  readonly #shardHost: ShardJobHost = {
    answer: (job, bytes, status) => {
      // freshet's own ReadyForQuery: the session machine takes it as from a server (BEGIN, COMMIT seen)
      const before = this.state.ready(status)
      this.state.applyPins(statementsOf(job, this.#one), { before, after: status, failed: false })
      this.#client.write(bytes)
      this.#running = null
    },
    fail: (job, err, status) => {
      if (status !== undefined) this.state.ready(status)
      this.#failJob(job, err)
    },
    send: (job, conn) => {
      this.#running = job
      this.#send(job, conn)
    },
    acquire: (job, node) => this.#acquire(job, node),
    decided: (job, picked) => this.#decided(job, picked),
  }
  /**
   * `socket`: accepted and paused. `adopt`: read it through `onread` (plain-text listeners; see
   * ClientTransport), from then on {@link socket} is the one to watch.
   */
  constructor(socket: Socket, runtime: ProxyRuntime, adopt = false) {
    this.#rt = runtime
    this.#shard = runtime.sharded === null ? null : new ShardSession(runtime.sharded, this.state)
    this.#failover = new ReadFailover(runtime, this.state)
    this.#tokens = new SessionTokens(runtime.positions, this.state, this.#tokenRead)
    this.#client = new ClientTransport(
      socket,
      {
        frame: this.#onClientFrame,
        failed: (err, framed) => {
          if (this.#phase === 'startup' && !framed) this.#startup.unframed(err)
          else this.#fatal(err)
        },
        closed: () => this.close(),
      },
      adopt,
    )
    const client = this.#client
    this.#startup = new ClientStartup(runtime, {
      client: this,
      socket: () => client.socket,
      phase: () => this.#phase,
      setPhase: (phase) => {
        this.#phase = phase
      },
      buffered: () => client.buffered,
      upgrade: (wrap) => client.upgrade(wrap),
      handOff: () => client.detach(),
      close: () => this.close(),
      loggedIn: () => this.#next(),
    })
  }

  /** The client's socket now (the adopted one, a TLS socket after the upgrade). */
  get socket(): Socket {
    return this.#client.socket
  }

  /** True while a statement of this client runs on a server (for CancelRequest). */
  get busyConnection(): ServerConnection | null {
    return this.#running || this.#hidden.active ? this.#conn : null
  }

  /**
   * Sharded configs: the node of the connection held now, the routing-map version it was routed under,
   * and whether a transaction or a statement runs on it (a routing-map drain waits for those); else null.
   */
  get shardRoute(): ShardRoute | null {
    return this.#shard?.onConnection(this.#conn, this.#running !== null || this.#hidden.active) ?? null
  }

  /** Holding a server connection (open transaction, session state) or running something. */
  get busy(): boolean {
    return this.#conn !== null || this.#running !== null || this.#queue.length > 0
  }

  // ---- client side -------------------------------------------------------------------------------

  readonly #onClientFrame: RawFrameHandler = (code, buf, start, end) => {
    if (this.#phase === 'closed') return
    const phase = this.#phase
    // while the login is being answered ('connecting') statements queue up and run once ready
    if (code === STARTUP_FRAME || phase === 'startup' || phase === 'auth')
      this.#startup.frame(code, buf, start, end)
    else this.#message(code, buf, start, end)
  }

  /** A malformed message or an internal failure: tell the client, close only this client. */
  #fatal(err: unknown): void {
    if (this.#phase === 'closed') return
    this.#rt.log('warn', 'closing client after an error', { error: (err as Error)?.message })
    this.#client.end(errorResponse(errorFields(err, 'FATAL')))
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
    if (this.#queue.length > MAX_QUEUED_JOBS) this.#client.pause()
    if (this.#running === null && !this.#hidden.active) this.#next()
  }

  // ---- dispatch ----------------------------------------------------------------------------------

  #next(): void {
    while (this.#phase === 'ready' && this.#running === null && !this.#hidden.active) {
      if (this.#draining && this.#conn === null) {
        this.#terminate('57P01', 'freshet: terminating connection because the proxy is shutting down')
        return
      }
      const job = this.#queue.shift()
      if (!job) break
      if (this.#client.paused && this.#queue.length < MAX_QUEUED_JOBS / 2) this.#client.resume()
      this.#running = job
      if (!this.#dispatch(job)) {
        this.#queue.unshift(job)
        this.#running = null
        break
      }
    }
  }

  /** Runs the job (or answers it); false when it must wait for the token of this session's last write. */
  #dispatch(job: Job): boolean {
    if (this.#skipUntilSync) {
      // an error ended this extended batch early: discard until Sync, then say ready
      if (job.syncs > 0) {
        this.#skipUntilSync = false
        this.#client.write(readyForQuery(this.state.txStatus))
      }
      this.#running = null
      return true
    }
    const engine = this.#rt.engine
    const reads = classifyJob(this.#rt.sharded ?? engine, job)
    const c = job.classification
    const own = c === null ? null : answerOwnSettings(job, c, this.state)
    if (own !== null) {
      this.#client.write(own)
      this.#running = null
      return true
    }
    if (c !== null && c.settings !== undefined && job.kind === 'simple' && this.settings.size > 0)
      job.startupReset = startupReset(c, this.settings)
    const conn = this.#conn
    // a read that may go to a replica waits for the token of this session's last write; a write does
    // not (the primary has it), nor a read the token cannot send elsewhere (tokenMatters, on a dry
    // run), nor anything that runs on the connection this session holds
    if (
      conn === null &&
      c !== null &&
      (!c.requiresPrimary || reads !== null) &&
      (this.#tokens.reading || this.#tokens.owed) &&
      this.#tokenMatters(reads ?? c)
    ) {
      if (this.#tokens.owed) this.#tokens.readOwed()
      return false
    }
    if (this.#shard !== null) {
      this.#shard.dispatch(job, reads, conn, this.#shardHost)
      return true
    }
    if (conn !== null) {
      // held (transaction, session state, open batch): still decided, so logs and metrics see it
      if (c !== null)
        job.span = startStatementSpan(engine.decide(c, this.state.view(), this.state.context()).decision, c)
      this.#send(job, conn)
      return true
    }
    if (c === null) {
      this.#acquire(job, engine.tracker.primary)
      return true
    }
    // waits, as the library does, when a replica must first replay a token (the session's or a
    // MIN_LSN hint's): the engine's one rule (consistency.max_wait_for_sync_ms, then its fallback)
    this.#decided(job, engine.decide(reads ?? c, this.state.view(), this.state.context(), WAIT))
    return true
  }

  /** A decision made, or being made (waiting for a replica to replay a token): run the job where it says. */
  #decided(job: Job, picked: Routed | Promise<Routed>): void {
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
    if (!job.classification!.requiresPrimary) this.#tokens.decided(decision)
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
          this.#client.write(err.raw)
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
    this.#hidden.start()
    this.#applying.begin(job, conn, plan)
  }

  /** An error freshet raises for a job: ErrorResponse, then ReadyForQuery (or skip to the batch's Sync). */
  #failJob(job: Job, err: unknown): void {
    if (this.#phase === 'closed') return
    endSpan(job, err ?? 'the server refused the login')
    if (err !== null) this.#client.write(errorResponse(errorFields(err)))
    if (job.kind === 'extended' && job.syncs === 0) this.#skipUntilSync = true
    else this.#client.write(readyForQuery(this.state.txStatus))
    this.#running = null
    this.#next()
  }

  #send(job: Job, conn: ServerConnection): void {
    const begin = this.#shard?.takeBegin() ?? null
    if (begin !== null) {
      // the BEGIN freshet answered goes out first; its own answer is not the client's
      this.#afterBegin = job
      this.#hidden.start()
      conn.write(begin)
      return
    }
    job.startedAt = performance.now()
    this.#rt.observer?.observeProxyRoutingLatency((job.startedAt - job.receivedAt) / 1000)
    const whole = job.startupReset?.message ?? job.whole
    this.#resetting = job.startupReset !== null
    if (whole === null) {
      if (!this.#batches.send(job, conn)) return // waits for freshet's Describe (#resume)
    } else if (job.kind !== 'simple') conn.write(whole)
    // a simple Query destroys the unnamed statement; a SQL PREPARE may first close a name it needs
    else if (this.#statements.beforeSimpleQuery(conn, job.classification?.prepare?.name)) {
      conn.queue(whole)
      conn.flush()
    } else conn.write(whole)
    this.#sent(job)
  }

  /** freshet's Describe of a re-created statement came back (`failed`: an error instead): go on. */
  #resume(failed: boolean): void {
    const job = this.#conn === null ? null : this.#batches.resume(this.#conn, failed)
    if (job !== null) this.#sent(job)
  }

  /** The job is on its way to the server. */
  #sent(job: Job): void {
    if (job.syncs === 0) {
      // a batch ended by Flush: the connection stays with us until a Sync comes back as ReadyForQuery
      endSpan(job, null)
      for (const s of statementsOf(job, this.#one)) this.#unsynced.push(s)
      this.#extendedOpen = true
      this.#running = null
      this.#next()
    }
  }

  // ---- server side -------------------------------------------------------------------------------

  readonly onServerFrame: RawFrameHandler = (code, buf, start, end) => {
    if (this.#resetting && !this.#hidden.active && this.#resetAnswer(code)) return
    // freshet's own statement (always a simple query): everything up to its ReadyForQuery is its own
    if (
      this.#hidden.active &&
      code !== BackendCode.ReadyForQuery &&
      code !== BackendCode.ErrorResponse &&
      code !== BackendCode.NotificationResponse
    )
      return
    switch (code) {
      case BackendCode.ReadyForQuery: {
        // the session machine is driven by this byte: a message without a valid one is malformed
        const status = end - start === HEADER_LENGTH + 1 ? buf[start + HEADER_LENGTH] : -1
        if (status !== STATUS_IDLE && status !== STATUS_IN_TX && status !== STATUS_FAILED)
          throw new ProtocolError('malformed ReadyForQuery from the server: no valid transaction status')
        if (this.#hidden.active) {
          this.#hiddenDone()
          return
        }
        const job = this.#running
        if (job !== null && job.conflict !== null && status === STATUS_IDLE) {
          this.#output.drop()
          this.#moveAfterConflict(job, this.#conn!)
          return
        }
        this.#append(buf, start, end)
        this.#flushRun()
        this.#ready(status)
        return
      }
      case BackendCode.ParseComplete: {
        if (this.#statements.parseComplete()) return
        break
      }
      case BackendCode.CloseComplete:
        if (this.#statements.closeComplete()) return
        break
      case BackendCode.ParameterDescription:
        if (this.#statements.parameterDescription(buf.subarray(start + HEADER_LENGTH, end))) return
        break
      case BackendCode.RowDescription:
      case BackendCode.NoData: {
        const body = code === BackendCode.NoData ? null : buf.subarray(start + HEADER_LENGTH, end)
        if (this.#statements.rowDescription(body)) {
          if (this.#batches.waiting && !this.#statements.describing) this.#resume(false)
          return
        }
        break
      }
      case BackendCode.ErrorResponse: {
        const forward = this.#serverErrorArrived(buf, start, end)
        if (forward && !this.#hidden.active) this.#append(buf, start, end)
        // a batch waiting for freshet's Describe: the server now skips to Sync, so send it
        if (this.#batches.waiting) this.#resume(true)
        return
      }
      case BackendCode.NotificationResponse:
        // asynchronous, and the client's (only a connection pinned by its LISTEN gets one): forwarded
        // even in the middle of freshet's own hidden query, which PostgreSQL may answer after it.
        // int32 pid of the notifying backend: the client's own server session goes by the pid the
        // client was given (BackendKeyData), so clients that skip their own notifications still can
        if (end - start < HEADER_LENGTH + 4)
          throw new ProtocolError('malformed NotificationResponse from the server: too short')
        if (this.#conn !== null && buf.readInt32BE(start + HEADER_LENGTH) === this.#conn.pid) {
          this.#flushRun()
          const own = Buffer.from(buf.subarray(start, end))
          own.writeInt32BE(this.pid, HEADER_LENGTH)
          this.#client.write(own)
        } else this.#append(buf, start, end)
        return
    }
    this.#append(buf, start, end)
  }

  /** The answer to freshet's set_config in place of a RESET: true when this message is not forwarded. */
  #resetAnswer(code: number): boolean {
    if (code === BackendCode.RowDescription || code === BackendCode.DataRow) return true
    if (code !== BackendCode.CommandComplete) return false
    this.#flushRun()
    this.#client.write(this.#running!.startupReset!.done)
    return true
  }

  /** An ErrorResponse of the server: false when it is not to be forwarded (held back, or replaced). */
  #serverErrorArrived(buf: Buffer, start: number, end: number): boolean {
    if (this.#applying.pending) {
      this.#applying.failed(serverError(buf.subarray(start + HEADER_LENGTH, end)))
      return false
    }
    const job = this.#running
    const fields = errorFieldsOf(buf.subarray(start + HEADER_LENGTH, end))
    const fatal = fields !== null && (fields.severity === 'FATAL' || fields.severity === 'PANIC')
    const replaced = this.#hidden.active ? null : this.#statements.serverError(fields)
    if (replaced !== null) {
      // the refusal of freshet's Bind in place of a statement whose row type changed: PostgreSQL's 0A000
      if (job !== null) job.failed = true
      else this.#unsyncedError = true
      this.#flushRun()
      if (this.#running !== null) this.#running.answered = true
      this.#client.write(replaced)
      return false
    }
    if (job === null) {
      if (!this.#hidden.active) {
        this.#unsyncedError = true
        // the server ends the session the client holds (pg_terminate_backend, idle_session_timeout)
        if (fatal) this.#serverFatal = true
      }
      return true
    }
    const conn = this.#conn
    const held =
      conn === null ? null : this.#failover.holds(job, conn.node, fields, fatal, this.#phase === 'ready')
    if (held !== null) {
      // nothing of the read reached the client (a RowDescription before the error goes too): it may move
      this.#output.drop()
      if (held === 'conflict') job.conflict = fields!.message
      return false
    }
    job.failed = true
    if (fatal && !this.#hidden.active) this.#serverFatal = true
    if (job.span?.isRecording()) failSpan(job.span, serverError(buf.subarray(start + HEADER_LENGTH, end)))
    return true
  }

  onServerChunkEnd(): void {
    this.#flushRun()
  }

  #append(buf: Buffer, start: number, end: number): void {
    // the frames come from the connection this session holds (it is the sink of no other)
    this.#output.append(buf, start, end, this.#flushRun, this.#conn)
  }

  readonly #flushRun = (): void => {
    // forwarded as a view of the server's read buffer; a copy when the write would be queued anyway
    const client = this.#client
    const out = this.#output.take(client.holdsWrites)
    if (out === null || this.#phase === 'closed') return
    if (this.#running !== null) this.#running.answered = true
    const ok = client.write(out)
    this.#output.written(client.holdsWrites)
    // the client reads slower than the server sends: stop reading the server until it catches up
    if (!ok) this.#conn?.pauseUntilDrained(this.#client.socket)
  }

  #ready(status: number): void {
    const job = this.#running
    const conn = this.#conn!
    // the session machine owns the transaction status; everything here reads it back from there
    const before = this.state.ready(status === STATUS_IDLE ? 'I' : status === STATUS_IN_TX ? 'T' : 'E')
    this.#extendedOpen = false
    if (job === null) {
      this.#settle()
      return
    }
    if (--job.syncs > 0) return
    endSpan(job, null) // a server error already marked it failed
    const engine = this.#rt.engineOf(conn.node)
    engine.tracker.observeLatency(conn.node, performance.now() - job.startedAt)
    reportOutcome(engine.tracker.breaker(conn.node), 'answered')
    let statements = statementsOf(job, this.#one)
    if (this.#unsynced.length > 0) {
      statements = [...this.#unsynced, ...statements]
      this.#unsynced.length = 0
    }
    const failed = job.failed || this.#unsyncedError
    this.#unsyncedError = false
    const after = this.state.txStatus
    this.state.applyPins(statements, { before, after, failed })
    this.#resetting = false
    // a client's RESET of a setting freshet applied (not the one freshet ran as set_config)
    if (job.startupReset === null) afterClientResets(statements, conn)
    const tokenDue = this.state.tokenDue(job.classification, {
      before,
      after,
      failed,
      onPrimary: conn.node === engine.tracker.primary,
      functionCall: job.kind === 'function',
    })
    this.#statements.settle(conn.statements, job.failed)
    this.#running = null
    if (tokenDue) {
      this.state.recordWrite(null)
      // read elsewhere, after this ReadyForQuery, if ever (session-tokens.ts): the client is answered
      // now, and its next statement waits only if it is a read that a replica may serve
      if (this.#causal()) this.#tokens.wrote(conn.node)
    }
    this.#settle()
  }

  #hiddenDone(): void {
    const afterBegin = this.#afterBegin
    if (afterBegin !== null) {
      this.#afterBegin = null
      this.#hidden.finish()
      this.#send(afterBegin, this.#conn!)
      return
    }
    this.#hidden.finish()
    const applied = this.#applying.finish()
    if (applied !== null) {
      // the connection has this client's settings (or failed to take them): run the job, or fail it
      const conn = this.#conn!
      if (applied.error === null) this.#send(applied.job, conn)
      else {
        this.#release(conn, true) // what it has set is unknown now
        this.#failJob(applied.job, settingsNotApplied(applied.error))
      }
      return
    }
    this.#settle()
  }

  /** A token of this session's writes was read (null: it could not be; see SessionState.recordToken). */
  readonly #tokenRead = (node: string, lsn: string | null): void => {
    if (this.#phase === 'closed') return
    if (lsn !== null) this.#shard?.recordToken(node, lsn)
    if (!this.#tokens.reading) this.#next()
  }

  /**
   * Whether a read's destination depends on the token a write of this session owes (tokenMatters, on a
   * dry run). Sharded sessions always read it: the shard's own engine decides.
   */
  #tokenMatters(reads: Classification | readonly Classification[]): boolean {
    if (this.#shard !== null) return true
    return tokenMatters(
      this.#rt.engine.decide(reads, this.state.view(), this.state.context(), DRY_RUN).decision,
    )
  }

  /** After a job: keep the connection (transaction, session state, session mode) or give it back. */
  #settle(): void {
    const conn = this.#conn
    if (conn !== null) {
      const keep = this.state.keepsConnection({
        batchOpen: this.#extendedOpen,
        sessionMode: this.#rt.config().proxy.pool_mode === 'session',
      })
      if (keep && (!this.#draining || this.state.inTransaction)) this.state.setPinned(conn.node)
      else this.#release(conn)
    }
    this.#next()
  }

  onServerLost(conn: ServerConnection, err: Error): void {
    if (this.#conn !== conn || this.#phase === 'closed') return
    if (this.#running === null || this.#running.answered) this.#flushRun()
    else this.#output.drop() // nothing of it reached the client: it may still move
    this.#release(conn)
    this.#rt.observer?.backendError(conn.node)
    reportOutcome(this.#rt.engineOf(conn.node).tracker.breaker(conn.node), 'connection_failed')
    if (this.#serverFatal) {
      // the client saw the server's FATAL: its session is over, as on a direct connection, where
      // PostgreSQL closes after it (clients and psql rely on that); nothing of freshet's own follows
      this.#rt.log('info', 'closing client: its server session ended with FATAL', { node: conn.node })
      this.#flushRun()
      this.#client.end()
      this.close()
      return
    }
    const message = `freshet: lost the connection to ${conn.node}: ${err.message}`
    if (this.#running !== null && !this.state.inTransaction && this.state.sessionPin === null) {
      this.#resetServerState()
      if (this.#retryElsewhere(this.#running, conn.node, err)) return
    }
    this.#rt.log('warn', message, { node: conn.node })
    if (this.state.inTransaction || this.state.sessionPin !== null || this.#extendedOpen) {
      // the transaction or session state is gone with the server: the client must reconnect. So is a
      // batch ended by Flush (no job runs): its answers will not come, and nothing else would tell it
      this.#terminate(SQLSTATE.FRESHET_NODE_UNAVAILABLE, message)
      return
    }
    this.#resetServerState()
    const job = this.#running
    if (job !== null) this.#failJob(job, new NodeUnavailableError('FRESHET_NODE_UNAVAILABLE', message))
    else this.#next()
  }

  /**
   * Reading or handling a message of a server connection threw (a malformed backend message, or a bug
   * in freshet): what the client waits for will not come and its session's state is unknown, so it
   * ends with a FATAL (08P01 for a malformed message, else XX000), as for a malformed client message.
   * ServerConnection has closed that connection already (never reused); the proxy and other clients go
   * on. Whichever connection this client holds (the failure may come after it moved on) goes too.
   */
  onServerMessageFailed(conn: ServerConnection, err: Error): void {
    if (this.#phase === 'closed') return
    if (this.#conn === conn) this.#release(conn, true)
    this.#rt.observer?.backendError(conn.node)
    this.#rt.log('error', 'closing client: handling a message from its server failed', {
      node: conn.node,
      error: err.message,
    })
    const code = err instanceof ProtocolError ? SQLSTATE_PROTOCOL_VIOLATION : SQLSTATE_INTERNAL
    this.#terminate(
      code,
      `freshet: closing the connection: handling a message from ${conn.node} failed: ${err.message}`,
    )
  }

  #causal(): boolean {
    return this.#rt.config().consistency.causal
  }

  /** Forgets what was in flight on a server connection that is gone. */
  #resetServerState(): void {
    this.#hidden.finish() // the connection is gone: nothing of freshet's own is in flight
    this.#applying.reset()
    this.#afterBegin = null
    this.#extendedOpen = false
    this.#statements.reset()
    this.#batches.reset()
    this.#unsynced.length = 0
    this.#unsyncedError = false
  }

  /** Moves a read whose replica failed to the primary (see ReadFailover); false when it cannot move. */
  #retryElsewhere(job: Job, failed: string, err: unknown): boolean {
    if (!this.#failover.allowed(job, failed, this.#phase === 'ready')) return false
    this.#acquire(job, this.#failover.move(job, failed, err))
    return true
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
    this.#release(conn)
    this.#retryElsewhere(job, conn.node, new Error(message))
  }

  /**
   * The held server connection goes back to the pool, or is closed when the session machine says it
   * is not reusable (releaseConnection); this client is held on no node after it.
   */
  #release(conn: ServerConnection, unknownState = false): void {
    if (!this.state.releaseConnection({ unknownState })) conn.dirty = true
    this.#conn = null
    this.#shard?.released()
    this.#rt.pool.release(conn)
  }

  // ---- lifecycle ---------------------------------------------------------------------------------

  /** Graceful shutdown: finish the open transaction, then close. */
  drain(): void {
    this.#draining = true
    if (this.#phase !== 'ready') {
      this.close()
      return
    }
    if (this.#running === null && !this.#hidden.active && this.#conn === null) this.#next()
    else if (this.#running === null && !this.#hidden.active && !this.state.inTransaction) this.#settle()
  }

  #terminate(code: string, message: string): void {
    if (this.#phase === 'closed') return
    this.#flushRun()
    this.#client.end(errorResponse({ severity: 'FATAL', code, message }))
    this.close()
  }

  /** Closes the client; a held server connection goes back to the pool if clean, else is closed. */
  close(): void {
    if (this.#phase === 'closed' && this.#conn === null) {
      this.#client.destroySoon()
      return
    }
    this.#phase = 'closed'
    this.#rt.unregister(this)
    if (this.#running !== null) endSpan(this.#running, 'the client connection closed')
    this.#queue.length = 0
    const conn = this.#conn
    this.#conn = null
    if (conn !== null) {
      const busy = this.#running !== null || this.#hidden.active || this.#extendedOpen
      if (!this.state.releaseConnection({ unknownState: busy })) conn.dirty = true
      // the client is gone: stop its statement now rather than let the server finish it for nobody
      // (the backend would hold its locks and a server slot beyond max_active until then)
      if (busy) this.#rt.cancelServer(conn)
      this.#rt.pool.release(conn)
    }
    this.#client.destroySoon()
  }
}
