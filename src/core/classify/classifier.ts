// The statement classifier: PostgreSQL's own parser (libpg-query, WASM) behind a two-level cache, plus rules.

import { loadModule, parseSync } from 'libpg-query'
import { FreshetError } from '../errors.js'
import { NO_HINTS } from '../hints/hints.js'
import { lexHints, stripComments } from '../hints/lex-hints.js'
import type {
  Classification,
  ClassReason,
  PinReason,
  SettingChange,
  StatementKind,
  TransactionAction,
  TransactionInfo,
} from './classification.js'
import type { WriteFunctionEffect } from './function-lists.js'
import { BUILTIN_READ_ONLY_FUNCTIONS, BUILTIN_WRITE_FUNCTIONS } from './function-lists.js'
import { LruCache } from './lru-cache.js'
import { fingerprint, normalizeSql } from './normalize-sql.js'

/** A ProxySQL-style rule: the first match (highest priority) decides. */
export interface ClassifierRule {
  /**
   * A JavaScript regular expression, matched case-insensitively with `.` matching newlines (flags `is`)
   * against the text with comments removed and leading whitespace trimmed.
   */
  pattern: string
  /** 'route_replica' | 'route_primary' | 'tier:<name>' */
  action: string
  priority: number
}

export interface ClassifierOptions {
  /** Extra functions that write (schema-qualified or not, case-insensitive): `routing.write_functions`. */
  writeFunctions?: readonly string[]
  /** Extra functions known to be read-only: never reported in `functions`. */
  readOnlyFunctions?: readonly string[]
  /** 'ast' (default): the parser; 'regex': rules only (see `classify`); 'hybrid': rules, then the parser. */
  engine?: 'ast' | 'regex' | 'hybrid'
  rules?: readonly ClassifierRule[]
  /** Entries in each of the two caches (exact text, normalised text). Default 10000. */
  cacheSize?: number
}

// biome-ignore lint/suspicious/noExplicitAny: libpg-query's JSON parse tree, walked generically
type Node = any

interface CompiledRule {
  readonly re: RegExp
  readonly rule: { readonly action: string; readonly pattern: string }
}

/** A normalised-cache entry: the class without hints, and how many texts missed the exact cache into it. */
interface SharedClass {
  readonly template: Classification
  texts: number
}

/** Per-statement facts gathered while walking the tree. */
interface StmtClass {
  kind: StatementKind
  reason: ClassReason
  pin?: PinReason
  unpin?: PinReason | 'all'
  transaction?: TransactionInfo
  settings?: SettingChange[]
  prepare?: { name: string; inner: Classification }
  execute?: { name: string }
  deallocate?: { name: string | null }
  channel?: string | null
}

/** What one walk over a statement's expressions found. */
interface Found {
  tables: Set<string>
  functions: Set<string>
  ctes: Set<string>
  nestedDml: boolean
  locking: boolean
  writeFn?: WriteFunctionEffect
}

const KIND_RANK: Readonly<Record<StatementKind, number>> = {
  read: 0,
  session: 1,
  transaction: 2,
  write: 3,
  unknown: 4,
}
const DML = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt'])
// statements whose class cannot depend on a literal's value: safe to share through the normalised cache
const LITERAL_FREE = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt'])
const CURSOR_OPT_HOLD = 0x20
const MAX_CACHED_LENGTH = 16384
/**
 * Distinct texts seen through one normalised entry after which its texts no longer enter the exact
 * cache: a statement with inlined literals (`WHERE id = 8123`) rarely repeats a text, and each insert
 * costs a set and an eviction that push out texts that do repeat.
 */
const VARYING_TEXTS = 32
const TX_ACTIONS: Readonly<Record<string, TransactionAction>> = {
  TRANS_STMT_BEGIN: 'begin',
  TRANS_STMT_START: 'begin',
  TRANS_STMT_COMMIT: 'commit',
  TRANS_STMT_ROLLBACK: 'rollback',
  TRANS_STMT_SAVEPOINT: 'savepoint',
  TRANS_STMT_RELEASE: 'release',
  TRANS_STMT_ROLLBACK_TO: 'rollback_to',
  TRANS_STMT_PREPARE: 'prepare',
  TRANS_STMT_COMMIT_PREPARED: 'commit_prepared',
  TRANS_STMT_ROLLBACK_PREPARED: 'rollback_prepared',
}
const SESSION_KEYWORDS = new Set([
  'begin', 'start', 'commit', 'end', 'rollback', 'abort', 'savepoint', 'release', 'prepare', 'set', 'reset',
  'discard', 'listen', 'unlisten', 'deallocate', 'declare', 'close', 'fetch', 'move', 'execute',
]) // biome-ignore format: a word list

