// One classification per statement of a multi-statement string: the session needs each statement's
// pins and releases in order (the classifier keeps only the first pin and the last release of a string).

import { parseSync } from 'libpg-query'
import type { Classification } from '../core/classify/classification.js'

/**
 * Splits `sql` with the PostgreSQL parser and classifies each statement, in order; null when it does
 * not parse (the caller then takes the string's classification as a whole).
 * @example
 * splitStatements('CREATE TEMP TABLE t (); RESET ALL', (s) => engine.classify(s))?.map((c) => c.pin ?? c.unpin)
 * // ['temp_table', 'session_set']
 */
export function splitStatements(
  sql: string,
  classify: (sql: string) => Classification,
): Classification[] | null {
  let stmts: { stmt_location?: number; stmt_len?: number }[]
  try {
    stmts = parseSync(sql).stmts ?? []
  } catch {
    return null
  }
  // the parser's locations are byte offsets into the UTF-8 text; a length of 0 runs to the end
  const bytes = Buffer.from(sql)
  return stmts.map((s) => {
    const from = s.stmt_location ?? 0
    return classify(bytes.toString('utf8', from, s.stmt_len ? from + s.stmt_len : bytes.length))
  })
}

/**
 * The split rule both faces follow: the statements a string ran, for pins and transactions. A string
 * of several statements that pins or releases anything is split (splitStatements); anything else, or
 * a string that does not parse, counts as its one classification (`one`, reused by the caller).
 * @example
 * state.applyPins(statementsForPins(c, sql, engine, [c]), outcome)
 */
export function statementsForPins(
  c: Classification,
  sql: string | null,
  classifier: { classify(sql: string): Classification },
  one: readonly Classification[],
): readonly Classification[] {
  if (sql === null || c.statementCount <= 1 || (c.pin === undefined && c.unpin === undefined)) return one
  return splitStatements(sql, (text) => classifier.classify(text)) ?? one
}
