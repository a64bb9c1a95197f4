// A proxy client's shard state on a sharded config: which shard each job goes to (its key from hints,
// SET freshet.shard_key or the statement, $n from Bind), the transaction's shard pin, BEGIN held until
// the first statement names a shard, one read-your-writes token per shard, and the refusals (ZF003/ZF004).

import type { Classification } from '../core/classify/classification.js'
import { CrossShardError, IN_FAILED_TRANSACTION, isFreshetError } from '../core/errors.js'
import type { RoutingContext } from '../core/route/routing-context.js'
import type { ShardMap } from '../core/shard/shard-map.js'
import type { ShardDecision } from '../core/shard/shard-router.js'
import {
  commandComplete,
  decodeBindParams,
  FrontendCode,
  query,
  readyForQuery,
  type TransactionStatus,
} from '../protocol/index.js'
import type { Routed } from '../routing/routing-engine.js'
import type { ShardedRouting } from '../routing/sharded-routing.js'
import type { SessionState } from '../session/session-state.js'
import { TokenStore } from '../session/token-store.js'
import { startStatementSpan } from '../telemetry/statement-span.js'
import type { Job } from './extended-batch.js'
import { loneBeginAnswer } from './extended-begin.js'
import type { ServerConnection } from './server-connection.js'

// every message: 1 byte code, then int32 length that counts itself but not the code
const HEADER_LENGTH = 5

/** What the session does with a job on a sharded config (see {@link ShardSession.plan}). */
export type ShardPlan =
  /** freshet answers it (a held BEGIN, or COMMIT/ROLLBACK of a transaction nothing was sent for). */
  | { readonly kind: 'answer'; readonly bytes: Buffer; readonly status: TransactionStatus }
  /** Refused before anything was sent: ErrorResponse with the error's SQLSTATE. */
  | { readonly kind: 'fail'; readonly error: unknown; readonly status?: TransactionStatus }
  /** Refused inside a transaction open on a server: the server raises the error, so the transaction aborts there. */
  | { readonly kind: 'raise'; readonly job: Job }
  /** Runs on that shard (the held connection's, when one is held). */
  | { readonly kind: 'route'; readonly shard: ShardDecision }

/** What {@link ShardSession.dispatch} asks of the client session. */
export interface ShardJobHost {
  /** freshet answers the job itself, ending in a ReadyForQuery with `status`. */
  answer(job: Job, bytes: Buffer, status: TransactionStatus): void
  /** ErrorResponse, then ReadyForQuery (with `status`, when it changes). */
  fail(job: Job, error: unknown, status?: TransactionStatus): void
  /** Runs `job` (the given one or a replacement) on the connection held. */
  send(job: Job, conn: ServerConnection): void
  /** Runs the job on `node` (a new connection). */
  acquire(job: Job, node: string): void
  /** Runs the job where the decision says, once made. */
  decided(job: Job, picked: Routed | Promise<Routed>): void
}

/** The connection a client holds on a sharded config, as a routing-map drain sees it. */
export interface ShardRoute {
  readonly node: string
  /** The routing-map version it was routed under. */
  readonly version: number | null
  readonly transaction: boolean
  /** A statement (or freshet's own) runs on it now. */
  readonly running: boolean
}

/** The one shard of a batch's statements so far, or ZF003 when `d` is for another (nothing sent). */
function sameShard(first: ShardDecision | null, d: ShardDecision): ShardDecision {
  if (first === null || d.shard === first.shard) return first ?? d
  throw new CrossShardError(
    `the statements of one batch are for ${first.shard} and ${d.shard}; nothing was sent`,
    {
      details: { shards: [first.shard, d.shard] },
    },
  )
}

/** The transaction actions of a one-statement job, or null. */
function txAction(c: Classification | null): string | null {
  return c !== null && c.kind === 'transaction' && c.statementCount === 1
    ? (c.transaction?.action ?? null)
    : null
}

/**
 * An ErrorResponse raised by the server inside the open transaction, with freshet's SQLSTATE and message:
 * the transaction is aborted there as by any failed statement, so nothing of it can commit (a COMMIT
 * that follows rolls back), exactly as if the refused statement had failed on the server.
 */
export function raiseSql(err: unknown): string {
  const code = isFreshetError(err) ? err.sqlState : 'ZF003'
  const text = (err as Error).message
  const message = text.startsWith('freshet:') ? text : `freshet: ${text}`
  // E'' with \ and ' doubled reads the same under any standard_conforming_strings; the message may hold a
  // client's key value, so the dollar-quote tag is one the body does not contain
  const literal = (v: string) => `E'${v.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`
  const body = `BEGIN RAISE EXCEPTION USING ERRCODE = ${literal(code)}, MESSAGE = ${literal(message)}; END`
  let tag = 'freshet'
  while (body.includes(`$${tag}$`)) tag += '_'
  return `DO $${tag}$ ${body} $${tag}$`
}

/**
 * Per client: the shard plan of each job, the held BEGIN, the transaction's map, the per-shard tokens.
 * @example
 * const plan = shards.plan(job, conn?.node ?? null, 'I')
 * if (plan.kind === 'route') routing.decide(c, view, shards.context(state), { shard: plan.shard })
 */
