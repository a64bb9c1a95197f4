// Classifies MySQL/MariaDB statements with node-sql-parser's grammar into the same frozen Classification as PostgreSQL's.

import { createRequire } from 'node:module'
import type {
  Classification,
  ClassReason,
  PinReason,
  SettingChange,
  TransactionInfo,
} from '../core/classify/classification.js'
import { LruCache } from '../core/classify/lru-cache.js'
import { fingerprint, normalizeSql } from '../core/classify/normalize-sql.js'
import type { Hints } from '../core/hints/hints.js'
import { lexHints } from '../core/hints/lex-hints.js'
import { forEachComment } from '../core/hints/sql-scanner.js'
import {
  MYSQL_LOCK_FUNCTIONS,
  MYSQL_READ_FUNCTIONS,
  MYSQL_UNLOCK_ALL_FUNCTIONS,
  MYSQL_WRITE_FUNCTIONS,
} from './mysql-functions.js'

/** The grammar to parse with: MariaDB's (default) or MySQL 8's. */
export type MysqlDialect = 'mariadb' | 'mysql'

export interface MysqlClassifierOptions {
  readonly dialect?: MysqlDialect
  /** `routing.write_functions`: also sent to the primary (e.g. `sleep`, a stored function that writes). */
  readonly writeFunctions?: readonly string[]
  /** `routing.read_only_functions`: stored functions known to only read. */
  readonly readOnlyFunctions?: readonly string[]
  readonly cacheSize?: number
}

interface AstParser {
  astify(sql: string, opt: { database: string }): unknown
  tableList(sql: string, opt: { database: string }): string[]
}

type AstNode = Record<string, unknown>

// node-sql-parser ships one UMD build per dialect; loading only the one we need keeps start-up small.
const require = createRequire(import.meta.url)
const parsers = new Map<MysqlDialect, AstParser>()
function parserFor(dialect: MysqlDialect): AstParser {
  let p = parsers.get(dialect)
  if (!p) {
    const mod = require(`node-sql-parser/build/${dialect}.js`) as { Parser: new () => AstParser }
    p = new mod.Parser()
    parsers.set(dialect, p)
  }
  return p
}

const NO_TABLES: readonly string[] = Object.freeze([])
const GTID_HINT = /\bMIN_GTID\s*[:=]\s*'?([0-9A-Za-z:,\-_ ]+?)'?\s*(?:\*\/|$|,|\n)/i
/** `SET @freshet_freshness = 'eventual'`: the session tier, consumed by freshet (CONTRACT section 2). */
const FRESHET_VAR = 'freshet_freshness'
const DDL = new Set(['create', 'alter', 'drop', 'truncate', 'rename'])
const LOCKING = /\b(FOR\s+UPDATE|FOR\s+SHARE|LOCK\s+IN\s+SHARE\s+MODE)\b/i

/**
 * MySQL/MariaDB classifier with the PostgreSQL classifier's safety rules: DML, DDL, locking reads
 * (FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE), SELECT ... INTO, CALL, LOAD DATA, DO, LOCK TABLES,
 * HANDLER, side-effect and connection-state functions (GET_LOCK, RELEASE_LOCK, LAST_INSERT_ID,
 * NEXTVAL ...), user variable assignment, executable comments (`/*!...*\/`) and anything the grammar
 * refuses go to the primary. Transaction control and session statements are recognised by their
 * leading keywords (the grammar lacks some of them); everything else is parsed. Cached by text.
 *
 * Pins: CREATE TEMPORARY TABLE (temp_table), GET_LOCK (advisory_lock), SET of a user or session
 * variable, SET NAMES, USE (session_set), SQL PREPARE (prepared_statement), LOCK TABLES / HANDLER.
 *
 * @example
 * const c = new MysqlClassifier()
 * c.classify('SELECT * FROM t LOCK IN SHARE MODE').reason // 'locking_read'
 */
export class MysqlClassifier {
  readonly #dialect: MysqlDialect
  readonly #db: string
  readonly #writeFns: ReadonlySet<string>
  readonly #readFns: ReadonlySet<string>
  readonly #cache: LruCache<Classification>

