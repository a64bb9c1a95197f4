// Request-scoped routing context on AsyncLocalStorage: freshness tiers, primary overrides and
// read-your-writes tokens follow the async call chain without being passed around. The token store
// itself is the session machine's (src/session/token-store.ts); this is only where it lives.

import { AsyncLocalStorage } from 'node:async_hooks'
import { TokenStore } from '../session/token-store.js'

/**
 * What a scope has written: shared by a scope and the freshness()/withPrimary() scopes nested in it, so a
 * write anywhere inside a request is visible to `lastWriteToken()` anywhere in that request.
 */
export interface WriteState {
  /**
   * The read-your-writes token of the scope's last write and its time (the session machine's store).
   * With a sharded config the token holds one LSN per shard in one string
   * (`shard_0:0/16B3748+shard_1:0/2A01F00`, core/shard/shard-tokens.ts; laterToken merges them).
   */
  readonly tokens: TokenStore
  /** Sharded configs: epoch ms of the last write per shard (sticky_after_write_ms holds that shard only). */
  atByShard?: Map<string, number>
  /** Tables written recently (development guard): name -> epoch ms. */
  tables?: Map<string, number>
}

/** A scope's write state before it wrote anything. */
export function newWriteState(): WriteState {
  return { tokens: new TokenStore() }
}

/** One scope's routing context. Child scopes copy their parent's and override. */
export interface ContextStore {
  tier?: string
  primary?: boolean
  /** A token handed in from outside (readYourWrites, X-Primary-LSN): reads must have replayed it. */
  minLsn?: string
  /** W3C traceparent of the caller, when known. */
  traceparent?: string
  /** Sharded configs: the shard key of this scope (`withShardKey`, `X-DB-Shard-Key`). */
  shardKey?: unknown
  writes: WriteState
}

const storage = new AsyncLocalStorage<ContextStore>()

/** The current scope's store, or undefined outside any freshet scope. */
export function currentContext(): ContextStore | undefined {
  return storage.getStore()
}

/**
 * Runs fn in a child scope whose store starts as a copy of the current one plus `patch`. A lazy thenable
 * returned by fn is started inside the scope (see startInScope).
 */
export function runInContext<T>(patch: Partial<ContextStore>, fn: () => T): T {
  const parent = storage.getStore()
  const writes = patch.writes ?? parent?.writes ?? newWriteState()
  return storage.run({ ...parent, ...patch, writes }, () => startInScope(fn()))
}

/**
 * ORMs return lazy thenables that only send their query when `.then()` is called: Prisma's PrismaPromise,
 * Drizzle's query builders. `freshness('eventual', () => prisma.post.findMany())` would otherwise run the
 * query after the scope ended, where the caller awaits it. Calling `.then()` here keeps it in the scope;
 * the caller gets a plain Promise of the same result. Native promises pass through untouched.
 */
function startInScope<T>(value: T): T {
  if (value instanceof Promise || typeof (value as { then?: unknown } | null)?.then !== 'function')
    return value
  return new Promise((resolve, reject) => (value as PromiseLike<unknown>).then(resolve, reject)) as T
}

/**
 * Runs fn with reads served at the given freshness tier (a tier name from `routing.tiers`).
 * @example
 * const rows = await freshness('eventual', () => pool.query('SELECT * FROM products'))
 */
export function freshness<T>(tier: string, fn: () => T): T {
  return runInContext({ tier: tier.toLowerCase() }, fn)
}

/**
 * Runs fn with every statement sent to the primary.
 * @example
 * await withPrimary(() => pool.query('SELECT balance FROM accounts WHERE id = $1', [id]))
 */
export function withPrimary<T>(fn: () => T): T {
  return runInContext({ primary: true }, fn)
}

/**
 * Runs fn so that its reads see at least the write identified by `token` (an LSN from
 * `pool.lastWriteToken()`, an `X-Primary-LSN` header or a message header).
 * @example
 * const token = pool.lastWriteToken()
 * // ... later, maybe in another process:
 * await readYourWrites(token, () => pool.query('SELECT * FROM orders WHERE id = $1', [id]))
 */
export function readYourWrites<T>(token: string | null | undefined, fn: () => T): T {
  return token ? runInContext({ minLsn: token }, fn) : fn()
}

/**
 * Opens a scope that collects write tokens without changing routing, e.g. one per HTTP request.
 * Middleware uses it so `lastWriteToken()` answers for exactly this request.
 */
export function withScope<T>(fn: () => T, patch: Partial<ContextStore> = {}): T {
  return runInContext({ ...patch, writes: newWriteState() }, fn)
}

/**
 * Runs fn with `key` as the shard key of its statements (sharded configs): statements without a
 * `ROUTE_TO` / `SHARD_KEY` hint go to the shard that owns `key`, whether or not they name the key
 * themselves. Ranks below the hints and above `SET freshet.shard_key` and the statement's own key.
 * @example
 * await withShardKey(customerId, () => pool.query('SELECT * FROM carts LIMIT 10'))
 */
export function withShardKey<T>(key: string | number | bigint, fn: () => T): T {
  return runInContext({ shardKey: key }, fn)
}
