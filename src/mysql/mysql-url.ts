// mysql:// and mariadb:// URLs to mysql2 connection options.

import type { ConnectionOptions } from 'mysql2'

/**
 * Connection options for mysql2 from a `mysql://user:password@host:port/database` URL (`mariadb://`
 * too). Query parameters `ssl=true`, `charset=...` and `timezone=...` are passed on.
 *
 * @example
 * mysqlConnectionOptions('mysql://app:s3cret@db:3306/main') // { host: 'db', port: 3306, user: 'app', ... }
 */
export function mysqlConnectionOptions(url: string): ConnectionOptions {
  const u = new URL(url.replace(/^mariadb:/i, 'mysql:'))
  const db = decodeURIComponent(u.pathname.replace(/^\//, ''))
  const out: ConnectionOptions = {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 3306,
    user: decodeURIComponent(u.username),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(db ? { database: db } : {}),
  }
  const ssl = u.searchParams.get('ssl')
  if (ssl === 'true' || ssl === '1') out.ssl = {}
  const charset = u.searchParams.get('charset')
  if (charset) out.charset = charset
  const timezone = u.searchParams.get('timezone')
  if (timezone) out.timezone = timezone
  return out
}