export class ShardSession {
  readonly #routing: ShardedRouting
  readonly #state: SessionState
  /** BEGIN answered by freshet, sent before the first statement that names a shard; null when none is held. */
  heldBegin: { readonly whole: Buffer; readonly classification: Classification } | null = null
  /** A statement of the held transaction was refused: it is aborted, until COMMIT or ROLLBACK. */
  #heldAborted = false
  /** Read-your-writes tokens per shard (the session machine's one store keeps the session's last write). */
  readonly tokens = new Map<string, TokenStore>()
  /** The routing map the open transaction (or the held connection) was routed under, and its version. */
  #map: { readonly map: ShardMap; readonly version: number } | null = null

  constructor(routing: ShardedRouting, state: SessionState) {
    this.#routing = routing
    this.#state = state
  }

  /** The map version the held connection was routed under (drain waits for those below a new version), or null. */
  get routedVersion(): number | null {
    return this.#map?.version ?? null
  }

  /** The shard a node belongs to (the aggregate node's is `@aggregate`). */
  shardOf(node: string): string | null {
    for (const [shard, engine] of this.#routing.engines()) {
      if (engine.tracker.nodeConfig(node) !== undefined) return shard
    }
    return null
  }

  /** The routing context for a shard: the session's, with that shard's token only. */
  readonly context = (shard: string): RoutingContext => {
    const { minLsn: _, ...rest } = this.#state.context()
    const token = this.tokens.get(shard)?.token
    return token === undefined ? rest : { ...rest, minLsn: token }
  }

  /** A write committed on `node`: its shard's token (when causal) and the session's write time. */
  recordToken(node: string, token: string): void {
    const shard = this.shardOf(node)
    if (shard === null) return
    let store = this.tokens.get(shard)
    if (store === undefined) {
      store = new TokenStore()
      this.tokens.set(shard, store)
    }
    store.record(token)
  }

