// The database engine a config routes for: PostgreSQL (default) or MySQL/MariaDB (freshet/mysql).

import { z } from 'zod'

/** `engine:` in a config. Omitted: `mysql` when the primary's URL is mysql:// or mariadb://, else `postgres`. */
export const EngineSchema = z.enum(['postgres', 'mysql']).optional()

export type Engine = 'postgres' | 'mysql'

const MYSQL_SCHEME = /^(mysql|mariadb):\/\//i
const PG_SCHEME = /^(postgres|postgresql):\/\//i

/** The engine of a URL by its scheme, or null when it names neither. */
export function engineOfUrl(url: string): Engine | null {
  return MYSQL_SCHEME.test(url) ? 'mysql' : PG_SCHEME.test(url) ? 'postgres' : null
}

interface EngineFields {
  readonly engine?: Engine | undefined
  readonly cluster: {
    readonly primary: { readonly url: string }
    readonly replicas: readonly { readonly url: string }[]
  }
}

/**
 * The engine a validated config routes for.
 * @example engineOf(config) // 'mysql'
 */
export function engineOf(config: EngineFields): Engine {
  return config.engine ?? engineOfUrl(config.cluster.primary.url) ?? 'postgres'
}
