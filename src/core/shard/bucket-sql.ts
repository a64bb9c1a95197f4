// The SQL that computes a key's hash bucket on a PostgreSQL server exactly as freshet does (shard-key.ts):
// hash_combine64(0, <type>_hash_extended(key, HASH_PARTITION_SEED)) modulo the bucket count, unsigned.

import type { ShardKeyType } from './shard-key.js'
import type { ParsedRange, ShardMapSpec } from './shard-map.js'

// HASH_PARTITION_SEED and hash_combine64's constant (pg-hash.ts), and 2^64, as SQL numeric literals
const SEED = '8816678312871386365'
const GOLDEN = '5305509591434766563'
const TWO64 = '18446744073709551616'
const HASH_FN: Readonly<Record<ShardKeyType, string>> = {
  integer: 'hashint8extended',
  text: 'hashtextextended',
  uuid: 'uuid_hash_extended',
}

/**
 * A SQL expression for the bucket of `expr` (a column or parameter of the key's type), as an int; a
 * NULL key is bucket 0, as PARTITION BY HASH places it. `buckets` is a number or a SQL expression.
 * @example
 * `SELECT count(*) FROM orders WHERE ${bucketSql('customer_id', 'integer', 1024)} BETWEEN 0 AND 99`
 */
export function bucketSql(expr: string, type: ShardKeyType, buckets: number | string): string {
  return `COALESCE(mod(mod(${HASH_FN[type]}(${expr}, ${SEED})::numeric + ${GOLDEN} + ${TWO64}, ${TWO64}), ${buckets})::int, 0)`
}

/** Double-quotes each part of a (possibly schema-qualified) name. */
export function quoteName(name: string): string {
  return name
    .split('.')
    .map((p) => `"${p.replaceAll('"', '""')}"`)
    .join('.')
}

/**
 * A WHERE condition selecting the rows of a range of the map's space, with its parameters:
 * hash: the key's bucket between the ends; range: the key between them; list: the key among the
 * values, or (the `*` entry) among none of the values other entries list (`listed`).
 * @example
 * rangeSql('customer_id', 'integer', { kind: 'span', lo: 0n, hi: 99n }, { method: 'hash', buckets: 1024, keyType: 'integer' })
 * // { sql: 'COALESCE(mod(...))::int, 0) BETWEEN $1 AND $2', params: ['0', '99'] }
 */
export function rangeSql(
  column: string,
  type: ShardKeyType,
  range: ParsedRange,
  spec: ShardMapSpec,
  listed: readonly string[] = [],
): { sql: string; params: string[] } {
  const col = quoteName(column)
  if (range.kind === 'span') {
    const what = spec.method === 'hash' ? bucketSql(col, type, spec.buckets) : col
    return { sql: `${what} BETWEEN $1 AND $2`, params: [range.lo.toString(), range.hi.toString()] }
  }
  const pgType = type === 'integer' ? 'bigint' : type
  if (range.kind === 'values') {
    return { sql: `${col} = ANY($1::${pgType}[])`, params: [pgArray(range.values.map(String))] }
  }
  return { sql: `${col} IS NOT NULL AND NOT (${col} = ANY($1::${pgType}[]))`, params: [pgArray(listed)] }
}

/** A text[] literal (every element quoted). */
function pgArray(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`).join(',')}}`
}