let parserLoaded = false

/**
 * Classifies SQL text into a frozen {@link Classification}: what kind of statement it is, why it needs the
 * primary (if it does), the tables and functions it touches, the session state it creates or releases, and
 * the hints in its comments. Synchronous and cached; the WASM parser must be loaded once first
 * (`await Classifier.loadParser()`, or build with `await Classifier.create(options)`).
 *
 * Two caches, both bounded (approximate LRU, see {@link LruCache}): by exact text, then by normalised text (literals, comments and whitespace
 * folded), so an ORM that inlines literals or a sqlcommenter `traceparent` that changes per request costs
 * one scan rather than one parse; once 32 distinct texts came through one normalised entry, its texts stop
 * entering the exact cache (inlined literals rarely repeat, and each insert evicts a text that might). Hints always come from the actual text, and statements whose class can
 * depend on a literal (SET values among them) are never shared through the normalised cache.
 *
 * Multi-statement strings: `kind`/`reason` come from the strictest statement (write > transaction >
 * session > read; the first one of that rank gives the reason), `tables`/`functions`/`settings` are merged,
 * `pin` is the first pin and `unpin` the last, `transaction` is the last transaction-control statement
 * (its net effect on the session) and `transactions` lists all of them in order.
 *
 * @example
 * const classifier = await Classifier.create({ writeFunctions: ['audit.log_event'] })
 * classifier.classify('SELECT * FROM orders FOR UPDATE').reason // 'locking_read'
 */
export class Classifier {
  readonly #engine: 'ast' | 'regex' | 'hybrid'
  readonly #rules: readonly CompiledRule[]
  readonly #writeFns: ReadonlySet<string>
  readonly #readFns: ReadonlySet<string>
  readonly #exact: LruCache<Classification>
  readonly #normalized: LruCache<SharedClass>
  /** Set by #parsed: the text went through a normalised entry with varying literals (see VARYING_TEXTS). */
  #varying = false

  /**
   * @throws FreshetError (FRESHET_CONFIG_INVALID) naming the rule index when a rule's pattern or action is bad.
   */
  constructor(options: ClassifierOptions = {}) {
    this.#engine = options.engine ?? 'ast'
    const cacheSize = Math.max(0, options.cacheSize ?? 10000)
    this.#exact = new LruCache(cacheSize)
    this.#normalized = new LruCache(cacheSize)
    this.#writeFns = new Set((options.writeFunctions ?? []).map((f) => f.toLowerCase()))
    this.#readFns = new Set((options.readOnlyFunctions ?? []).map((f) => f.toLowerCase()))
    this.#rules = compileRules(options.rules ?? [])
  }

  /** Loads libpg-query's WASM module once per process; needed before the first `classify`. */
  static async loadParser(): Promise<void> {
    if (parserLoaded) return
    await loadModule()
    parserLoaded = true
  }

  /**
   * Loads the parser, then builds a classifier.
   *
   * @example
   * const classifier = await Classifier.create({ engine: 'hybrid', rules: [{ pattern: '^SELECT .* FROM reports', action: 'tier:eventual', priority: 10 }] })
   */
  static async create(options: ClassifierOptions = {}): Promise<Classifier> {
    await Classifier.loadParser()
    return new Classifier(options)
  }

  /**
   * Builds a classifier without waiting for the parser: for callers that load it elsewhere
   * (`await Classifier.loadParser()` before the first `classify`). Same as `new Classifier(options)`.
   */
  static createSync(options: ClassifierOptions = {}): Classifier {
    return new Classifier(options)
  }

