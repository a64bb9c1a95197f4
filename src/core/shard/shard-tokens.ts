// Read-your-writes tokens of a sharded config: one LSN per shard (a write on shard_1 makes only shard_1's
// replicas wait), carried together in one header value or message attribute.

import { parseLsn } from '../lsn.js'

const SHARD_NAME = /^[A-Za-z0-9_.-]+$/

/**
 * The header / cookie / message form of per-shard tokens: `shard:lsn` pairs joined by `+`, in the order
 * the shards were written (`shard_0:0/16B3748+shard_1:0/2A01F00`); `+` and `:` are cookie-safe, a comma
 * is not. An unsharded config keeps the bare LSN (`0/16B3748`).
 * @example
 * formatShardTokens(new Map([['shard_0', '0/16B3748'], ['shard_1', '0/2A01F00']]))
 * // 'shard_0:0/16B3748+shard_1:0/2A01F00'
 */
export function formatShardTokens(tokens: ReadonlyMap<string, string>): string {
  return [...tokens].map(([shard, lsn]) => `${shard}:${lsn}`).join('+')
}

/**
 * Parses the per-shard form back, or returns null when `value` is not one (a bare LSN, garbage): a token
 * arrives from headers and message brokers, so a bad one is routine input and the caller goes on
 * without it. Pairs with a bad LSN are dropped; the last pair for a shard wins. Commas separate pairs too.
 * @example
 * parseShardTokens('shard_0:0/16B3748+shard_1:0/2A01F00')?.get('shard_1') // '0/2A01F00'
 * parseShardTokens('0/16B3748') // null
 */
export function parseShardTokens(value: string | null | undefined): Map<string, string> | null {
  if (!value?.includes(':')) return null
  const out = new Map<string, string>()
  for (const part of value.split(/[+,]/)) {
    const colon = part.indexOf(':')
    if (colon <= 0) continue
    const shard = part.slice(0, colon).trim()
    const lsn = part.slice(colon + 1).trim()
    if (SHARD_NAME.test(shard) && parseLsn(lsn) !== null) out.set(shard, lsn)
  }
  return out.size > 0 ? out : null
}

/**
 * One shard's LSN out of a per-shard token (`shard_0:0/1+shard_1:0/2`), or undefined (no such shard, a
 * bare LSN: meaningless once there are several clusters, a bad token).
 * @example
 * shardToken('shard_0:0/1+shard_1:0/2', 'shard_1') // '0/2'
 */
export function shardToken(value: string | null | undefined, shard: string): string | undefined {
  return parseShardTokens(value)?.get(shard)
}

/**
 * Per-shard tokens merged: for each shard the later LSN. Either side may be undefined or not a per-shard
 * token (it then adds nothing).
 * @example
 * mergeShardTokens('shard_0:0/5+shard_1:0/1', 'shard_1:0/9') // 'shard_0:0/5+shard_1:0/9'
 */
export function mergeShardTokens(a: string | undefined, b: string | undefined): string | undefined {
  const ta = parseShardTokens(a)
  const tb = parseShardTokens(b)
  if (ta === null) return tb === null ? undefined : formatShardTokens(tb)
  if (tb === null) return formatShardTokens(ta)
  for (const [shard, lsn] of tb) {
    const prev = ta.get(shard)
    if (prev === undefined || (parseLsn(lsn) ?? -1n) > (parseLsn(prev) ?? -1n)) ta.set(shard, lsn)
  }
  return formatShardTokens(ta)
}
