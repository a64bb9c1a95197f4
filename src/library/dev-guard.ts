// Development guard: warns when a scope reads from a replica a table it wrote moments earlier (a stale read waiting to happen).

import type { Classification } from '../core/classify/classification.js'
import type { Decision } from '../core/route/decision.js'
import { currentContext, newWriteState, type WriteState } from './context.js'

/** The part of a FreshetPool the guard uses: its decisions in, its 'log' and 'warning' events out. */
export interface GuardedPool {
  on(event: 'decision', listener: (decision: Decision, classification: Classification) => void): unknown
  off(event: 'decision', listener: (decision: Decision, classification: Classification) => void): unknown
  emit(event: string, ...args: unknown[]): boolean
}

export interface DevGuardOptions {
  /** How long after a write a replica read of the same table counts as "moments later" (default 10 000 ms). */
  windowMs?: number
  /** Also raise `process.emitWarning` (default true), so the warning shows even without a log listener. */
  processWarning?: boolean
  /** Clock (tests). */
  now?: () => number
}

/** What the guard reports, on the pool's 'warning' event and in the 'log' event's fields. */
export interface ReadAfterWriteWarning {
  readonly code: 'FRESHET_READ_AFTER_WRITE'
  readonly message: string
  readonly table: string
  readonly target: string
  readonly fingerprint: string
  /** Milliseconds between the write and the read. */
  readonly sinceWriteMs: number
}

const DEFAULT_WINDOW_MS = 10_000
const MAX_TRACKED_TABLES = 256
const MAX_FINGERPRINTS = 10_000

/**
 * Watches a pool's decisions and warns, once per statement fingerprint, when a read sent to a replica
 * touches a table the same scope wrote within `windowMs` without a read-your-writes token: that read
 * may not see the write. Writes are tracked per scope in `writes.tables`. Emits the pool's 'warning'
 * event (a ReadAfterWriteWarning), a 'log' event at level 'warn', and `process.emitWarning`.
 * `createPool` installs it when NODE_ENV is 'development' or the `devGuard` option is set.
 * Returns a function that removes it.
 * @example
 * const stop = installDevGuard(pool)
 * await withScope(async () => {
 *   await pool.query('INSERT INTO orders ...')
 *   await freshness('eventual', () => pool.query('SELECT * FROM orders')) // warns (causal: false)
 * })
 * stop()
 */
export function installDevGuard(pool: GuardedPool, options: DevGuardOptions = {}): () => void {
  const windowMs = options.windowMs ?? DEFAULT_WINDOW_MS
  const now = options.now ?? Date.now
  const warned = new Set<string>()
  // Writes made outside any scope (scripts): the pool's own fallback state is private, so keep one here.
  const unscoped: WriteState = newWriteState()

  const onDecision = (d: Decision, c: Classification) => {
    if (d.target === null || c.tables.length === 0) return
    const writes = currentContext()?.writes ?? unscoped
    if (c.kind === 'write' && d.role === 'primary') {
      const at = now()
      if (writes.tables === undefined) writes.tables = new Map()
      const tables = writes.tables
      for (const t of c.tables) tables.set(t, at)
      if (tables.size > MAX_TRACKED_TABLES) prune(tables, at - windowMs)
      return
    }
    // A token the decision honoured means the replica has replayed it: the user asked for that.
    if (d.role !== 'replica' || c.kind !== 'read' || d.minLsn !== null || !writes.tables) return
    const at = now()
    for (const table of c.tables) {
      const wroteAt = writes.tables.get(table)
      if (wroteAt === undefined || at - wroteAt > windowMs) continue
      const fingerprint = c.fingerprint ?? `${c.tables.join(',')}:${d.tier ?? ''}`
      if (warned.has(fingerprint)) return
      if (warned.size >= MAX_FINGERPRINTS) warned.clear()
      warned.add(fingerprint)
      const warning: ReadAfterWriteWarning = {
        code: 'FRESHET_READ_AFTER_WRITE',
        message:
          `freshet: a read of '${table}' went to replica ${d.target} ${at - wroteAt} ms after this scope wrote ` +
          `'${table}': it may not see that write. Wrap the read in readYourWrites(pool.lastWriteToken(), ...) ` +
          'or withPrimary(...), or enable consistency.causal (or consistency.sticky_after_write_ms).',
        table,
        target: d.target,
        fingerprint,
        sinceWriteMs: at - wroteAt,
      }
      pool.emit('warning', warning)
      pool.emit('log', 'warn', warning.message, { ...warning })
      if (options.processWarning !== false) {
        process.emitWarning(warning.message, { type: 'FreshetWarning', code: warning.code })
      }
      return
    }
  }
  pool.on('decision', onDecision)
  return () => {
    pool.off('decision', onDecision)
  }
}

function prune(tables: Map<string, number>, before: number): void {
  for (const [t, at] of tables) if (at < before) tables.delete(t)
}