  /** Entries currently held by the exact-text and normalised-text caches. */
  get cacheStats(): { exact: number; normalized: number } {
    return { exact: this.#exact.size, normalized: this.#normalized.size }
  }

  /**
   * Classifies one SQL string (which may hold several statements). Returns a deeply frozen value; the
   * same text returns the same object while it stays in the cache.
   *
   * With engine 'regex', a statement no rule matches is classified by the parser only when its first
   * keyword is transaction or session control (BEGIN, COMMIT, SET, LISTEN, PREPARE, ...: the session
   * state machine must see those); anything else is `kind: 'unknown'`, reason `no_rule_match`, and goes
   * to the primary. That is the write-safe default: the regex engine never guesses that text is a read.
   *
   * @example
   * classifier.classify("/* FRESHNESS: eventual *\/ SELECT * FROM users WHERE id = 7")
   * // { kind: 'read', reason: 'read', requiresPrimary: false, tables: ['users'], hints: { freshness: 'eventual' }, ... }
   */
  classify(sql: string): Classification {
    const hit = this.#exact.get(sql)
    if (hit !== undefined) return hit
    this.#varying = false
    const result = this.#classifyUncached(sql)
    if (sql.length <= MAX_CACHED_LENGTH && !this.#varying) this.#exact.set(sql, result)
    return result
  }

  #classifyUncached(sql: string): Classification {
    if (this.#rules.length > 0 && this.#engine !== 'ast') {
      // rules see the text without comments (a leading hint must not defeat `^SELECT`)
      const text = stripComments(sql).trimStart()
      for (const r of this.#rules) {
        if (!r.re.test(text)) continue
        // hybrid: a rule that lets a statement go to a replica still has to pass the parser's write
        // check (a `^SELECT` rule must not send SELECT ... FOR UPDATE or nextval() to a replica); the
        // parsed class carries the rule, and the decider applies it only to reads
        if (this.#engine === 'hybrid' && r.rule.action !== 'route_primary') {
          return Object.freeze({ ...this.#parsed(sql), rule: r.rule })
        }
        return this.#fromRule(sql, r)
      }
    }
    if (this.#engine === 'regex' && !SESSION_KEYWORDS.has(firstKeyword(sql))) {
      const normalized = normalizeSql(sql)
      return deepFreeze({
        kind: 'unknown',
        reason: 'no_rule_match',
        requiresPrimary: true,
        tables: [],
        functions: [],
        hints: lexHints(sql),
        statementCount: 1,
        fingerprint: fingerprint(normalized),
      } satisfies Classification)
    }
    return this.#parsed(sql)
  }

  /** The parser's classification, through the normalized-text cache. */
  #parsed(sql: string): Classification {
    const normalized = normalizeSql(sql)
    const entry = this.#normalized.get(normalized)
    if (entry !== undefined) {
      // counts exact-cache misses through this entry, which are distinct texts while they stay cached
      if (++entry.texts > VARYING_TEXTS) this.#varying = true
      const shared = entry.template
      const hints = lexHints(sql)
      return hints === NO_HINTS ? shared : Object.freeze({ ...shared, hints })
    }
    const { result, literalFree } = this.#parseAndClassify(sql, normalized)
    if (literalFree && normalized.length <= MAX_CACHED_LENGTH) {
      const template = result.hints === NO_HINTS ? result : Object.freeze({ ...result, hints: NO_HINTS })
      this.#normalized.set(normalized, { template, texts: 1 })
    }
    return result
  }

  #fromRule(sql: string, r: CompiledRule): Classification {
    const primary = r.rule.action === 'route_primary'
    return deepFreeze({
      kind: primary ? 'write' : 'read',
      reason: primary ? 'rule' : 'read',
      requiresPrimary: primary,
      tables: [],
      functions: [],
      hints: lexHints(sql),
      statementCount: 1,
      fingerprint: fingerprint(normalizeSql(sql)),
      rule: r.rule,
    } satisfies Classification)
  }

  #parseAndClassify(sql: string, normalized: string): { result: Classification; literalFree: boolean } {
    if (!parserLoaded) {
      throw new Error(
        'freshet: the SQL parser is not loaded: await Classifier.loadParser() (or Classifier.create())',
      )
    }
    const hints = lexHints(sql)
    const fp = fingerprint(normalized)
    let tree: Node
    try {
      tree = sql.trim() === '' ? { stmts: [] } : parseSync(sql)
    } catch (err) {
      const result = deepFreeze({
        kind: 'unknown',
        reason: 'unparsable',
        requiresPrimary: true,
        tables: [],
        functions: [],
        hints,
        statementCount: 0,
        parseError: err instanceof Error ? err.message : String(err),
        fingerprint: fp,
      } satisfies Classification)
      return { result, literalFree: false }
    }
    const stmts: Node[] = tree.stmts ?? []
    const tables = new Set<string>()
    const functions = new Set<string>()
    let best: StmtClass | null = null
    let pin: PinReason | undefined
    let unpin: PinReason | 'all' | undefined
    const transactions: TransactionInfo[] = []
    let settings: SettingChange[] | undefined
    let literalFree = true
    let single: StmtClass | null = null
    for (const raw of stmts) {
      const stmt = raw.stmt ?? {}
      const type = Object.keys(stmt)[0] ?? ''
      if (!LITERAL_FREE.has(type)) literalFree = false
      const found = newFound()
      const c = this.#classifyStmt(type, stmt[type] ?? {}, found)
      for (const t of tablesOf(found)) tables.add(t)
      for (const f of found.functions) functions.add(f)
      single = c
      if (best === null || KIND_RANK[c.kind] > KIND_RANK[best.kind]) best = c
      pin ??= c.pin
      if (c.unpin !== undefined) unpin = c.unpin
      if (c.transaction !== undefined) transactions.push(c.transaction)
      if (c.settings !== undefined)
        settings = settings === undefined ? c.settings : [...settings, ...c.settings]
    }
    const kind = best?.kind ?? 'read'
    const out: { -readonly [K in keyof Classification]: Classification[K] } = {
      kind,
      reason: best?.reason ?? 'read',
      requiresPrimary: kind !== 'read',
      tables: [...tables],
      functions: [...functions],
      hints,
      statementCount: stmts.length,
      fingerprint: fp,
    }
    if (transactions.length > 0) {
      out.transaction = transactions[transactions.length - 1]
      if (stmts.length > 1) out.transactions = transactions
    }
    if (pin !== undefined) out.pin = pin
    if (unpin !== undefined) out.unpin = unpin
    if (settings !== undefined) out.settings = settings
    if (stmts.length === 1 && single !== null) {
      if (single.prepare !== undefined) out.prepare = single.prepare
      if (single.execute !== undefined) out.execute = single.execute
      if (single.deallocate !== undefined) out.deallocate = single.deallocate
      if (single.channel !== undefined) out.channel = single.channel
    }
    return { result: deepFreeze(out), literalFree }
  }

