// Checks a node's connection URL: scheme, host, port range and database, with a message a user can act on.

/** Engines whose URL schemes freshet knows; `postgres` unless the config says `engine: mysql`. */
export type UrlEngine = 'postgres' | 'mysql'

const SCHEMES: Readonly<Record<UrlEngine, readonly string[]>> = {
  postgres: ['postgres', 'postgresql'],
  mysql: ['mysql', 'mariadb'],
}

// scheme://[userinfo@]host[:port][/database][?params]; the host may be a bracketed IPv6 address
const SHAPE =
  /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(?:([^@/?#]*)@)?(\[[^\]]*\]|[^:/?#]*)(?::([^/?#]*))?(\/[^?#]*)?(\?[^#]*)?$/

/**
 * Returns what is wrong with `url` as a node URL for `engine`, or null when it is usable. The database
 * may be left out (the server then uses the user's name, as libpq does); a host may come from a
 * `?host=` parameter (a Unix socket directory). libpq's keyword/value form (`host=db port=5432`) is
 * accepted for PostgreSQL.
 * @example nodeUrlIssue('http://x:99999', 'postgres') // "scheme 'http' is not postgres:// or postgresql://"
 */
export function nodeUrlIssue(url: string, engine: UrlEngine = 'postgres'): string | null {
  const example = engine === 'mysql' ? 'mysql://app@db:3306/main' : 'postgres://app@db:5432/main'
  if (engine === 'postgres' && !url.includes('://') && url.includes('=')) return conninfoIssue(url)
  const m = SHAPE.exec(url.trim())
  if (!m) return `not a URL (expected e.g. ${example}, or libpq's host=db port=5432 dbname=main)`
  const [, scheme = '', , host = '', port, path, query = ''] = m
  const allowed = SCHEMES[engine]
  if (!allowed.includes(scheme.toLowerCase())) {
    const hint =
      engine === 'postgres' && scheme.toLowerCase() === 'mysql' ? ' (mysql:// needs engine: mysql)' : ''
    return `scheme '${scheme}' is not ${allowed.map((s) => `${s}://`).join(' or ')}${hint}`
  }
  if (host === '' && !/[?&]host=[^&]/.test(query)) return `names no host (expected e.g. ${example})`
  if (port !== undefined) {
    const n = Number(port)
    if (!/^\d+$/.test(port) || n < 1 || n > 65_535) return `port '${port}' is not a number from 1 to 65535`
  }
  if (path !== undefined && path !== '/') {
    const database = path.slice(1)
    if (database.includes('/')) return `database '${database}' must be one path segment, e.g. /main`
    try {
      decodeURIComponent(database)
    } catch {
      return `database '${database}' is not valid percent-encoding`
    }
  }
  return null
}

// keyword = value pairs; a value is a bare word or single-quoted with backslash escapes (libpq's conninfo)
const PAIR = /\s*([A-Za-z_]+)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']*)\s*/y

/** The keyword/value form: every part a pair, a port in range. */
function conninfoIssue(conninfo: string): string | null {
  PAIR.lastIndex = 0
  const keys = new Map<string, string>()
  while (PAIR.lastIndex < conninfo.length) {
    const at = PAIR.lastIndex
    const m = PAIR.exec(conninfo)
    if (!m || m[0] === '') return `not a URL nor keyword=value pairs (near '${conninfo.slice(at, at + 20)}')`
    keys.set(m[1]!.toLowerCase(), m[2]!.replace(/^'|'$/g, ''))
  }
  const port = keys.get('port')
  if (port !== undefined) {
    for (const p of port.split(',')) {
      const n = Number(p)
      if (!/^\d+$/.test(p) || n < 1 || n > 65_535) return `port '${p}' is not a number from 1 to 65535`
    }
  }
  return null
}
