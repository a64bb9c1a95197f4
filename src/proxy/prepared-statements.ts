// Prepared statements, one owner: the client's names (ClientStatements, per client session) and what
// each server connection holds (ServerStatementCache, per connection), and the translation between
// them when a batch goes out, with the bookkeeping its answers settle (ParseComplete / CloseComplete to
// swallow, Parses that failed, Closes the server skipped).

import { createHash } from 'node:crypto'
import {
  close as closeMessage,
  decodeBind,
  decodeClose,
  decodeDescribe,
  decodeParse,
  FrontendCode,
  parse as parseMessage,
  renameBind,
  renameDescribeOrClose,
  renameParse,
} from '../protocol/index.js'

// every message: 1 byte code, then int32 length that counts itself but not the code
const HEADER_LENGTH = 5
// A Parse of the empty query into the unnamed statement: stands in for a client Parse of a statement the
// server connection already has, so the client still gets its ParseComplete in the right place.
const EMPTY_PARSE = parseMessage('', '')
// Close of a name freshet never creates: stands in for a client's Close of a named statement (closing a
// nonexistent statement is not an error), so the client gets its CloseComplete in order.
const CLOSE_NOTHING = closeMessage('S', 'fr_none')

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
}

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
}

/** A prepared statement freshet closes to stay within the cache bound, with the Close that does it. */
export interface Evicted {
  readonly name: string
  readonly key: string
  readonly close: Buffer
}

/**
 * What one server connection holds: its named statements (name -> key, least recently used first,
 * bounded by `proxy.prepared_statement_cache_size`) and the Parse that defined its unnamed statement.
 * Kept on the connection because it describes that server session; changed only by ClientStatements.
 */
export class ServerStatementCache {
  readonly #prepared = new Map<string, string>()
  readonly #max: number
  /** The Parse message (identity) that defined the server's unnamed statement, or null. */
  unnamedParse: Buffer | null = null

  constructor(max: number) {
    this.#max = max
  }

  /** The statement the server has under `name`, as its key, or undefined; a hit marks it recently used. */
  keyOf(name: string): string | undefined {
    const key = this.#prepared.get(name)
    if (key === undefined) return undefined
    this.#prepared.delete(name)
    this.#prepared.set(name, key)
    return key
  }

