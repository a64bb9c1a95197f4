// Prepared statements, one owner: the client's names (ClientStatements, per client session) and what
// each server connection holds (ServerStatementCache, per connection), and the translation between
// them when a batch goes out, with the bookkeeping its answers settle (ParseComplete / CloseComplete /
// Describe answers to swallow, Parses that failed, Closes the server skipped), and the check that a
// statement re-created on a connection still has the row type the client was given (PostgreSQL's
// 0A000 "cached plan must not change result type" when it has not).

import { createHash } from 'node:crypto'
import {
  bind as bindMessage,
  close as closeMessage,
  decodeBind,
  decodeClose,
  decodeDescribe,
  decodeParse,
  describe as describeMessage,
  type ErrorFields,
  FrontendCode,
  parameterDescription,
  parse as parseMessage,
  renameBind,
  renameDescribeOrClose,
  renameParse,
} from '../protocol/index.js'
import {
  decodeColumnTypes,
  decodeParameterTypes,
  resultTypeChanged,
  type StatementShape,
  sameRowType,
  statementExists,
} from './statement-shape.js'

// every message: 1 byte code, then int32 length that counts itself but not the code
const HEADER_LENGTH = 5
// A statement name freshet never creates.
const NOTHING = 'fr_none'
// A Bind of it fails on the server (26000, naming it), which then skips the rest of the batch up to
// Sync as after any error; freshet answers the client PostgreSQL's 0A000 or 42P05 in its place.
const BIND_NOTHING = bindMessage('', NOTHING)
// A Close of it stands in for a client's Close of a named statement (closing a nonexistent statement is
// not an error), so the client gets its CloseComplete in order.
const CLOSE_NOTHING = closeMessage('S', NOTHING)

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
 * A client's named prepared statement. On a server connection it lives under the client's own name
 * when that name is free there or holds the same statement (then Parse and Bind go out byte for byte),
 * else under `key`, `fr_<hash of text and parameter types>`, shared by every client with that statement.
 */
export interface Statement {
  readonly text: string
  readonly clientName: string
  readonly key: string
  /** The client's Parse (a copy: the statement outlives the chunk). */
  readonly parse: Buffer
  /** The client's Parse renamed to `key`, made when first needed. */
  keyed: Buffer | null
  /**
   * Its parameter and result types as the server first described them after the client's Parse (null
   * until then): what the client was given, and what every copy on another connection must match.
   */
  shape: StatementShape | null
  /**
   * What became of the client's own Parse of it: `pending` until its ParseComplete (`ok`), `failed`
   * when its batch ended without one. A later Parse of the same name is PostgreSQL's 42P05 unless it
   * failed.
   */
  parsed: 'pending' | 'ok' | 'failed'
}

/** A statement on one server connection: its key and, once freshet's Describe came back, its shape. */
export interface ServerStatement {
  readonly key: string
  shape: StatementShape | null
}

/**
 * What {@link ClientStatements.send} did with a message: `sent`; `wait`: it needs the answer to
 * freshet's Describe (queued last) before it can go, so flush and send it again once
 * {@link ClientStatements.describing} is false; `mismatch`: the statement's row type changed, answer
 * with {@link ClientStatements.poison} instead.
 */
export type SendResult = 'sent' | 'wait' | 'mismatch'

/** One extended-protocol message of a batch, with what it refers to at the time it was sent. */
export interface BatchItem {
  readonly code: number
  readonly whole: Buffer
  /** Named statement it creates or uses. */
  readonly stmt: Statement | null
  /** For uses of the unnamed statement: the client's Parse that defined it. */
  readonly unnamed: Buffer | null
  /** Describe/Close of a statement ('S'), not a portal. */
  readonly statementTarget: boolean
  readonly text: string | null
  /** For a Parse of a named statement: the statement the client had under that name, if any. */
  readonly replaces?: Statement | null
}

/** A prepared statement freshet closes to stay within the cache bound, with the Close that does it. */
export interface Evicted {
  readonly name: string
  readonly entry: ServerStatement
  readonly close: Buffer
}

