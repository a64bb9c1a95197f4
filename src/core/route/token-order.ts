// How a read-your-writes token compares with a node's position: PostgreSQL LSNs by default, GTID sets for MySQL.

import { hasReplayed, parseLsn } from '../lsn.js'
import type { NodeState } from '../topology/node-state.js'

/**
 * The engine-specific half of read-your-writes: parsing a token's text once, and telling whether a
 * node's position covers it. The decider only asks these two questions, so one decision order serves
 * PostgreSQL (LSNs) and MySQL/MariaDB (GTID sets).
 *
 * @example
 * const order: TokenOrder<bigint> = LSN_ORDER
 * order.reached(node, order.parse('0/16B3748')!)
 */
export interface TokenOrder<T = unknown> {
  /** The token parsed, or null when its text is not a valid token (the read then goes to the primary). */
  parse(text: string): T | null
  /** True when the node's position has reached (covers) the token; an unknown position reaches nothing. */
  reached(node: NodeState, token: T): boolean
}

/** PostgreSQL: a token is an LSN; a node has reached it when its replay LSN is at or past it. */
export const LSN_ORDER: TokenOrder<bigint> = Object.freeze({
  parse: parseLsn,
  reached: (node: NodeState, token: bigint) => hasReplayed(node.replayLsn, token),
})