  /** Classifies one top-level statement node; collects tables and functions into `found`. */
  #classifyStmt(type: string, node: Node, found: Found): StmtClass {
    switch (type) {
      case 'SelectStmt': {
        this.#walk(node, found)
        if (node.intoClause) return { kind: 'write', reason: 'select_into', ...tempPin(node.intoClause.rel) }
        return this.#queryClass(found)
      }
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt':
        this.#walk(node, found)
        return { kind: 'write', reason: 'dml', ...this.#fnEffects(found) }
      case 'ExplainStmt': {
        const analyze = (node.options ?? []).some(
          (o: Node) => o.DefElem?.defname === 'analyze' && defTrue(o.DefElem.arg),
        )
        const innerType = Object.keys(node.query ?? {})[0] ?? ''
        if (!analyze) {
          // not executed: only the tables matter (for domains); functions are not called
          const scratch = newFound()
          this.#classifyStmt(innerType, node.query[innerType], scratch)
          for (const t of tablesOf(scratch)) found.tables.add(t)
          return { kind: 'read', reason: 'read' }
        }
        const inner = this.#classifyStmt(innerType, node.query[innerType], found)
        return inner.kind === 'read'
          ? { kind: 'read', reason: 'read' }
          : { kind: 'write', reason: 'explain_analyze_write', ...(inner.pin ? { pin: inner.pin } : {}) }
      }
      case 'VariableShowStmt':
        return { kind: 'read', reason: 'read' }
      case 'TransactionStmt': {
        const action = TX_ACTIONS[node.kind] ?? 'begin'
        const readOnly = readOnlyOption(node.options)
        return {
          kind: 'transaction',
          reason: 'transaction_control',
          transaction: readOnly === undefined ? { action } : { action, readOnly },
        }
      }
      case 'VariableSetStmt':
        return setClass(node)
      case 'PrepareStmt': {
        const innerType = Object.keys(node.query ?? {})[0] ?? ''
        const scratch = newFound()
        const inner = this.#classifyStmt(innerType, node.query[innerType], scratch)
        for (const t of scratch.tables) found.tables.add(t)
        const innerResult = deepFreeze({
          kind: inner.kind,
          reason: inner.reason,
          requiresPrimary: inner.kind !== 'read',
          tables: tablesOf(scratch),
          functions: [...scratch.functions],
          hints: NO_HINTS,
          statementCount: 1,
          ...(inner.pin ? { pin: inner.pin } : {}),
        } satisfies Classification)
        return {
          kind: 'session',
          reason: 'session_state',
          pin: 'prepared_statement',
          prepare: { name: String(node.name ?? '').toLowerCase(), inner: innerResult },
        }
      }
      case 'ExecuteStmt':
        return {
          kind: 'write',
          reason: 'execute_write',
          execute: { name: String(node.name ?? '').toLowerCase() },
        }
      case 'DeallocateStmt':
        return node.isall || node.name === undefined
          ? {
              kind: 'session',
              reason: 'session_state',
              unpin: 'prepared_statement',
              deallocate: { name: null },
            }
          : {
              kind: 'session',
              reason: 'session_state',
              deallocate: { name: String(node.name).toLowerCase() },
            }
      case 'ListenStmt':
        return {
          kind: 'session',
          reason: 'session_state',
          pin: 'listen',
          channel: node.conditionname ?? null,
        }
      case 'UnlistenStmt':
        // only UNLISTEN * certainly releases the pin; UNLISTEN ch reports its channel for the caller to count
        return node.conditionname === undefined
          ? { kind: 'session', reason: 'session_state', unpin: 'listen', channel: null }
          : { kind: 'session', reason: 'session_state', channel: node.conditionname }
      case 'NotifyStmt':
        return { kind: 'write', reason: 'notify', channel: node.conditionname ?? null }
      case 'CopyStmt': {
        this.#walk(node, found)
        if (node.is_from) return { kind: 'write', reason: 'copy_from' }
        if (found.nestedDml) return { kind: 'write', reason: 'dml' }
        return this.#queryClass(found)
      }
      case 'CallStmt':
        this.#walk(node.funccall?.args, found)
        return { kind: 'write', reason: 'call' }
      case 'DoStmt':
        return { kind: 'write', reason: 'do' }
      case 'LockStmt':
        this.#walk(node, found)
        return { kind: 'write', reason: 'lock' }
      case 'DeclareCursorStmt': {
        const innerType = Object.keys(node.query ?? {})[0] ?? ''
        const inner = this.#classifyStmt(innerType, node.query?.[innerType] ?? {}, found)
        const hold = ((node.options ?? 0) & CURSOR_OPT_HOLD) !== 0
        if (inner.kind !== 'read') return { ...inner, ...(hold ? { pin: 'cursor_with_hold' } : {}) }
        return hold ? { kind: 'session', reason: 'session_state', pin: 'cursor_with_hold' } : inner
      }
      case 'FetchStmt':
        return { kind: 'read', reason: 'read' }
      case 'ClosePortalStmt':
        return node.portalname === undefined
          ? { kind: 'session', reason: 'session_state', unpin: 'cursor_with_hold' }
          : { kind: 'session', reason: 'session_state' }
      case 'DiscardStmt': {
        const unpin =
          node.target === 'DISCARD_ALL' ? 'all' : node.target === 'DISCARD_TEMP' ? 'temp_table' : undefined
        return unpin
          ? { kind: 'session', reason: 'session_state', unpin }
          : { kind: 'session', reason: 'session_state' }
      }
      case 'LoadStmt':
        return { kind: 'session', reason: 'session_state', pin: 'session_set' }
      case 'CreateTableAsStmt': {
        this.#walk(node, found)
        const temp = tempPin(node.into?.rel)
        return node.objtype === 'OBJECT_MATVIEW'
          ? { kind: 'write', reason: 'ddl' }
          : { kind: 'write', reason: 'select_into', ...temp }
      }
      case 'CreateStmt':
      case 'ViewStmt':
      case 'CreateSeqStmt': {
        this.#walk(node, found)
        return { kind: 'write', reason: 'ddl', ...tempPin(node.relation ?? node.view ?? node.sequence) }
      }
      default:
        // everything else the grammar accepts changes the catalog or the cluster: CREATE / ALTER / DROP /
        // TRUNCATE / GRANT / COMMENT / VACUUM / ANALYZE / REINDEX / CLUSTER / REFRESH / CHECKPOINT ...
        this.#walk(node, found)
        return { kind: 'write', reason: 'ddl' }
    }
  }