/**
 * What one server connection holds: its named statements (name -> key, least recently used first,
 * bounded by `proxy.prepared_statement_cache_size`) and the Parse that defined its unnamed statement.
 * Kept on the connection because it describes that server session; changed only by ClientStatements.
 */
export class ServerStatementCache {
  readonly #prepared = new Map<string, ServerStatement>()
  readonly #max: number
  /** The Parse message (identity) that defined the server's unnamed statement, or null. */
  unnamedParse: Buffer | null = null

  constructor(max: number) {
    this.#max = max
  }

  /** The statement the server has under `name`, as its key, or undefined; a hit marks it recently used. */
  keyOf(name: string): string | undefined {
    return this.entry(name)?.key
  }

  /** The statement the server has under `name`, or undefined; a hit marks it recently used. */
  entry(name: string): ServerStatement | undefined {
    const entry = this.#prepared.get(name)
    if (entry === undefined) return undefined
    this.#prepared.delete(name)
    this.#prepared.set(name, entry)
    return entry
  }

  /** Records a statement being created under `name`; returns Close messages for the ones it evicts. */
  add(name: string, entry: ServerStatement): Evicted[] | null {
    this.#prepared.set(name, entry)
    if (this.#prepared.size <= this.#max) return null
    const evicted: Evicted[] = []
    for (const [old, oldEntry] of this.#prepared) {
      if (this.#prepared.size <= this.#max) break
      this.#prepared.delete(old)
      evicted.push({ name: old, entry: oldEntry, close: closeMessage('S', old) })
    }
    return evicted
  }

  /**
   * Puts back a statement whose eviction Close the server never ran (an error earlier in the batch made
   * it skip everything up to Sync): it is still there, and the next add() evicts it again.
   */
  restore(name: string, entry: ServerStatement): void {
    if (!this.#prepared.has(name)) this.#prepared.set(name, entry)
  }

  /** Forgets a statement whose Parse failed, or that is being closed. */
  forget(name: string): void {
    this.#prepared.delete(name)
  }
}

interface ParseSlot {
  readonly swallow: boolean
  /** Server-side name created by this Parse: forgotten unless it completes. */
  readonly name: string | null
  /** The client's own Parse of this named statement (see Statement.parsed). */
  readonly stmt?: Statement
}

interface CloseSlot {
  readonly swallow: boolean
  readonly evicted: Evicted | null
}

/** A Describe sent in the running job: swallow its answer (freshet's own), and what it describes. */
interface DescribeSlot {
  readonly swallow: boolean
  /** freshet's Describe of a statement it created: its answer is that statement's shape. */
  readonly entry: ServerStatement | null
  /** The client statement the shape also becomes the first shape of, if it has none yet. */
  readonly stmt: Statement | null
}

const CLIENT_DESCRIBE: DescribeSlot = Object.freeze({ swallow: false, entry: null, stmt: null })
/** freshet's Describe queued only so that its answer says everything sent before it was answered. */
const BARRIER_DESCRIBE: DescribeSlot = Object.freeze({ swallow: true, entry: null, stmt: null })
const SWALLOW_CLOSE: CloseSlot = Object.freeze({ swallow: true, evicted: null })
const CLIENT_CLOSE: CloseSlot = Object.freeze({ swallow: false, evicted: null })
const CLIENT_SLOT: ParseSlot = Object.freeze({ swallow: false, name: null })
const INJECTED_UNNAMED_SLOT: ParseSlot = Object.freeze({ swallow: true, name: null })

/** Where translated messages go: the server connection's outgoing batch. */
export interface StatementTarget {
  readonly statements: ServerStatementCache
  queue(piece: Buffer): void
}

/**
 * A client's prepared statements and their translation onto whichever server connection runs its
 * batch. `describe()` reads a message as it arrives (names resolve at that moment), `send()` writes
 * it for one connection, and the answers settle through `parseComplete()`, `closeComplete()`,
 * `parameterDescription()`, `rowDescription()`, `serverError()` and `settle()` at ReadyForQuery.
 *
 * A named statement remembers the shape (parameter and result types) the server described after the
 * client's Parse. A copy on another connection is used only when it has the same row type; else it is
 * parsed again there with the remembered parameter types (so the server checks them as PostgreSQL
 * re-checks a cached plan), described, and, if the row type differs, the client gets PostgreSQL's
 * 0A000 instead of rows it would decode with the old types.
 *
 * @example
 * const item = statements.describe(FrontendCode.Bind, whole)
 * if (statements.send(item, conn, false) === 'sent') conn.flush()
 */
export class ClientStatements {
  readonly #named = new Map<string, Statement>()
  #lastUnnamedParse: Buffer | null = null
  #lastUnnamedText: string | null = null
  #parseSlots: ParseSlot[] = []
  /**
   * Per Close sent in the running job, in order: swallow its CloseComplete (freshet's own Close), and
   * for an eviction the statement it closes (restored if the server skipped the Close after an error).
   */
  #closeSlots: CloseSlot[] = []
  /** Per Describe sent in the running job, in order (the client's and freshet's). */
  #describeSlots: DescribeSlot[] = []
  /** Parameter types of the Describe being answered (a ParameterDescription comes before its row). */
  #pendingParams: number[] | null = null
  /** Statements parsed in the running job: their shape is the current schema's. */
  readonly #fresh = new Set<ServerStatement>()
  /**
   * freshet's failing Bind is in flight: its error becomes 0A000 (after a ParameterDescription for a
   * Describe), or 42P05 for a Parse of a name the client already has (`exists`).
   */
  #poison: { readonly params: readonly number[] | null; readonly exists: string | null } | null = null

  /** Decodes what routing and renaming need from one extended-protocol message, at the time it is sent. */
  describe(code: number, whole: Buffer): BatchItem {
    const body = whole.subarray(HEADER_LENGTH)
    switch (code) {
      case FrontendCode.Parse: {
        const last = this.#lastUnnamedParse
        if (last !== null && this.#lastUnnamedText !== null && last.equals(whole)) {
          // the unnamed statement parsed again byte for byte (a driver's every query): the text
          // decoded last time, the same string, so the classifier's lookup reuses its hash
          this.#lastUnnamedParse = whole
          const text = this.#lastUnnamedText
          return { code, whole, stmt: null, unnamed: whole, statementTarget: true, text }
        }
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
          shape: null,
          parsed: 'pending',
        }
        const replaces = this.#named.get(m.name) ?? null
        this.#named.set(m.name, stmt)
        return { code, whole, stmt, unnamed: null, statementTarget: true, text: m.query, replaces }
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
          } else this.#named.delete(t.name)
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
    const stmt = this.#named.get(name) ?? null
    return { code, whole, stmt, unnamed: null, statementTarget, text: stmt?.text ?? null }
  }

  /**
   * Queues one message of a batch for `conn`, under the names the statements have there (see
   * {@link SendResult}). `quiet`: everything queued before has been answered (the message is sent
   * again after a `wait`), so a failing Bind put here fails exactly this message.
   */
  send(item: BatchItem, conn: StatementTarget, quiet: boolean): SendResult {
    const stmt = item.stmt
    const cache = conn.statements
    switch (item.code) {
      case FrontendCode.Parse:
        // the client has that name already (its Parse succeeded, or is still to be answered: if that
        // one fails the server skips this too): PostgreSQL's 42P05 in place (see poison)
        if (stmt !== null && item.replaces != null && item.replaces.parsed !== 'failed') return 'mismatch'
        if (stmt !== null) this.#parseFresh(stmt, conn)
        else {
          conn.queue(item.whole)
          cache.unnamedParse = item.whole
          this.#parseSlots.push(CLIENT_SLOT)
        }
        return 'sent'
      case FrontendCode.Bind:
      case FrontendCode.Describe:
        if (stmt !== null) {
          const ready = this.#ensure(stmt, conn, quiet)
          if (ready !== 'sent') return ready
          const name = this.#nameOn(stmt, cache)!
          // the common case: the server knows it under the client's name, the message goes out as is
          if (name === stmt.clientName) conn.queue(item.whole)
          else if (item.code === FrontendCode.Bind) conn.queue(renameBind(item.whole, name))
          else conn.queue(renameDescribeOrClose(item.whole, name))
          if (item.code === FrontendCode.Describe) this.#describeSlots.push(CLIENT_DESCRIBE)
          return 'sent'
        }
        if (item.statementTarget && item.unnamed === null) this.#unknownName(item, conn)
        if (item.statementTarget && item.unnamed !== null && cache.unnamedParse !== item.unnamed) {
          // the unnamed statement was parsed on another server connection: recreate it here
          conn.queue(item.unnamed)
          cache.unnamedParse = item.unnamed
          this.#parseSlots.push(INJECTED_UNNAMED_SLOT)
        }
        conn.queue(item.whole)
        if (item.code === FrontendCode.Describe) this.#describeSlots.push(CLIENT_DESCRIBE)
        return 'sent'
      case FrontendCode.Close:
        if (item.statementTarget && item.whole.length > HEADER_LENGTH + 2) {
          // a named statement: only the client's mapping goes; the server keeps it for others
          conn.queue(CLOSE_NOTHING)
        } else {
          if (item.statementTarget) cache.unnamedParse = null
          conn.queue(item.whole)
        }
        this.#closeSlots.push(CLIENT_CLOSE)
        return 'sent'
      default:
        conn.queue(item.whole)
        return 'sent'
    }
  }

  /**
   * The client's Parse of a named statement: always parsed on the server, as the client asks, so it
   * gets the current schema's types (a copy the connection holds may be older than the schema; it is
   * closed first: one namespace per server session), then described by freshet to learn its shape.
   */
  #parseFresh(stmt: Statement, conn: StatementTarget): void {
    const old = this.#nameOn(stmt, conn.statements)
    if (old !== null) this.#closeCopy(old, conn)
    this.#create(stmt, conn, false, null)
  }

  /**
   * Makes sure `conn` has `stmt` with the row type the client was given before a Bind or Describe of
   * it goes out. A copy with the same row type is used as is; a statement the client has no shape for
   * yet (its Parse is in this batch) is created in the same write; otherwise the statement is parsed
   * again with the client's parameter types and described, and the message waits for that answer.
   */
  #ensure(stmt: Statement, conn: StatementTarget, quiet: boolean): SendResult {
    const cache = conn.statements
    const name = this.#nameOn(stmt, cache)
    const entry = name === null ? undefined : cache.entry(name)
    if (entry !== undefined && name !== null) {
      if (entry.shape === null && this.#fresh.has(entry)) {
        // parsed earlier in this batch: by this statement's own Parse, or its Describe is still to come
        if (stmt.shape === null) return 'sent'
        return this.#barrier(name, conn)
      }
      if (entry.shape !== null) {
        if (stmt.shape === null) {
          stmt.shape = entry.shape
          return 'sent'
        }
        if (sameRowType(entry.shape, stmt.shape)) return 'sent'
        // the copy has the current schema's row type, and it is not the client's
        if (this.#fresh.has(entry)) return quiet ? 'mismatch' : this.#barrier(name, conn)
      }
      this.#closeCopy(name, conn)
    } else if (stmt.shape === null) {
      this.#create(stmt, conn, true, null)
      return 'sent'
    }
    this.#create(stmt, conn, true, stmt.shape?.params ?? null)
    return 'wait'
  }

  /** Closes the copy the server has under `name` (freshet's Close: its CloseComplete is swallowed). */
  #closeCopy(name: string, conn: StatementTarget): void {
    conn.statements.forget(name)
    conn.queue(closeMessage('S', name))
    this.#closeSlots.push(SWALLOW_CLOSE)
  }

  /** Queues a Describe whose answer is swallowed: once it comes, all that was sent before is answered. */
  #barrier(name: string, conn: StatementTarget): SendResult {
    conn.queue(describeMessage('S', name))
    this.#describeSlots.push(BARRIER_DESCRIBE)
    return 'wait'
  }