  /** Records a statement being created under `name`; returns Close messages for the ones it evicts. */
  add(name: string, key: string): Evicted[] | null {
    this.#prepared.set(name, key)
    if (this.#prepared.size <= this.#max) return null
    const evicted: Evicted[] = []
    for (const [old, oldKey] of this.#prepared) {
      if (this.#prepared.size <= this.#max) break
      this.#prepared.delete(old)
      evicted.push({ name: old, key: oldKey, close: closeMessage('S', old) })
    }
    return evicted
  }

  /**
   * Puts back a statement whose eviction Close the server never ran (an error earlier in the batch made
   * it skip everything up to Sync): it is still there, and the next add() evicts it again.
   */
  restore(name: string, key: string): void {
    if (!this.#prepared.has(name)) this.#prepared.set(name, key)
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
}

interface CloseSlot {
  readonly swallow: boolean
  readonly evicted: Evicted | null
}

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
 * it for one connection, and the answers settle through `parseComplete()`, `closeComplete()` and
 * `settle()` at ReadyForQuery.
 *
 * @example
 * const item = statements.describe(FrontendCode.Bind, whole)
 * statements.send(item, conn); conn.flush()
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

  /** Decodes what routing and renaming need from one extended-protocol message, at the time it is sent. */
  describe(code: number, whole: Buffer): BatchItem {
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
        this.#named.set(m.name, stmt)
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

  /** Queues one message of a batch for `conn`, under the names the statements have there. */
  send(item: BatchItem, conn: StatementTarget): void {
    const stmt = item.stmt
    const cache = conn.statements
    switch (item.code) {
      case FrontendCode.Parse:
        if (stmt !== null) {
          if (this.#nameOn(stmt, cache) !== null) {
            conn.queue(EMPTY_PARSE)
            cache.unnamedParse = null
            this.#parseSlots.push(CLIENT_SLOT)
          } else this.#create(stmt, conn, false)
        } else {
          conn.queue(item.whole)
          cache.unnamedParse = item.whole
          this.#parseSlots.push(CLIENT_SLOT)
        }
        return
      case FrontendCode.Bind:
      case FrontendCode.Describe:
        if (stmt !== null) {
          const name = this.#nameOn(stmt, cache) ?? this.#create(stmt, conn, true)
          // the common case: the server knows it under the client's name, the message goes out as is
          if (name === stmt.clientName) conn.queue(item.whole)
          else if (item.code === FrontendCode.Bind) conn.queue(renameBind(item.whole, name))
          else conn.queue(renameDescribeOrClose(item.whole, name))
          return
        }
        if (item.statementTarget && item.unnamed === null) this.#unknownName(item, conn)
        if (item.statementTarget && item.unnamed !== null && cache.unnamedParse !== item.unnamed) {
          // the unnamed statement was parsed on another server connection: recreate it here
          conn.queue(item.unnamed)
          cache.unnamedParse = item.unnamed
          this.#parseSlots.push(INJECTED_UNNAMED_SLOT)
        }
        conn.queue(item.whole)
        return
      case FrontendCode.Close:
        if (item.statementTarget && item.whole.length > HEADER_LENGTH + 2) {
          // a named statement: only the client's mapping goes; the server keeps it for others
          conn.queue(CLOSE_NOTHING)
        } else {
          if (item.statementTarget) cache.unnamedParse = null
          conn.queue(item.whole)
        }
        this.#closeSlots.push(CLIENT_CLOSE)
        return
      default:
        conn.queue(item.whole)
    }
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
    conn.statements.forget(name)
    conn.queue(closeMessage('S', name))
    this.#closeSlots.push(SWALLOW_CLOSE)
  }

  /**
   * A simple Query on `conn`: it destroys the unnamed statement. For SQL PREPARE of a name that
   * another client's protocol statement holds on this connection (one namespace per server session),
   * queues the Close of that one first (its CloseComplete is ours) and returns true.
   */
  beforeSimpleQuery(conn: StatementTarget, prepareName: string | undefined): boolean {
    conn.statements.unnamedParse = null
    if (prepareName === undefined || conn.statements.keyOf(prepareName) === undefined) return false
    conn.statements.forget(prepareName)
    conn.queue(closeMessage('S', prepareName))
    this.#closeSlots.push(SWALLOW_CLOSE)
    return true
  }

  /** The name `cache` has `stmt` under (the client's own, else its key), or null when it lacks it. */
  #nameOn(stmt: Statement, cache: ServerStatementCache): string | null {
    if (cache.keyOf(stmt.clientName) === stmt.key) return stmt.clientName
    if (cache.keyOf(stmt.key) === stmt.key) return stmt.key
    return null
  }

  /**
   * Prepares `stmt` on `conn`: under the client's name when the server has nothing by that name (and
   * the name cannot be mistaken for a key), else under its key. `swallow`: freshet's own Parse, whose
   * ParseComplete the client must not see. Returns the name used.
   */
  #create(stmt: Statement, conn: StatementTarget, swallow: boolean): string {
    const own = conn.statements.keyOf(stmt.clientName) === undefined && !KEY_NAME.test(stmt.clientName)
    const name = own ? stmt.clientName : stmt.key
    const evicted = conn.statements.add(name, stmt.key)
    if (evicted !== null) {
      for (const e of evicted) {
        conn.queue(e.close)
        this.#closeSlots.push({ swallow: true, evicted: e })
      }
    }
    if (own) conn.queue(stmt.parse)
    else {
      stmt.keyed ??= renameParse(stmt.parse, stmt.key)
      conn.queue(stmt.keyed)
    }
    this.#parseSlots.push({ swallow, name })
    return name
  }

  /** A ParseComplete arrived: true when it answers freshet's own Parse (not forwarded). */
  parseComplete(): boolean {
    return this.#parseSlots.shift()?.swallow === true
  }

  /** A CloseComplete arrived: true when it answers freshet's own Close (not forwarded). */
  closeComplete(): boolean {
    return this.#closeSlots.shift()?.swallow === true
  }

  /**
   * The batch is over (ReadyForQuery): Parses that never completed failed, so their names are not on
   * the server; Closes that never completed were skipped after an error, so their statements still
   * are. After a failed batch the unnamed statement is unknown.
   */
  settle(cache: ServerStatementCache, failed: boolean): void {
    for (const slot of this.#parseSlots) if (slot.name !== null) cache.forget(slot.name)
    this.#parseSlots.length = 0
    for (const slot of this.#closeSlots)
      if (slot.evicted !== null) cache.restore(slot.evicted.name, slot.evicted.key)
    this.#closeSlots.length = 0
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
  }
}
