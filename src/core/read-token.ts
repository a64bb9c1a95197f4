// Read-your-writes tokens of either engine as text: a PostgreSQL LSN (`0/16B3748`) or a MySQL/MariaDB GTID position.

import { laterGtid, parseGtid } from './gtid.js'
import { parseLsn } from './lsn.js'
import { mergeShardTokens, parseShardTokens } from './shard/shard-tokens.js'

/**
 * True when `text` is a token freshet can honour: a PostgreSQL LSN, a GTID position (MariaDB
 * `0-1-42`, MySQL `uuid:1-5`) or per-shard LSNs of a sharded config (`shard_0:0/16B3748+shard_1:0/2A`,
 * core/shard/shard-tokens.ts). Headers, cookies and message headers carry each unchanged.
 *
 * @example
 * isReadToken('0/16B3748') // true
 * isReadToken('0-1-42')    // true
 */
export function isReadToken(text: string): boolean {
  const t = text.trim()
  return t !== '' && (parseLsn(t) !== null || parseGtid(t) !== null || parseShardTokens(t) !== null)
}

/**
 * The later of two tokens: for LSNs the higher one, for GTIDs the one that covers the other (or their
 * union), for per-shard tokens the later LSN of each shard; an invalid one loses; two of different
 * kinds keep `a`.
 *
 * @example
 * laterToken('0/10', '0/20') // '0/20'
 */
export function laterToken(a: string | undefined, b: string | undefined): string | undefined {
  if (!a || !isReadToken(a)) return b && isReadToken(b) ? b : a || b
  if (!b || !isReadToken(b)) return a
  const la = parseLsn(a)
  const lb = parseLsn(b)
  if (la !== null && lb !== null) return la >= lb ? a : b
  const sharded = parseShardTokens(a) !== null
  if (sharded || parseShardTokens(b) !== null)
    return sharded && parseShardTokens(b) !== null ? mergeShardTokens(a, b) : a
  if (la === null && lb === null) return laterGtid(a, b)
  return a
}
