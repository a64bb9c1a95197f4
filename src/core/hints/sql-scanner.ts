// Low-level SQL lexing helpers shared by the hint lexer and the classifier's normaliser: where a literal,
// quoted identifier or comment ends. Hot path: char codes only, no regex, no allocation.

/** Char codes the scanners compare against. */
export enum Ch {
  Tab = 9,
  Newline = 10,
  CarriageReturn = 13,
  Space = 32,
  DoubleQuote = 34,
  Dollar = 36,
  Quote = 39,
  Star = 42,
  Plus = 43,
  Comma = 44,
  Minus = 45,
  Dot = 46,
  Slash = 47,
  Digit0 = 48,
  Digit9 = 57,
  Colon = 58,
  Semicolon = 59,
  Equals = 61,
  UpperA = 65,
  UpperE = 69,
  UpperZ = 90,
  Backslash = 92,
  Underscore = 95,
  LowerA = 97,
  LowerE = 101,
  LowerZ = 122,
}

/** True for characters that may continue an unquoted identifier or keyword (PostgreSQL allows `$` inside). */
export function isIdentChar(c: number): boolean {
  return (
    (c >= Ch.LowerA && c <= Ch.LowerZ) ||
    (c >= Ch.UpperA && c <= Ch.UpperZ) ||
    (c >= Ch.Digit0 && c <= Ch.Digit9) ||
    c === Ch.Underscore ||
    c === Ch.Dollar ||
    c >= 128
  )
}

/** True for SQL whitespace. */
export function isSpace(c: number): boolean {
  return c === Ch.Space || c === Ch.Newline || c === Ch.Tab || c === Ch.CarriageReturn || c === 12 || c === 11
}

/**
 * `sql[start]` is the opening quote (`'` or `"`): index just after the closing one, or `sql.length` when
 * unterminated. A doubled quote is an escaped quote; with `backslash` (E'' strings) `\x` is skipped too.
 */
export function endOfQuoted(sql: string, start: number, quote: number, backslash: boolean): number {
  const n = sql.length
  let i = start + 1
  while (i < n) {
    const c = sql.charCodeAt(i)
    if (c === quote) {
      if (sql.charCodeAt(i + 1) === quote) {
        i += 2
        continue
      }
      return i + 1
    }
    i += backslash && c === Ch.Backslash ? 2 : 1
  }
  return n
}

/** True when a quote at `quoteAt` is preceded by a standalone `E`/`e` prefix (an escape string). */
export function isEscapeString(sql: string, quoteAt: number): boolean {
  const p = sql.charCodeAt(quoteAt - 1)
  return (p === Ch.UpperE || p === Ch.LowerE) && (quoteAt < 2 || !isIdentChar(sql.charCodeAt(quoteAt - 2)))
}

/**
 * `sql[start]` is `$`: when it opens a dollar-quoted string (`$$` or `$tag$`, not `$1` and not inside an
 * identifier), the index just after the closing delimiter (or `sql.length`); otherwise -1.
 */
export function endOfDollarQuoted(sql: string, start: number): number {
  if (start > 0 && isIdentChar(sql.charCodeAt(start - 1))) return -1
  const n = sql.length
  let i = start + 1
  const first = sql.charCodeAt(i)
  if (first >= Ch.Digit0 && first <= Ch.Digit9) return -1
  while (i < n) {
    const c = sql.charCodeAt(i)
    if (c === Ch.Dollar) break
    if (!isIdentChar(c)) return -1
    i++
  }
  if (i >= n) return -1
  const tag = sql.slice(start, i + 1)
  const close = sql.indexOf(tag, i + 1)
  return close === -1 ? n : close + tag.length
}

/** `sql[start..start+1]` is `/*`: index just after the matching `*\/`, honouring nesting as PostgreSQL does. */
export function endOfBlockComment(sql: string, start: number): number {
  const n = sql.length
  let depth = 1
  let i = start + 2
  while (i < n) {
    const c = sql.charCodeAt(i)
    if (c === Ch.Star && sql.charCodeAt(i + 1) === Ch.Slash) {
      i += 2
      if (--depth === 0) return i
    } else if (c === Ch.Slash && sql.charCodeAt(i + 1) === Ch.Star) {
      depth++
      i += 2
    } else {
      i++
    }
  }
  return n
}

/** `sql[start..start+1]` is `--`: index of the newline that ends the comment (or `sql.length`). */
export function endOfLineComment(sql: string, start: number): number {
  const nl = sql.indexOf('\n', start + 2)
  return nl === -1 ? sql.length : nl
}

/**
 * Calls `visit(start, end)` for every comment (`/* *\/`, nested, or `--`) outside string literals, dollar-quoted
 * strings and quoted identifiers; `[start, end)` covers the whole comment, delimiters included.
 */
export function forEachComment(sql: string, visit: (start: number, end: number) => void): void {
  const n = sql.length
  let i = 0
  while (i < n) {
    const c = sql.charCodeAt(i)
    if (c === Ch.Quote) {
      i = endOfQuoted(sql, i, Ch.Quote, isEscapeString(sql, i))
    } else if (c === Ch.DoubleQuote) {
      i = endOfQuoted(sql, i, Ch.DoubleQuote, false)
    } else if (c === Ch.Dollar) {
      const end = endOfDollarQuoted(sql, i)
      i = end === -1 ? i + 1 : end
    } else if (c === Ch.Slash && sql.charCodeAt(i + 1) === Ch.Star) {
      const end = endOfBlockComment(sql, i)
      visit(i, end)
      i = end
    } else if (c === Ch.Minus && sql.charCodeAt(i + 1) === Ch.Minus) {
      const end = endOfLineComment(sql, i)
      visit(i, end)
      i = end
    } else {
      i++
    }
  }
}
