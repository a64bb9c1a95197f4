// A cheap normaliser and fingerprint for SQL text: literals become `?`, comments go, whitespace collapses.

import {
  Ch,
  endOfBlockComment,
  endOfDollarQuoted,
  endOfLineComment,
  endOfQuoted,
  isEscapeString,
  isIdentChar,
  isSpace,
} from '../hints/sql-scanner.js'

/**
 * Normalises a statement so that texts differing only in literal values, comments or whitespace map to
 * one key: string literals (all forms, dollar-quoted included) and numbers become `?`, comments are
 * dropped, runs of whitespace become one space. Identifiers, keywords and `$n` parameters are kept as
 * written. One pass over the characters, no parse: the classifier's second-level cache key.
 *
 * @example
 * normalizeSql("SELECT * FROM t WHERE id = 42 AND s = 'x' /* app *\/") // "SELECT * FROM t WHERE id = ? AND s = ?"
 */
export function normalizeSql(sql: string): string {
  const w = WRITER
  w.sql = sql
  w.out = ''
  w.from = 0
  w.pendingSpace = false
  let unterminated = false
  const n = sql.length
  let i = 0
  while (i < n) {
    const c = sql.charCodeAt(i)
    if (c === Ch.Quote) {
      const backslashes = isEscapeString(sql, i)
      const end = endOfQuoted(sql, i, Ch.Quote, backslashes)
      if (end === n && (n - 1 === i || sql.charCodeAt(n - 1) !== Ch.Quote)) unterminated = true
      w.emit(backslashes ? i - 1 : i, '?', false)
      i = w.from = end
    } else if (c === Ch.DoubleQuote) {
      i = endOfQuoted(sql, i, Ch.DoubleQuote, false)
    } else if (c === Ch.Dollar) {
      const end = endOfDollarQuoted(sql, i)
      if (end === -1) {
        i++
        // `$12`: a parameter, keep its digits
        while (i < n && isIdentChar(sql.charCodeAt(i))) i++
      } else {
        if (end === n && sql.charCodeAt(n - 1) !== Ch.Dollar) unterminated = true
        w.emit(i, '?', false)
        i = w.from = end
      }
    } else if (c >= Ch.Digit0 && c <= Ch.Digit9 && (i === 0 || !isIdentChar(sql.charCodeAt(i - 1)))) {
      let j = i + 1
      while (j < n) {
        const d = sql.charCodeAt(j)
        if (isIdentChar(d) || d === Ch.Dot) j++
        else if ((d === Ch.Plus || d === Ch.Minus) && (sql.charCodeAt(j - 1) | 32) === Ch.LowerE) j++
        else break
      }
      w.emit(i, '?', false)
      i = w.from = j
    } else if (c === Ch.Slash && sql.charCodeAt(i + 1) === Ch.Star) {
      const end = endOfBlockComment(sql, i)
      if (
        end === n &&
        (end - i < 4 || sql.charCodeAt(n - 1) !== Ch.Slash || sql.charCodeAt(n - 2) !== Ch.Star)
      ) {
        unterminated = true
      }
      w.emit(i, '', true)
      i = w.from = end
    } else if (c === Ch.Minus && sql.charCodeAt(i + 1) === Ch.Minus) {
      const end = endOfLineComment(sql, i)
      w.emit(i, '', true)
      i = w.from = end
    } else if (
      c === Ch.Space &&
      i > w.from &&
      i + 1 < n &&
      keepsSingleSpace(sql.charCodeAt(i + 1), sql.charCodeAt(i + 2))
    ) {
      // one space inside a run that is copied as is (between two tokens, no comment next): nothing to
      // normalise, so no copy is cut here (most texts are single-spaced: far fewer slices per text)
      i++
    } else if (isSpace(c)) {
      w.emit(i, '', true)
      i++
      while (i < n && isSpace(sql.charCodeAt(i))) i++
      w.from = i
    } else if (isIdentChar(c)) {
      // skip a whole word so that digits inside it are not taken for numbers
      i++
      while (i < n && isIdentChar(sql.charCodeAt(i))) i++
    } else {
      i++
    }
  }
  w.emit(n, '', false)
  const out = w.out
  w.sql = w.out = ''
  // an unterminated literal or comment is a parse error: never share a key with the terminated text
  return unterminated ? `${out} \u0000` : out
}

/** A single space followed by `next` (then `after`) stays as written: not more space, not a comment. */
function keepsSingleSpace(next: number, after: number): boolean {
  if (isSpace(next)) return false
  if (next === Ch.Slash && after === Ch.Star) return false
  return !(next === Ch.Minus && after === Ch.Minus)
}

/**
 * normalizeSql's output under construction. One module-level instance, reused: normalizeSql runs on
 * every statement whose exact text is not cached (inlined literals), and a closure over its locals per
 * call was a visible share of the proxy's profile. Synchronous and never re-entered, so one suffices.
 */
class NormalizeWriter {
  sql = ''
  out = ''
  from = 0
  pendingSpace = false

  /** Copies sql[from, to) and then puts `replacement` (a token, or '' for dropped text). */
  emit(to: number, replacement: string, spaceAfter: boolean): void {
    if (to > this.from) {
      if (this.pendingSpace && this.out !== '') this.out += ' '
      this.out += this.sql.slice(this.from, to)
      this.pendingSpace = false
    }
    if (replacement !== '') {
      if (this.pendingSpace && this.out !== '') this.out += ' '
      this.out += replacement
      this.pendingSpace = false
    }
    if (spaceAfter) this.pendingSpace = true
  }
}

const WRITER = new NormalizeWriter()

/**
 * A stable short hash (16 hex digits, two FNV-1a 32-bit lanes) of a normalised statement: the same for
 * every text that differs only in literals, comments or whitespace. For logs and metric labels.
 *
 * @example
 * fingerprint(normalizeSql('SELECT 1')) === fingerprint(normalizeSql('select  2')) // false: keywords keep their case
 */
export function fingerprint(normalized: string): string {
  let a = 0x811c9dc5
  let b = 0x050c5d1f
  for (let i = 0; i < normalized.length; i++) {
    const c = normalized.charCodeAt(i)
    a = Math.imul(a ^ c, 0x01000193)
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15)
  }
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0')
}
