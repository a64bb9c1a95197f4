// A client's startup settings (StartupMessage parameters and `options -c name=value`) carried onto the
// pooled server connections that serve it: PostgreSQL would apply them at login, but a pooled
// connection logged in once for everybody, so freshet applies the difference each time it lends one.

import type { Classification } from '../core/classify/classification.js'
import { SQLSTATE } from '../core/errors.js'
import { commandComplete, query } from '../protocol/index.js'

/** Startup parameters that are not settings (or that freshet consumes itself). */
const NOT_SETTINGS = new Set(['user', 'database', 'replication', 'options', 'fallback_application_name'])

/** Settings PostgreSQL reports with ParameterStatus, under the spelling it reports them with. */
export const REPORTED_SETTINGS: ReadonlyMap<string, string> = new Map([
  ['application_name', 'application_name'],
  ['client_encoding', 'client_encoding'],
  ['datestyle', 'DateStyle'],
  ['default_transaction_read_only', 'default_transaction_read_only'],
  ['intervalstyle', 'IntervalStyle'],
  ['standard_conforming_strings', 'standard_conforming_strings'],
  ['timezone', 'TimeZone'],
])

/**
 * The settings a client asked for at startup, by lower-case name: every StartupMessage parameter that
 * is a setting (application_name, statement_timeout, TimeZone, ...) and each `-c name=value` or
 * `--name=value` of `options` (backslash escapes a space, as in libpq). freshet's own `freshet.*`
 * settings are left out: the session consumes them. `fallback_application_name` counts when
 * `application_name` is absent.
 * @example
 * startupSettings({ user: 'app', application_name: 'api', options: '-c search_path=app,public' })
 * // Map { 'application_name' => 'api', 'search_path' => 'app,public' }
 */
export function startupSettings(params: Readonly<Record<string, string>>): Map<string, string> {
  // PostgreSQL applies `options` first and the other parameters after them, so a parameter given both
  // ways takes the parameter's value
  const out = new Map<string, string>(optionSettings(params.options ?? ''))
  for (const [key, value] of Object.entries(params)) {
    const name = key.toLowerCase()
    if (NOT_SETTINGS.has(name) || name.startsWith('_pq_.')) continue
    out.set(name, value)
  }
  const fallback = params.fallback_application_name
  if (fallback !== undefined && !out.has('application_name')) out.set('application_name', fallback)
  for (const name of out.keys()) if (name.startsWith('freshet.')) out.delete(name)
  return out
}

/** `-c a=b --c=d` as [name, value] pairs; a backslash escapes the next character (libpq's rule). */
function optionSettings(options: string): [string, string][] {
  const words: string[] = []
  let word = ''
  let inWord = false
  for (let i = 0; i < options.length; i++) {
    const ch = options[i]!
    if (ch === '\\' && i + 1 < options.length) {
      word += options[++i]
      inWord = true
    } else if (ch === ' ' || ch === '\t' || ch === '\n') {
      if (inWord) words.push(word)
      word = ''
      inWord = false
    } else {
      word += ch
      inWord = true
    }
  }
  if (inWord) words.push(word)
  const pairs: [string, string][] = []
  for (let i = 0; i < words.length; i++) {
    let spec: string | undefined
    const w = words[i]!
    if (w === '-c') spec = words[++i]
    else if (w.startsWith('-c')) spec = w.slice(2)
    else if (w.startsWith('--')) spec = w.slice(2)
    const eq = spec?.indexOf('=') ?? -1
    if (spec === undefined || eq <= 0) continue
    pairs.push([spec.slice(0, eq).toLowerCase().replace(/-/g, '_'), spec.slice(eq + 1)])
  }
  return pairs
}

/** What a server connection carries: its login ParameterStatus values and what freshet set on it since. */
export interface SettingsCarrier {
  /** ParameterStatus values reported at login, under the server's spelling. */
  readonly parameters: ReadonlyMap<string, string>
  /** Settings freshet applied on this connection, by lower-case name. */
  settings: Map<string, string>
}

/** A query that brings a server connection to a client's settings, and the settings it leaves. */
export interface SettingsPlan {
  /** One simple Query message: `SELECT set_config(...), ...; RESET ...`. */
  readonly message: Buffer
  /** The connection's `settings` once the query succeeded. */
  readonly next: Map<string, string>
}

/**
 * What must run on `conn` before it serves a client with `wanted` settings, or null when nothing: each
 * wanted setting that differs from what the connection has (a value freshet set, else the login value
 * it reported) is set with set_config(), which takes the value as written, like a startup option (so a
 * list such as `search_path = 'app, public'` stays a list); each setting a previous client left that
 * this one does not want is RESET to the login value.
 * @example
 * planSettings(new Map([['timezone', 'UTC']]), conn) // null when the server already reports UTC
 */
export function planSettings(
  wanted: ReadonlyMap<string, string>,
  conn: SettingsCarrier,
): SettingsPlan | null {
  // hot path (every lend): the usual answer is "nothing", found without allocating
  if (wanted.size === 0 && conn.settings.size === 0) return null
  if (!differs(wanted, conn)) return null
  const sets: string[] = []
  const resets: string[] = []
  const next = new Map<string, string>()
  for (const [name, value] of wanted) {
    if (conn.settings.get(name) === value) next.set(name, value)
    else if (needsSet(name, value, conn)) {
      next.set(name, value)
      sets.push(`set_config(${literal(name)}, ${literal(value)}, false)`)
    }
  }
  for (const name of conn.settings.keys()) if (!wanted.has(name)) resets.push(`RESET ${identifier(name)}`)
  const statements = sets.length > 0 ? [`SELECT ${sets.join(', ')}`, ...resets] : resets
  return { message: query(statements.join('; ')), next }
}

