// The read-your-writes token store both faces use: the token of a session's last write and when it
// was made. The proxy keeps one in each client's SessionState; the library keeps one per async scope
// (library/context.ts is only where that store lives, shared by the scopes nested in a request).

import { laterToken } from '../core/read-token.js'

/**
 * The token routing sees after a write whose token could not be read: not a valid token, so no replica
 * has replayed it and reads that honour tokens go to the primary (reason read_your_writes).
 */
export const LOST_TOKEN = 'unknown'

/**
 * A session's read-your-writes token (a PostgreSQL LSN or a MySQL/MariaDB GTID position) and the time
 * of its last write. A recorded token never moves back: the later of the old and the new is kept
 * (laterToken), so concurrent writes of one request leave the newest.
 *
 * @example
 * const tokens = new TokenStore()
 * tokens.record('0/16B3748')
 * tokens.minToken('0/10') // '0/16B3748': reads must have replayed the later of the two
 */
export class TokenStore {
  #token: string | undefined
  #at: number | undefined
  /** The last write's token could not be read (see lose). */
  #lost = false

  /** The token of the last write, if any. */
  get token(): string | undefined {
    return this.#token
  }

  /** Epoch ms of the last write (consistency.sticky_after_write_ms), if any. */
  get lastWriteAt(): number | undefined {
    return this.#at
  }

  /** A write committed at `at`: its token (null when none was fetched: causal consistency off). */
  record(token: string | null, at: number = Date.now()): void {
    this.#at = at
    if (token) this.raise(token)
  }

  /** A token of a write recorded before (see record) is known now: kept if later than the one held. */
  raise(token: string): void {
    this.#token = laterToken(this.#token, token)
    this.#lost = false
  }

  /**
   * The token of a write recorded without one could not be read (its connection failed after the
   * commit): minToken() is LOST_TOKEN until a later token is recorded, which covers that write too
   * (it was read after both ended). `token` keeps the last one known (headers carry only real tokens).
   */
  lose(): void {
    this.#lost = true
  }

  /** The token reads must have replayed: the later of this store's and `given` (MIN_LSN from outside). */
  minToken(given?: string): string | undefined {
    if (this.#lost) return LOST_TOKEN
    if (!given) return this.#token
    if (!this.#token) return given
    return laterToken(this.#token, given)
  }
}