  /** Class of a query (SELECT, COPY TO) from what its walk found. */
  #queryClass(found: Found): StmtClass {
    if (found.nestedDml) return { kind: 'write', reason: 'dml_in_cte', ...this.#fnEffects(found) }
    if (found.locking) return { kind: 'write', reason: 'locking_read', ...this.#fnEffects(found) }
    if (found.writeFn !== undefined) {
      return {
        kind: 'write',
        reason: found.writeFn === 'notify' ? 'notify' : 'write_function',
        ...this.#fnEffects(found),
      }
    }
    return { kind: 'read', reason: 'read' }
  }

  #fnEffects(found: Found): { pin?: PinReason; unpin?: PinReason } {
    switch (found.writeFn) {
      case 'advisory_lock':
        return { pin: 'advisory_lock' }
      case 'advisory_unlock_all':
        return { unpin: 'advisory_lock' }
      case 'session_set':
        return { pin: 'session_set' }
      default:
        return {}
    }
  }

  /** Walks any subtree: tables, function calls, CTE names, nested DML and locking clauses. */
  #walk(node: Node, found: Found): void {
    if (node === null || typeof node !== 'object') return
    if (Array.isArray(node)) {
      for (const item of node) this.#walk(item, found)
      return
    }
    if (typeof node.relname === 'string') {
      // a RangeVar (wrapped or not)
      const name = node.schemaname ? `${node.schemaname}.${node.relname}` : node.relname
      found.tables.add(name.toLowerCase())
      return
    }
    for (const key in node) {
      const value = node[key]
      if (typeof value !== 'object' || value === null) continue
      if (key === 'FuncCall') this.#onFuncCall(value, found)
      else if (key === 'LockingClause') found.locking = true
      else if (key === 'CommonTableExpr' && typeof value.ctename === 'string')
        found.ctes.add(value.ctename.toLowerCase())
      else if (DML.has(key)) found.nestedDml = true
      this.#walk(value, found)
    }
  }

  #onFuncCall(call: Node, found: Found): void {
    // SQL-syntax forms (EXTRACT, SUBSTRING ... FROM, OVERLAY, ...) are built-ins with no side effects
    if (call.funcformat === 'COERCE_SQL_SYNTAX') return
    const parts: Node[] = call.funcname ?? []
    const base = String(parts[parts.length - 1]?.String?.sval ?? '').toLowerCase()
    const schema = parts.length > 1 ? String(parts[parts.length - 2]?.String?.sval ?? '').toLowerCase() : ''
    const qualified = schema === '' ? base : `${schema}.${base}`
    const userWrite = this.#writeFns.has(qualified) || this.#writeFns.has(base)
    const builtin = schema === '' || schema === 'pg_catalog' ? BUILTIN_WRITE_FUNCTIONS.get(base) : undefined
    if (builtin !== undefined || userWrite) {
      const effect: WriteFunctionEffect = builtin ?? 'write'
      // keep the most consequential effect: a pin or unpin beats a plain write
      if (found.writeFn === undefined || found.writeFn === 'write') found.writeFn = effect
      return
    }
    if (schema === '' || schema === 'pg_catalog') {
      if (BUILTIN_READ_ONLY_FUNCTIONS.has(base)) return
    }
    if (this.#readFns.has(qualified) || this.#readFns.has(base)) return
    found.functions.add(qualified)
  }
}

