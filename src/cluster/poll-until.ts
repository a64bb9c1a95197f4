// Polls a condition until it holds or a deadline passes: the harness never sleeps blindly.

import { setTimeout as delay } from 'node:timers/promises'
import { ClusterError } from './cluster-error.js'

/**
 * Calls `check` every `intervalMs` until it returns a value other than `undefined`/`false`, and
 * returns that value. Errors thrown by `check` count as "not yet" until the deadline, then the last
 * one becomes the cause of the timeout error.
 *
 * @example
 * await pollUntil(async () => (await isStreaming()) || undefined, 10_000, 'replica_1 streaming')
 */
export async function pollUntil<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs: number,
  what: string,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const value = await check()
      if (value !== undefined && value !== false) return value
    } catch (err) {
      lastError = err
    }
    if (Date.now() >= deadline) {
      const because = lastError instanceof Error ? `: ${lastError.message}` : ''
      throw new ClusterError(`timed out after ${timeoutMs} ms waiting for ${what}${because}`, {
        cause: lastError,
      })
    }
    await delay(intervalMs)
  }
}