  /**
   * What to do with a classified job. `held`: the node of the connection this client holds (open
   * transaction, session state), or null; `status`: the transaction status the client last saw.
   */
  plan(job: Job, held: string | null, status: TransactionStatus): ShardPlan {
    const c = job.classification
    const action = txAction(c)
    if (held === null && status !== 'I' && this.heldBegin !== null) {
      // a transaction freshet holds: nothing sent yet
      if (action === 'commit' || action === 'rollback') {
        const aborted = this.#heldAborted
        this.#endHeld()
        const tag = aborted || action === 'rollback' ? 'ROLLBACK' : 'COMMIT'
        return {
          kind: 'answer',
          bytes: Buffer.concat([commandComplete(tag), readyForQuery('I')]),
          status: 'I',
        }
      }
      if (this.#heldAborted) {
        return {
          kind: 'fail',
          // what the server says once the refusal has aborted its transaction (the pinned case)
          error: Object.assign(new Error(IN_FAILED_TRANSACTION), { sqlState: '25P02' }),
          status: 'E',
        }
      }
    }
    if (held === null && status === 'I' && action === 'begin') {
      // the shard is not known yet: answer BEGIN now, send it with the first statement (both faces do
      // this); an extended-protocol one goes out as a simple Query of its text, when freshet can answer
      // its batch exactly as the server would (extended-begin.ts), else it runs as it is
      const simple = job.kind === 'simple' ? job.whole : null
      const extended = simple === null ? loneBeginAnswer(job, c!) : null
      if (simple !== null || extended !== null) {
        this.heldBegin = { whole: simple ?? query(job.sql!), classification: c! }
        this.#heldAborted = false
        return {
          kind: 'answer',
          bytes: extended ?? Buffer.concat([commandComplete('BEGIN'), readyForQuery('T')]),
          status: 'T',
        }
      }
    }
    if (c === null) return { kind: 'route', shard: { shard: this.#routing.shardNames[0]!, source: 'any' } }
    if (held !== null && status === 'E') {
      // an aborted transaction on a server: it answers every statement with 25P02 itself
      return {
        kind: 'route',
        shard: { shard: this.shardOf(held) ?? this.#routing.shardNames[0]!, source: 'transaction' },
      }
    }
    const pinned = held === null ? null : this.shardOf(held)
    try {
      return { kind: 'route', shard: this.#route(job, pinned) }
    } catch (err) {
      if (held !== null && status === 'T' && job.syncs > 0)
        return { kind: 'raise', job: this.#raiseJob(job, err) }
      if (this.heldBegin !== null && held === null) this.#heldAborted = true
      return {
        kind: 'fail',
        error: err,
        ...(this.heldBegin !== null && held === null ? { status: 'E' as const } : {}),
      }
    }
  }

  /** The held connection as a drain sees it, or null. */
  onConnection(conn: ServerConnection | null, running: boolean): ShardRoute | null {
    if (conn === null) return null
    return { node: conn.node, version: this.routedVersion, transaction: this.#state.inTransaction, running }
  }

  /**
   * Runs a classified job on a sharded config: its plan (answered here, refused, raised in the server's
   * transaction, or routed), then that shard's engine's decision.
   */
  dispatch(
    job: Job,
    reads: readonly Classification[] | null,
    conn: ServerConnection | null,
    host: ShardJobHost,
  ): void {
    const plan = this.plan(job, conn?.node ?? null, this.#state.txStatus)
    if (plan.kind === 'answer') host.answer(job, plan.bytes, plan.status)
    else if (plan.kind === 'fail') host.fail(job, plan.error, plan.status)
    // the server raises the refusal in the open transaction, which aborts it there
    else if (plan.kind === 'raise') host.send(plan.job, conn!)
    else this.#run(job, reads, plan.shard, conn, host)
  }

  #run(
    job: Job,
    reads: readonly Classification[] | null,
    shard: ShardDecision,
    conn: ServerConnection | null,
    host: ShardJobHost,
  ): void {
    const picked = this.decide(job, reads, shard, conn !== null)
    if (conn !== null) {
      // held (transaction, session state): still decided, so logs and metrics see it
      if (picked !== null) job.span = startStatementSpan((picked as Routed).decision, job.classification!)
      host.send(job, conn)
    } else if (picked === null) host.acquire(job, this.primaryOf(shard))
    else host.decided(job, picked)
  }

  /**
   * The decision of a job routed to `shard`, by that shard's engine. `held`: on the connection the
   * client holds (for telemetry; null for a function call). Else where it runs, waiting as the engine
   * rules when a token is due; null: on the shard's primary (a function call).
   */
  decide(
    job: Job,
    reads: readonly Classification[] | null,
    shard: ShardDecision,
    held: boolean,
  ): Routed | Promise<Routed> | null {
    const c = job.classification
    const view = this.#state.view()
    if (held) return c === null ? null : this.#routing.decide(c, view, this.context, { shard })
    this.routed()
    const begin = this.heldBegin?.classification
    if (begin === undefined) {
      const statement = reads ?? c
      return statement === null
        ? null
        : this.#routing.decide(statement, view, this.context, { shard, wait: true })
    }
    // a held BEGIN goes out first: the transaction runs where that shard's engine puts its BEGIN
    const r = this.#routing.decide(begin, view, this.context, { shard, wait: true })
    const keep = (x: Routed): Routed => (c === null ? x : { ...x, classification: c })
    return 'then' in r ? r.then(keep) : keep(r)
  }

  /** The primary of a shard (or of the aggregate node). */
  primaryOf(shard: ShardDecision): string {
    return this.#routing.engine(shard.shard).tracker.primary
  }

  /** The connection for a routed job was taken: the map it was routed under is the transaction's from now. */
  routed(): void {
    this.#map = { map: this.#routing.setup.map, version: this.#routing.mapVersion }
  }

  /** The held BEGIN goes out now (with the first statement): returns its bytes. */
  takeBegin(): Buffer | null {
    const begin = this.heldBegin
    this.heldBegin = null
    return begin?.whole ?? null
  }

  /** The client holds no connection any more. */
  released(): void {
    this.#map = null
  }

  #endHeld(): void {
    this.heldBegin = null
    this.#heldAborted = false
  }

  /** The shard of a job: each Bind's statement with its own parameters, else the job's statement texts. */
  #route(job: Job, pinned: string | null): ShardDecision {
    const routing = this.#routing
    const sessionKey = this.#state.shardKey ?? null
    const map = pinned !== null ? this.#map?.map : undefined
    const key = (params?: readonly unknown[]) => ({
      ...(params !== undefined ? { params } : {}),
      sessionKey,
      pinned,
      ...(map !== undefined ? { map } : {}),
    })
    if (job.kind === 'extended' && job.items !== null) {
      const binds = job.items.filter((i) => i.code === FrontendCode.Bind && i.text !== null)
      // Parse / Describe without a Bind (drivers that describe first) run nothing: any shard answers
      if (binds.length === 0) {
        return { shard: pinned ?? routing.shardNames[0]!, source: pinned === null ? 'any' : 'transaction' }
      }
      // the first statement that names a shard routes the batch (a BEGIN or SELECT now() ahead of it
      // runs anywhere, so it goes along); a batch naming none runs where its first statement says
      let first: ShardDecision | null = null
      let anywhere: ShardDecision | null = null
      for (const item of binds) {
        const params = decodeBindParams(item.whole.subarray(HEADER_LENGTH))
        const d = routing.route(routing.classify(item.text!), item.text!, key(params))
        if (d.source === 'any') anywhere ??= d
        else first = sameShard(first, d)
      }
      return first ?? anywhere!
    }
    // a simple query (one text) or a function call's routing statement
    return routing.route(job.classification!, job.sql!, key())
  }

  /** The job replaced by one statement that makes the server raise the refusal (see {@link raiseSql}). */
  #raiseJob(job: Job, err: unknown): Job {
    const sql = raiseSql(err)
    const whole = query(sql)
    return {
      ...job,
      kind: 'simple',
      whole,
      items: null,
      sql,
      texts: null,
      syncs: 1,
      classification: this.#routing.classify(sql),
    }
  }
}