function newFound(): Found {
  return { tables: new Set(), functions: new Set(), ctes: new Set(), nestedDml: false, locking: false }
}

/** Tables found, without references to the statement's own CTE names. */
function tablesOf(found: Found): string[] {
  if (found.ctes.size === 0) return [...found.tables]
  return [...found.tables].filter((t) => !found.ctes.has(t))
}

function tempPin(rel: Node): { pin?: PinReason } {
  return rel?.relpersistence === 't' ? { pin: 'temp_table' } : {}
}

/** EXPLAIN option value: absent means true; false / off / 0 mean false. */
function defTrue(arg: Node): boolean {
  if (arg === undefined) return true
  if (arg.String) return !['false', 'off', 'no', '0'].includes(String(arg.String.sval).toLowerCase())
  if (arg.Integer) return (arg.Integer.ival ?? 0) !== 0
  if (arg.Boolean) return arg.Boolean.boolval === true
  return true
}

/** transaction_read_only DefElem among BEGIN / SET TRANSACTION options. */
function readOnlyOption(options: Node): boolean | undefined {
  for (const o of options ?? []) {
    const d = o.DefElem
    if (d?.defname === 'transaction_read_only') return (d.arg?.A_Const?.ival?.ival ?? 0) !== 0
  }
  return undefined
}

