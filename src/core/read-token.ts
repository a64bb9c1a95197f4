// Read-your-writes tokens of either engine as text: a PostgreSQL LSN (`0/16B3748`) or a MySQL/MariaDB GTID position.

import { laterGtid, parseGtid } from './gtid.js'
import { parseLsn } from './lsn.js'

/**
 * True when `text` is a token freshet can honour: a PostgreSQL LSN or a GTID position (MariaDB
 * `0-1-42`, MySQL `uuid:1-5`). Headers, cookies and message headers carry either unchanged.
 *
 * @example
 * isReadToken('0/16B3748') // true
 * isReadToken('0-1-42')    // true
 */
export function isReadToken(text: string): boolean {
  const t = text.trim()
  return t !== '' && (parseLsn(t) !== null || parseGtid(t) !== null)
}

/**
 * The later of two tokens: for LSNs the higher one, for GTIDs the one that covers the other (or their
 * union); an invalid one loses; two of different engines keep `a`.
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
  if (la === null && lb === null) return laterGtid(a, b)
  return a
}
