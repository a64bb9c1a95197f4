// The frozen result of classifying one SQL string: what it is, what it touches, and what it asks for.

import type { Hints } from '../hints/hints.js'

/** What a statement does, from the routing point of view. A multi-statement string takes the strictest. */
export type StatementKind =
  | 'read' // SELECT / VALUES / TABLE / SHOW / EXPLAIN (without ANALYZE of a write) / COPY TO / FETCH ...
  | 'write' // anything that must run on the primary: DML, DDL, locking reads, CALL, DO, COPY FROM, LOCK ...
  | 'transaction' // BEGIN / START / COMMIT / ROLLBACK / SAVEPOINT / RELEASE / PREPARE TRANSACTION ...
  | 'session' // SET / RESET / DISCARD / LISTEN / UNLISTEN / PREPARE / DEALLOCATE / DECLARE / CLOSE ...
  | 'unknown' // the parser refused it: treated as a write (primary), with the parse error kept

/**
 * Why a statement must run on the primary (or, for reads, `read`). A small union so that decisions,
 * logs, metric labels and `explain` all print the same words.
 */
export type ClassReason =
  | 'read'
  | 'dml' // INSERT / UPDATE / DELETE / MERGE
  | 'ddl'
  | 'locking_read' // SELECT ... FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE
  | 'dml_in_cte'
  | 'select_into' // SELECT INTO, CREATE TABLE AS
  | 'call'
  | 'do'
  | 'copy_from'
  | 'load_data' // MySQL/MariaDB LOAD DATA / LOAD XML
  | 'lock'
  | 'write_function' // nextval, setval, pg_advisory_lock, routing.write_functions ...
  | 'explain_analyze_write'
  | 'execute_write' // EXECUTE of a prepared write (or of an unknown prepared statement)
  | 'notify'
  | 'transaction_control'
  | 'session_state'
  | 'unparsable'
  | 'rule' // a classifier rule with action route_primary matched
  | 'no_rule_match' // engine 'regex': no rule matched and the text is not transaction/session control

/** Transaction control carried by a statement. */
export type TransactionAction =
  | 'begin' // BEGIN / START TRANSACTION
  | 'commit' // COMMIT / END
  | 'rollback' // ROLLBACK / ABORT
  | 'savepoint'
  | 'release'
  | 'rollback_to'
  | 'prepare' // PREPARE TRANSACTION 'x'
  | 'commit_prepared'
  | 'rollback_prepared'
  | 'set_transaction' // SET TRANSACTION ... (inside a transaction)

export interface TransactionInfo {
  readonly action: TransactionAction
  /** BEGIN READ ONLY / START TRANSACTION READ ONLY / SET TRANSACTION READ ONLY: true. READ WRITE: false. */
  readonly readOnly?: boolean
}

/**
 * Session state that lives on one server connection: a statement that creates it pins the session
 * (library client or proxy client) to that connection until it is released.
 */
export type PinReason =
  | 'temp_table'
  | 'listen'
  | 'advisory_lock' // session-level pg_advisory_lock (not the _xact_ variants)
  | 'session_set' // SET (not LOCAL) of a real setting outside a transaction
  | 'cursor_with_hold'
  | 'prepared_statement' // SQL-level PREPARE (the proxy tracks protocol-level ones itself)

/** SET / RESET of a setting, kept so that `SET freshet.freshness = ...` can be consumed by freshet. */
export interface SettingChange {
  readonly name: string // lower-cased, e.g. 'freshet.freshness', 'statement_timeout'
  readonly value: string | null // null for RESET / SET ... TO DEFAULT
  readonly local: boolean // SET LOCAL
  /** RESET name (not SET name TO DEFAULT, whose tag is SET). */
  readonly reset?: true
}

export interface Classification {
  readonly kind: StatementKind
  readonly reason: ClassReason
  /** true when the statement class alone sends it to the primary (every kind but 'read'). */
  readonly requiresPrimary: boolean
  /** Tables (schema-qualified when written so, lower-cased) that the statement reads or writes. */
  readonly tables: readonly string[]
  /** Function names called that are not on a built-in list: their volatility decides (pg_catalog lookup). */
  readonly functions: readonly string[]
  readonly hints: Hints
  readonly transaction?: TransactionInfo
  readonly pin?: PinReason
  /** A pin released by this statement: UNLISTEN *, DISCARD ALL, pg_advisory_unlock_all(), CLOSE ALL ... */
  readonly unpin?: PinReason | 'all'
  readonly settings?: readonly SettingChange[]
  /** PREPARE name AS ...: the name and the class of the inner statement; EXECUTE name: the name. */
  readonly prepare?: { readonly name: string; readonly inner: Classification }
  readonly execute?: { readonly name: string }
  readonly deallocate?: { readonly name: string | null } // null = DEALLOCATE ALL
  readonly statementCount: number
  /** The parser's message when kind is 'unknown'. */
  readonly parseError?: string
  /** Stable short hash of the normalised text (literals, comments, whitespace folded): for logs and metrics. */
  readonly fingerprint?: string
  /** The classifier rule that decided (engines 'regex' and 'hybrid'). */
  readonly rule?: { readonly action: string; readonly pattern: string }
  /** Multi-statement strings: every transaction-control action in order (`transaction` is the last). */
  readonly transactions?: readonly TransactionInfo[]
  /** LISTEN / UNLISTEN / NOTIFY channel; null for UNLISTEN *. */
  readonly channel?: string | null
}
