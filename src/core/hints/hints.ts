// Routing hints read from SQL comments (never from literals): freshness tier, explicit target, RYW token.

/** Hints found in a statement's comments. Keys and values are lower-cased except `minLsn` and `shardKey`. */
export interface Hints {
  /** FRESHNESS: STRICT | NEAR_RT | EVENTUAL | custom tier; lower-cased. */
  readonly freshness?: string
  /** ROUTE_TO: 'primary' | 'replica' | a node name; lower-cased. */
  readonly routeTo?: string
  /** MIN_LSN: a PostgreSQL LSN such as 0/16B3748. */
  readonly minLsn?: string
  readonly shardKey?: string
  /** sqlcommenter traceparent='00-...'. */
  readonly traceparent?: string
}

export const NO_HINTS: Hints = Object.freeze({})
