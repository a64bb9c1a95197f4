// PostgreSQL log sequence numbers: 'X/Y' text (two hex halves of a 64-bit WAL position) to bigint and back.

const HALF = /^[0-9A-Fa-f]{1,8}$/
const LOW_MASK = 0xffffffffn

/**
 * Parses a PostgreSQL LSN such as `0/16B3748` into a bigint of WAL bytes. Returns `null` for anything that
 * is not two 1-8 digit hex halves around a slash: tokens come from SQL comments, headers and message
 * brokers, so a bad one is routine input, not a programming error, and the caller picks the safe path.
 *
 * @example
 * parseLsn('0/16B3748') // 23803720n
 * parseLsn('16/B374D848') // 0x16B374D848n
 * parseLsn('nope') // null
 */
export function parseLsn(text: string): bigint | null {
  const slash = text.indexOf('/')
  if (slash < 0) return null
  const hi = text.slice(0, slash).trim()
  const lo = text.slice(slash + 1).trim()
  if (!HALF.test(hi) || !HALF.test(lo)) return null
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`)
}

/**
 * Formats a WAL position the way PostgreSQL prints `pg_lsn`: upper-case hex halves without padding.
 *
 * @example
 * formatLsn(23803720n) // '0/16B3748'
 */
export function formatLsn(lsn: bigint): string {
  if (lsn < 0n || lsn > 0xffffffffffffffffn) throw new RangeError(`LSN out of range: ${lsn}`)
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & LOW_MASK).toString(16).toUpperCase()}`
}

/**
 * Orders two WAL positions: negative when `a` is behind `b`, 0 when equal, positive when ahead.
 *
 * @example
 * [b, a].sort(compareLsn)
 */
export function compareLsn(a: bigint, b: bigint): -1 | 0 | 1 {
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * True when a node's replay position has reached a read-your-writes token. An unknown position
 * (`null`) has not reached anything.
 *
 * @example
 * hasReplayed(node.replayLsn, parseLsn(token)!)
 */
export function hasReplayed(replayLsn: bigint | null, token: bigint): boolean {
  return replayLsn !== null && replayLsn >= token
}

/** The later of two positions (`null` counts as "nothing yet"). */
export function maxLsn(a: bigint | null, b: bigint | null): bigint | null {
  if (a === null) return b
  if (b === null) return a
  return a >= b ? a : b
}