/** A client's RESET of a setting it gave at startup, run as a set_config of the startup value. */
export interface StartupReset {
  /** The simple Query sent instead of the client's. */
  readonly message: Buffer
  /** The CommandComplete the client gets for it (its RowDescription and DataRow are not the client's). */
  readonly done: Buffer
}

/**
 * `RESET name` or `SET name TO DEFAULT`, alone in a simple Query, of a setting the client gave at
 * startup: directly, PostgreSQL returns to the startup value (the session's reset value); freshet gave
 * that value with set_config on a pooled connection, whose reset value is the server's. So freshet runs
 * set_config of the startup value instead (as written, like the startup option) and answers with the
 * client's own tag; the connection keeps what freshet applied. Null for anything else (it goes as is).
 * @example
 * startupReset(classify('RESET TimeZone'), new Map([['timezone', 'Asia/Tokyo']])) // set_config('timezone', 'Asia/Tokyo', false)
 */
export function startupReset(c: Classification, startup: ReadonlyMap<string, string>): StartupReset | null {
  const change = c.settings?.[0]
  if (change === undefined || c.statementCount !== 1 || c.settings!.length !== 1) return null
  if (change.value !== null || change.local || change.name === 'all') return null
  const value = startup.get(change.name)
  if (value === undefined) return null
  return {
    message: query(`SELECT set_config(${literal(change.name)}, ${literal(value)}, false)`),
    done: commandComplete(change.reset ? 'RESET' : 'SET'),
  }
}

/**
 * After the client's statements ran on `conn`: a RESET (or SET ... TO DEFAULT) of a setting freshet had
 * applied there put it back to the login value, so freshet no longer counts it as applied (the next
 * client lent the connection gets its own value set again). RESET ALL and DISCARD ALL need nothing
 * here: they release session state, so the connection is closed when the client lets it go
 * (reusesConnection).
 */
export function afterClientResets(statements: readonly Classification[], conn: SettingsCarrier): void {
  if (conn.settings.size === 0) return
  for (const c of statements) {
    const settings = c.settings
    if (settings === undefined) continue
    for (const s of settings) {
      if (s.value === null && !s.local) conn.settings.delete(s.name)
    }
  }
}

function differs(wanted: ReadonlyMap<string, string>, conn: SettingsCarrier): boolean {
  for (const [name, value] of wanted) {
    if (conn.settings.get(name) !== value && needsSet(name, value, conn)) return true
  }
  for (const name of conn.settings.keys()) if (!wanted.has(name)) return true
  return false
}

/** Whether `name = value` must be set on `conn`: it has another value there, set by freshet or at login. */
function needsSet(name: string, value: string, conn: SettingsCarrier): boolean {
  const applied = conn.settings.get(name)
  if (applied !== undefined) return applied !== value
  const reported = REPORTED_SETTINGS.get(name)
  const atLogin = reported === undefined ? undefined : conn.parameters.get(reported)
  return atLogin === undefined || !sameValue(atLogin, value)
}

/** Setting values compare without case, spaces, dashes or underscores: 'UTF8' = 'utf-8', 'ISO, MDY' = 'iso,mdy'. */
function sameValue(a: string, b: string): boolean {
  return a.replace(/[\s_-]/g, '').toLowerCase() === b.replace(/[\s_-]/g, '').toLowerCase()
}

/** An escape-string literal: correct whatever standard_conforming_strings says. */
function literal(value: string): string {
  return `E'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`
}

function identifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`
}

/**
 * The error a client gets when a lent connection would not take its startup settings: the server's
 * SQLSTATE (else FRESHET_NODE_UNAVAILABLE) and its message; the statement did not run.
 * @example
 * settingsNotApplied(serverError) // Error 'freshet: could not apply this connection's startup settings: ...' with sqlState
 */
export function settingsNotApplied(err: Error): Error {
  const code = (err as { code?: string }).code ?? SQLSTATE.FRESHET_NODE_UNAVAILABLE
  return Object.assign(
    new Error(`freshet: could not apply this connection's startup settings: ${err.message}`),
    {
      sqlState: code,
    },
  )
}

/**
 * A lent connection being brought to a client's settings while the job it was lent for waits: not
 * pipelined with the job, because if a setting fails the job must not run without it.
 *
 * @example
 * const plan = planSettings(client.settings, conn)
 * if (plan) apply.begin(job, conn, plan) // ... its ReadyForQuery: const done = apply.finish()
 */
export class SettingsApply<J> {
  #job: J | null = null
  #error: Error | null = null

  /** The settings query runs (its answers are not the client's). */
  get pending(): boolean {
    return this.#job !== null
  }

  /** Sends `plan` on `conn`; `job` runs once it is done. */
  begin(job: J, conn: SettingsCarrier & { write(bytes: Buffer): void }, plan: SettingsPlan): void {
    this.#job = job
    this.#error = null
    conn.settings = plan.next
    conn.write(plan.message)
  }

  /** The server refused a setting (the first error counts). */
  failed(err: Error): void {
    this.#error ??= err
  }

  /** The settings query's ReadyForQuery came: the waiting job, and the server's error if a setting failed. */
  finish(): { readonly job: J; readonly error: Error | null } | null {
    const job = this.#job
    if (job === null) return null
    this.#job = null
    const error = this.#error
    this.#error = null
    return { job, error }
  }

  /** The connection is gone: nothing waits any more. */
  reset(): void {
    this.#job = null
    this.#error = null
  }
}