  constructor(options: MysqlClassifierOptions = {}) {
    this.#dialect = options.dialect ?? 'mariadb'
    this.#db = this.#dialect === 'mariadb' ? 'MariaDB' : 'MySQL'
    this.#writeFns = new Set((options.writeFunctions ?? []).map((f) => f.toLowerCase()))
    this.#readFns = new Set((options.readOnlyFunctions ?? []).map((f) => f.toLowerCase()))
    this.#cache = new LruCache(Math.max(0, options.cacheSize ?? 10000))
    parserFor(this.#dialect)
  }

  /** Classifies one SQL string (cached by exact text). */
  classify(sql: string): Classification {
    const hit = this.#cache.get(sql)
    if (hit) return hit
    const c = this.#classify(sql)
    this.#cache.set(sql, c)
    return c
  }

  #classify(sql: string): Classification {
    const hints = mysqlHints(sql)
    const print = fingerprint(normalizeSql(sql))
    const base = { hints, fingerprint: print }
    if (sql.includes('/*!') || sql.includes('/*M!')) {
      // executable comments run their content on MySQL: the text says less than what runs
      return make({
        ...base,
        kind: 'unknown',
        reason: 'unparsable',
        parseError: 'executable comment /*!...*/',
      })
    }
    const words = leadingWords(sql, 4)
    const keyword = this.#keywordClass(words, sql, base)
    if (keyword) return keyword
    let ast: unknown
    try {
      ast = parserFor(this.#dialect).astify(sql, { database: this.#db })
    } catch (err) {
      if (words[0] === 'select' && LOCKING.test(sql)) {
        return make({ ...base, kind: 'write', reason: 'locking_read' })
      }
      const message = (err as Error).message.split('\n')[0]!.slice(0, 200)
      return make({ ...base, kind: 'unknown', reason: 'unparsable', parseError: message })
    }
    const statements = (Array.isArray(ast) ? ast : [ast]) as AstNode[]
    let tables: readonly string[] = NO_TABLES
    try {
      tables = tablesOf(parserFor(this.#dialect).tableList(sql, { database: this.#db }))
    } catch {}
    const classes = statements.map((s) => this.#statement(s))
    const strictest = classes.find((c) => c.reason !== 'read') ?? classes[0]!
    const functions = [...new Set(classes.flatMap((c) => c.functions))]
    return make({
      ...base,
      kind: strictest.kind,
      reason: strictest.reason,
      tables,
      functions,
      statementCount: statements.length,
      ...(classes.find((c) => c.pin) ? { pin: classes.find((c) => c.pin)!.pin! } : {}),
      ...(classes.find((c) => c.unpin) ? { unpin: classes.find((c) => c.unpin)!.unpin! } : {}),
    })
  }

  /** Statements recognised by their leading keywords: transaction control and session statements. */
  #keywordClass(words: readonly string[], sql: string, base: Base): Classification | null {
    const [w0, w1, w2] = words
    const tx = (action: TransactionInfo['action'], readOnly?: boolean): Classification =>
      make({
        ...base,
        kind: 'transaction',
        reason: 'transaction_control',
        transaction: readOnly === undefined ? { action } : { action, readOnly },
      })
    switch (w0) {
      case 'begin':
        return w1 === undefined || w1 === 'work' ? tx('begin') : null // BEGIN NOT ATOMIC: a compound statement
      case 'start':
        if (w1 !== 'transaction') return null
        return tx(
          'begin',
          /\bread\s+only\b/i.test(sql) ? true : /\bread\s+write\b/i.test(sql) ? false : undefined,
        )
      case 'commit':
        return tx('commit')
      case 'rollback':
        return /\bto\b/i.test(sql) ? tx('rollback_to') : tx('rollback')
      case 'savepoint':
        return tx('savepoint')
      case 'release':
        return tx('release')
      case 'xa':
        if (w1 === 'start' || w1 === 'begin') return tx('begin')
        if (w1 === 'commit') return tx('commit')
        if (w1 === 'rollback') return tx('rollback')
        return make({ ...base, kind: 'transaction', reason: 'transaction_control' })
      case 'set':
        return this.#set(words, sql, base)
      case 'use':
        return session(base, 'session_set')
      case 'prepare':
        return make({ ...base, kind: 'session', reason: 'session_state', pin: 'prepared_statement' })
      case 'execute':
        return make({ ...base, kind: 'write', reason: 'execute_write', execute: { name: w1 ?? '' } })
      case 'deallocate':
      case 'drop':
        if (w0 === 'drop' && w1 !== 'prepare') {
          return w1 === 'temporary' ? make({ ...base, kind: 'write', reason: 'ddl' }) : null
        }
        return make({ ...base, kind: 'session', reason: 'session_state', deallocate: { name: w2 ?? null } })
      case 'lock':
        return make({ ...base, kind: 'write', reason: 'lock', pin: 'advisory_lock' })
      case 'unlock':
        return make({ ...base, kind: 'write', reason: 'lock' })
      case 'handler':
        return make({ ...base, kind: 'write', reason: 'session_state', pin: 'cursor_with_hold' })
      case 'do':
        return make({ ...base, kind: 'write', reason: 'do' })
      case 'load':
        return make({ ...base, kind: 'write', reason: 'load_data' })
      case 'call':
        return make({ ...base, kind: 'write', reason: 'call' })
      case 'show':
      case 'describe':
      case 'desc':
        // SHOW reads server state; SHOW on a replica describes the replica, which is what a read asks
        return make({ ...base, kind: 'read', reason: 'read' })
      case 'analyze':
      case 'optimize':
      case 'repair':
      case 'check':
      case 'flush':
      case 'kill':
      case 'grant':
      case 'revoke':
      case 'install':
      case 'uninstall':
      case 'purge':
      case 'reset':
      case 'change':
      case 'stop':
      case 'shutdown':
        // ANALYZE SELECT runs the statement; ANALYZE TABLE writes statistics: all primary
        return make({ ...base, kind: 'write', reason: 'ddl' })
      default:
        return null
    }
  }

  #set(words: readonly string[], sql: string, base: Base): Classification {
    const w1 = words[1]
    if (w1 === 'transaction' || ((w1 === 'session' || w1 === 'local') && words[2] === 'transaction')) {
      // SET TRANSACTION applies to the next transaction only (MySQL); SET SESSION TRANSACTION to all
      const readOnly = /\bread\s+only\b/i.test(sql) ? true : /\bread\s+write\b/i.test(sql) ? false : undefined
      return make({
        ...base,
        kind: 'transaction',
        reason: 'transaction_control',
        transaction:
          readOnly === undefined ? { action: 'set_transaction' } : { action: 'set_transaction', readOnly },
        ...(w1 === 'transaction' ? {} : { pin: 'session_set' as const }),
      })
    }
    const freshet = new RegExp(
      `^\\s*set\\s+@${FRESHET_VAR}\\s*(?::=|=)\\s*(?:'([^']*)'|"([^"]*)"|(null|default))\\s*;?\\s*$`,
      'i',
    )
    const m = freshet.exec(stripCommentsKeepText(sql))
    if (m) {
      const value = m[1] ?? m[2] ?? null
      const setting: SettingChange = { name: 'freshet.freshness', value, local: false }
      return make({ ...base, kind: 'session', reason: 'session_state', settings: [setting] })
    }
    // SET @user_var, SET NAMES, SET SESSION x, SET autocommit = 0 ...: state of this connection.
    // SET GLOBAL changes the server: primary, no pin.
    if (w1 === 'global' || w1 === 'persist' || w1 === 'persist_only' || (w1 ?? '').startsWith('@@global')) {
      return make({ ...base, kind: 'write', reason: 'ddl' })
    }
    return session(base, 'session_set')
  }

  #statement(ast: AstNode): Piece {
    const type = String(ast.type ?? '').toLowerCase()
    const calls = collectCalls(ast)
    const functions: string[] = []
    let pin: PinReason | undefined
    let unpin: PinReason | 'all' | undefined
    let writeFn = false
    for (const name of calls.functions) {
      const bare = name.slice(name.lastIndexOf('.') + 1)
      if (MYSQL_LOCK_FUNCTIONS.has(bare)) pin = 'advisory_lock'
      if (MYSQL_UNLOCK_ALL_FUNCTIONS.has(bare)) unpin = 'advisory_lock'
      if (MYSQL_WRITE_FUNCTIONS.has(bare) || this.#writeFns.has(name) || this.#writeFns.has(bare))
        writeFn = true
      else if (!MYSQL_READ_FUNCTIONS.has(bare) && !this.#readFns.has(name) && !this.#readFns.has(bare)) {
        functions.push(name)
      }
    }
    const out = (kind: Classification['kind'], reason: ClassReason): Piece => ({
      kind,
      reason,
      functions,
      ...(pin ? { pin } : {}),
      ...(unpin ? { unpin } : {}),
    })
    switch (type) {
      case 'select': {
        if (ast.locking_read) return out('write', 'locking_read')
        const into = ast.into as AstNode | null | undefined
        if (into?.keyword) return out('write', 'select_into')
        if (calls.assigns) return { ...out('write', 'session_state'), pin: pin ?? 'session_set' }
        if (writeFn) return out('write', 'write_function')
        return out('read', 'read')
      }
      case 'insert':
      case 'replace':
      case 'update':
      case 'delete':
        return out('write', 'dml')
      case 'create':
        return ast.temporary ? { ...out('write', 'ddl'), pin: 'temp_table' } : out('write', 'ddl')
      case 'call':
        return out('write', 'call')
      case 'load_data':
        return out('write', 'load_data')
      case 'lock':
      case 'unlock':
        return out('write', 'lock')
      case 'show':
      case 'desc':
        return out('read', 'read')
      case 'explain': {
        const inner = ast.expr as AstNode | undefined
        return inner && String(inner.type) !== 'select'
          ? out('write', 'explain_analyze_write')
          : out('read', 'read')
      }
      case 'transaction':
        return out('transaction', 'transaction_control')
      case 'set':
        return { ...out('session', 'session_state'), pin: 'session_set' }
      default:
        return DDL.has(type) ? out('write', 'ddl') : out('write', 'unparsable')
    }
  }
}

type Base = { readonly hints: Hints; readonly fingerprint: string }

interface Piece {
  readonly kind: Classification['kind']
  readonly reason: ClassReason
  readonly functions: readonly string[]
  readonly pin?: PinReason
  readonly unpin?: PinReason | 'all'
}

function session(base: Base, pin: PinReason): Classification {
  return make({ ...base, kind: 'session', reason: 'session_state', pin })
}

type Draft = Partial<Omit<Classification, 'kind' | 'reason' | 'hints'>> &
  Pick<Classification, 'kind' | 'reason' | 'hints'>

function make(d: Draft): Classification {
  return Object.freeze({
    tables: NO_TABLES,
    functions: NO_TABLES,
    statementCount: 1,
    ...d,
    requiresPrimary: d.kind !== 'read',
  })
}

/** PostgreSQL-style hints, plus `MIN_GTID: <gtid set>` (a GTID token in a comment). */
export function mysqlHints(sql: string): Hints {
  const hints = lexHints(sql)
  if (!/MIN_GTID/i.test(sql)) return hints
  let gtid: string | undefined
  forEachComment(sql, (start, end) => {
    if (gtid !== undefined) return
    const m = GTID_HINT.exec(sql.slice(start + 2, end))
    if (m) gtid = m[1]!.replace(/\s+/g, '')
  })
  return gtid === undefined ? hints : Object.freeze({ ...hints, minLsn: gtid })
}

/** The first `n` words of a statement, lower-cased, past comments (`/* *\/`, `-- `, `#`). */
function leadingWords(sql: string, n: number): string[] {
  const words: string[] = []
  const re = /\s+|\/\*[\s\S]*?\*\/|--[^\n]*|#[^\n]*|(@{0,2}[A-Za-z_][A-Za-z0-9_$.]*)|([^\s])/y
  re.lastIndex = 0
  while (words.length < n && re.lastIndex < sql.length) {
    const m = re.exec(sql)
    if (m === null) break
    if (m[1] !== undefined) words.push(m[1].toLowerCase())
    else if (m[2] !== undefined) break
  }
  return words
}

function stripCommentsKeepText(sql: string): string {
  return sql.replace(/\/\*[\s\S]*?\*\//g, ' ')
}

/** tableList entries are `type::db::table`; tables are lower-cased, db-qualified when written so. */
function tablesOf(list: readonly string[]): readonly string[] {
  const out = new Set<string>()
  for (const entry of list) {
    const [, db, table] = entry.split('::')
    if (!table || table === 'null') continue
    out.add((db && db !== 'null' ? `${db}.${table}` : table).toLowerCase())
  }
  return out.size === 0 ? NO_TABLES : Object.freeze([...out])
}

/** Every function called anywhere in the tree (lower-cased) and whether any user variable is assigned. */
function collectCalls(root: unknown): { functions: string[]; assigns: boolean } {
  const functions: string[] = []
  let assigns = false
  const stack: unknown[] = [root]
  while (stack.length > 0) {
    const node = stack.pop()
    if (node === null || typeof node !== 'object') continue
    if (Array.isArray(node)) {
      for (const v of node) stack.push(v)
      continue
    }
    const n = node as AstNode
    if (n.type === 'function') {
      const parts = ((n.name as { name?: { value: string }[] } | undefined)?.name ?? []).map((p) => p.value)
      if (parts.length > 0) functions.push(parts.join('.').toLowerCase())
    } else if (n.type === 'assign' && (n.left as AstNode | undefined)?.type === 'var') {
      assigns = true
    }
    for (const v of Object.values(n)) if (v !== null && typeof v === 'object') stack.push(v)
  }
  return { functions, assigns }
}
