// The hint lexer: reads FRESHNESS / ROUTE_TO / MIN_LSN / SHARD_KEY / traceparent from SQL comments only.

import type { Hints } from './hints.js'
import { NO_HINTS } from './hints.js'
import { Ch, forEachComment, isSpace } from './sql-scanner.js'

type MutableHints = { -readonly [K in keyof Hints]: Hints[K] }

const LSN = /^[0-9a-f]{1,8}\/[0-9a-f]{1,8}$/i

/**
 * Reads routing hints from a statement's comments, never from string literals, dollar-quoted strings or
 * quoted identifiers. Both `/* ... *\/` (nested) and `-- ...` comments count, wherever they stand at top
 * level. Recognised forms, keys case-insensitive, first occurrence of a key wins:
 * - `/* FRESHNESS: near_rt *\/`, `/*+ ROUTE_TO: primary *\/`, `-- MIN_LSN: 0/16B3748`, `SHARD_KEY: 42`
 * - sqlcommenter: `/*freshness='near_rt',route_to='primary',traceparent='00-...'*\/` (url-encoded values)
 *
 * `freshness` and `routeTo` are lower-cased; `minLsn` (ignored unless it looks like an LSN), `shardKey` and
 * `traceparent` are kept as written. Hot path: a statement without `/*` or `--` costs two indexOf calls
 * and returns the shared frozen `NO_HINTS`.
 *
 * @example
 * lexHints("/* FRESHNESS: EVENTUAL *\/ SELECT '/* ROUTE_TO: primary *\/'") // { freshness: 'eventual' }
 */
export function lexHints(sql: string): Hints {
  if (sql.indexOf('/*') === -1 && sql.indexOf('--') === -1) return NO_HINTS
  let out: MutableHints | null = null
  forEachComment(sql, (start, end) => {
    // a block comment's body ends before `*/` (when terminated); a line comment's at the newline
    const block = sql.charCodeAt(start) === Ch.Slash
    const bodyEnd = block && end - start >= 4 && sql.charCodeAt(end - 1) === Ch.Slash ? end - 2 : end
    out = readHintBody(sql, start + 2, bodyEnd, out)
  })
  return out === null ? NO_HINTS : Object.freeze(out)
}

/**
 * Returns the statement with every comment replaced by one space; literals and identifiers untouched.
 *
 * @example
 * stripComments("SELECT 1 /* FRESHNESS: eventual *\/ -- x") // "SELECT 1    "
 */
export function stripComments(sql: string): string {
  if (sql.indexOf('/*') === -1 && sql.indexOf('--') === -1) return sql
  let out = ''
  let from = 0
  forEachComment(sql, (start, end) => {
    out += sql.slice(from, start) + ' '
    from = end
  })
  return out + sql.slice(from)
}

function isKeyChar(c: number): boolean {
  return (
    (c >= Ch.LowerA && c <= Ch.LowerZ) ||
    (c >= Ch.UpperA && c <= Ch.UpperZ) ||
    (c >= Ch.Digit0 && c <= Ch.Digit9) ||
    c === Ch.Underscore
  )
}

function isValueEnd(c: number): boolean {
  return isSpace(c) || c === Ch.Comma || c === Ch.Semicolon || c === Ch.Quote || c === Ch.Star
}

/** Reads `key: value` / `key=value` / `key='value'` pairs from one comment body [from, to). */
function readHintBody(sql: string, from: number, to: number, out: MutableHints | null): MutableHints | null {
  let i = from
  while (i < to) {
    let c = sql.charCodeAt(i)
    if (!isKeyChar(c)) {
      i++
      continue
    }
    const keyStart = i
    while (i < to && isKeyChar(sql.charCodeAt(i))) i++
    const keyEnd = i
    while (i < to && isSpace(sql.charCodeAt(i))) i++
    c = sql.charCodeAt(i)
    if (i >= to || (c !== Ch.Colon && c !== Ch.Equals)) continue
    const commenter = c === Ch.Equals
    i++
    while (i < to && isSpace(sql.charCodeAt(i))) i++
    let value: string
    if (sql.charCodeAt(i) === Ch.Quote) {
      // sqlcommenter escapes a quote inside a value as \' ; SQL style doubles it
      let v = ''
      let j = i + 1
      let from2 = j
      while (j < to) {
        const d = sql.charCodeAt(j)
        if (d === Ch.Backslash && j + 1 < to) {
          v += sql.slice(from2, j)
          from2 = j + 1
          j += 2
        } else if (d === Ch.Quote) {
          if (sql.charCodeAt(j + 1) === Ch.Quote && j + 1 < to) {
            v += sql.slice(from2, j + 1)
            j += 2
            from2 = j
          } else break
        } else j++
      }
      value = v + sql.slice(from2, j)
      i = j + 1
      if (commenter && value.indexOf('%') !== -1) value = urlDecode(value)
    } else {
      const valueStart = i
      while (i < to && !isValueEnd(sql.charCodeAt(i))) i++
      value = sql.slice(valueStart, i)
    }
    if (value === '') continue
    out = applyHint(sql.slice(keyStart, keyEnd).toLowerCase(), value, out)
  }
  return out
}

function urlDecode(value: string): string {
  try {
    return decodeURIComponent(value)
  } catch {
    return value
  }
}

function applyHint(key: string, value: string, out: MutableHints | null): MutableHints | null {
  switch (key) {
    case 'freshness':
      out ??= {}
      out.freshness ??= value.toLowerCase()
      return out
    case 'route_to':
    case 'routeto':
      out ??= {}
      out.routeTo ??= value.toLowerCase()
      return out
    case 'min_lsn':
      if (!LSN.test(value)) return out
      out ??= {}
      out.minLsn ??= value
      return out
    case 'shard_key':
      out ??= {}
      out.shardKey ??= value
      return out
    case 'traceparent':
      out ??= {}
      out.traceparent ??= value
      return out
    default:
      return out
  }
}