function setClass(node: Node): StmtClass {
  if (node.kind === 'VAR_SET_MULTI' && node.name === 'TRANSACTION') {
    const readOnly = readOnlyOption(node.args)
    return {
      kind: 'transaction',
      reason: 'transaction_control',
      transaction:
        readOnly === undefined ? { action: 'set_transaction' } : { action: 'set_transaction', readOnly },
    }
  }
  if (node.kind === 'VAR_SET_MULTI') {
    // SET SESSION CHARACTERISTICS AS TRANSACTION ...: session state
    return { kind: 'session', reason: 'session_state', pin: 'session_set' }
  }
  const local = node.is_local === true
  const name = node.kind === 'VAR_RESET_ALL' ? 'all' : String(node.name ?? '').toLowerCase()
  const value = node.kind === 'VAR_SET_VALUE' ? settingValue(node.args) : null
  const setting: SettingChange =
    node.kind === 'VAR_RESET' ? { name, value, local, reset: true } : { name, value, local }
  const own = name.startsWith('freshet.')
  if (node.kind === 'VAR_RESET_ALL')
    return { kind: 'session', reason: 'session_state', settings: [setting], unpin: 'session_set' }
  const pins = !local && !own && node.kind !== 'VAR_RESET' && node.kind !== 'VAR_SET_DEFAULT'
  return pins
    ? { kind: 'session', reason: 'session_state', settings: [setting], pin: 'session_set' }
    : { kind: 'session', reason: 'session_state', settings: [setting] }
}

function settingValue(args: Node): string | null {
  const parts: string[] = []
  for (const a of args ?? []) {
    const c = a.A_Const ?? a.TypeCast?.arg?.A_Const
    if (c === undefined) continue
    if (c.sval) parts.push(String(c.sval.sval ?? ''))
    else if (c.ival) parts.push(String(c.ival.ival ?? 0))
    else if (c.fval) parts.push(String(c.fval.fval))
    else if (c.boolval) parts.push(c.boolval.boolval ? 'true' : 'false')
    else if (c.isnull) parts.push('null')
  }
  return parts.length === 0 ? null : parts.join(', ')
}

/** First keyword of a statement, lower-cased, after whitespace, comments and parentheses. */
function firstKeyword(sql: string): string {
  const m = /^(?:\s|\(|\/\*[\s\S]*?\*\/|--[^\n]*\n?)*([A-Za-z]+)/.exec(sql)
  return m?.[1]?.toLowerCase() ?? ''
}

function compileRules(rules: readonly ClassifierRule[]): CompiledRule[] {
  const compiled = rules.map((r, index) => {
    let re: RegExp
    try {
      re = new RegExp(r.pattern, 'is')
    } catch (err) {
      throw new FreshetError(
        'FRESHET_CONFIG_INVALID',
        `classifier.rules[${index}].pattern: invalid regular expression ${JSON.stringify(r.pattern)}: ${(err as Error).message}`,
        { cause: err },
      )
    }
    const a = r.action
    if (a !== 'route_replica' && a !== 'route_primary' && !(a.startsWith('tier:') && a.length > 5)) {
      throw new FreshetError(
        'FRESHET_CONFIG_INVALID',
        `classifier.rules[${index}].action: expected route_replica, route_primary or tier:<name>, got ${JSON.stringify(a)}`,
      )
    }
    return { re, rule: Object.freeze({ action: a, pattern: r.pattern }), priority: r.priority, index }
  })
  // highest priority first; ties keep the configured order
  compiled.sort((x, y) => y.priority - x.priority || x.index - y.index)
  return compiled.map(({ re, rule }) => ({ re, rule }))
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key])
    Object.freeze(value)
  }
  return value
}