  /**
   * Queues, in place of a Bind or Describe of a statement whose row type changed, a Bind the server
   * refuses: it skips the rest up to Sync (and fails an open transaction) as PostgreSQL does after its
   * 0A000, which {@link serverError} puts in place of the refusal.
   */
  poison(item: BatchItem, conn: StatementTarget): void {
    conn.queue(BIND_NOTHING)
    if (item.code === FrontendCode.Parse && item.stmt !== null) {
      // a Parse of a name the client has: the statement it had keeps the name, as in PostgreSQL
      const stmt = item.stmt
      if (this.#named.get(stmt.clientName) === stmt && item.replaces != null)
        this.#named.set(stmt.clientName, item.replaces)
      stmt.parsed = 'failed'
      this.#poison = { params: null, exists: stmt.clientName }
      return
    }
    // a Describe of a statement sends its ParameterDescription before PostgreSQL finds the change
    this.#poison = {
      params: item.code === FrontendCode.Describe ? (item.stmt?.shape?.params ?? []) : null,
      exists: null,
    }
  }

  /** freshet's own Describes are still to be answered (a `wait` goes on when they are). */
  get describing(): boolean {
    return this.#describeSlots.length > 0
  }

  /**
   * A Bind or Describe of a statement name the client has not prepared (or has closed). PostgreSQL
   * answers 26000 "prepared statement ... does not exist"; but the server connection may hold that
   * name for another client (freshet keeps statements past a client's Close). Then that copy is
   * closed first (its CloseComplete is ours) and forgotten, so the server gives the client the same
   * error it would give directly; others re-create it when they next use it. A name freshet never
   * made (an SQL PREPARE of this session, or nothing) goes to the server as it is.
   */
  #unknownName(item: BatchItem, conn: StatementTarget): void {
    const body = item.whole.subarray(HEADER_LENGTH)
    const name = item.code === FrontendCode.Bind ? decodeBind(body).statement : decodeDescribe(body).name
    if (name === '' || conn.statements.keyOf(name) === undefined) return
    this.#closeCopy(name, conn)
  }

  /**
   * A simple Query on `conn`: it destroys the unnamed statement. For SQL PREPARE of a name that
   * another client's protocol statement holds on this connection (one namespace per server session),
   * queues the Close of that one first (its CloseComplete is ours) and returns true.
   */
  beforeSimpleQuery(conn: StatementTarget, prepareName: string | undefined): boolean {
    conn.statements.unnamedParse = null
    if (prepareName === undefined || conn.statements.keyOf(prepareName) === undefined) return false
    this.#closeCopy(prepareName, conn)
    return true
  }

  /** The name `cache` has `stmt` under (the client's own, else its key), or null when it lacks it. */
  #nameOn(stmt: Statement, cache: ServerStatementCache): string | null {
    if (cache.keyOf(stmt.clientName) === stmt.key) return stmt.clientName
    if (cache.keyOf(stmt.key) === stmt.key) return stmt.key
    return null
  }

  /**
   * Prepares `stmt` on `conn` and describes it (freshet's Describe: its answer is the statement's
   * shape there): under the client's name when the server has nothing by that name (and the name
   * cannot be mistaken for a key), else under its key. `swallow`: freshet's own Parse, whose
   * ParseComplete the client must not see. `params`: the parameter types to parse it with (the ones
   * the client was given), else the client's Parse goes as it is.
   */
  #create(stmt: Statement, conn: StatementTarget, swallow: boolean, params: readonly number[] | null): void {
    const own = conn.statements.keyOf(stmt.clientName) === undefined && !KEY_NAME.test(stmt.clientName)
    const name = own ? stmt.clientName : stmt.key
    const entry: ServerStatement = { key: stmt.key, shape: null }
    const evicted = conn.statements.add(name, entry)
    if (evicted !== null) {
      for (const e of evicted) {
        conn.queue(e.close)
        this.#closeSlots.push({ swallow: true, evicted: e })
      }
    }
    if (params !== null) conn.queue(parseMessage(name, stmt.text, params))
    else if (own) conn.queue(stmt.parse)
    else {
      stmt.keyed ??= renameParse(stmt.parse, stmt.key)
      conn.queue(stmt.keyed)
    }
    this.#parseSlots.push(swallow ? { swallow, name } : { swallow, name, stmt })
    conn.queue(describeMessage('S', name))
    this.#describeSlots.push({ swallow: true, entry, stmt })
    this.#fresh.add(entry)
  }

  /** A ParseComplete arrived: true when it answers freshet's own Parse (not forwarded). */
  parseComplete(): boolean {
    const slot = this.#parseSlots.shift()
    if (slot?.stmt !== undefined) slot.stmt.parsed = 'ok'
    return slot?.swallow === true
  }

  /** A CloseComplete arrived: true when it answers freshet's own Close (not forwarded). */
  closeComplete(): boolean {
    return this.#closeSlots.shift()?.swallow === true
  }

  /** A ParameterDescription arrived (`body`): true when it answers freshet's own Describe. */
  parameterDescription(body: Buffer): boolean {
    const slot = this.#describeSlots[0]
    if (slot === undefined) return false
    if (slot.entry !== null) this.#pendingParams = decodeParameterTypes(body)
    return slot.swallow
  }

  /**
   * A RowDescription (`body`) or NoData (null) arrived, the end of a Describe's answer: records the
   * shape freshet asked for; true when it answers freshet's own Describe (not forwarded).
   */
  rowDescription(body: Buffer | null): boolean {
    const slot = this.#describeSlots.shift()
    if (slot === undefined) return false
    if (slot.entry !== null) {
      const shape: StatementShape = {
        params: this.#pendingParams ?? [],
        columns: body === null ? null : decodeColumnTypes(body),
      }
      slot.entry.shape = shape
      if (slot.stmt !== null && slot.stmt.shape === null) slot.stmt.shape = shape
    }
    this.#pendingParams = null
    return slot.swallow
  }

  /**
   * An ErrorResponse (`fields`) arrived: the server skips everything up to Sync, so no Describe still
   * in flight is answered. Returns what the client gets in its place when it refuses freshet's failing
   * Bind (PostgreSQL's 0A000), else null (the server's error goes to the client).
   */
  serverError(fields: ErrorFields | null): Buffer | null {
    this.#describeSlots.length = 0
    this.#pendingParams = null
    const poison = this.#poison
    if (poison === null) return null
    this.#poison = null
    // an earlier message of the batch failed: the server skips freshet's Bind, and this error is real
    if (fields?.code !== '26000' || !fields.message.includes(NOTHING)) return null
    const error = poison.exists !== null ? statementExists(poison.exists, fields) : resultTypeChanged(fields)
    return poison.params === null ? error : Buffer.concat([parameterDescription(poison.params), error])
  }

  /**
   * The batch is over (ReadyForQuery): Parses that never completed failed, so their names are not on
   * the server; Closes that never completed were skipped after an error, so their statements still
   * are. After a failed batch the unnamed statement is unknown.
   */
  settle(cache: ServerStatementCache, failed: boolean): void {
    for (const slot of this.#parseSlots) {
      if (slot.name !== null) cache.forget(slot.name)
      const stmt = slot.stmt
      if (stmt === undefined) continue
      // the client's Parse failed: as in PostgreSQL, it has no statement by that name now
      stmt.parsed = 'failed'
      if (this.#named.get(stmt.clientName) === stmt) this.#named.delete(stmt.clientName)
    }
    for (const slot of this.#closeSlots)
      if (slot.evicted !== null) cache.restore(slot.evicted.name, slot.evicted.entry)
    this.reset()
    if (failed) cache.unnamedParse = null
  }

  /**
   * A read cancelled by a recovery conflict moves elsewhere: what its Parses created is forgotten on
   * the connection it leaves, which goes back to the pool clean.
   */
  abandon(cache: ServerStatementCache): void {
    for (const slot of this.#parseSlots) if (slot.name !== null) cache.forget(slot.name)
    cache.unnamedParse = null
    this.reset()
  }

  /** Forgets what was in flight on a server connection that is gone. */
  reset(): void {
    this.#parseSlots.length = 0
    this.#closeSlots.length = 0
    this.#describeSlots.length = 0
    this.#pendingParams = null
    this.#fresh.clear()
    this.#poison = null
  }
}
