// The tests' one polling helper: await a condition with a deadline instead of sleeping. It is the
// harness's pollUntil (src/cluster/poll-until.ts) with the argument order tests read best.

import { pollUntil } from '../../src/cluster/poll-until.js'

/**
 * Polls `check` every `intervalMs` until it returns true; throws `timed out after N ms waiting for
 * <what>` (with the last error thrown by `check`, if any, as the cause) when `timeoutMs` passes.
 * @example
 * await eventually('replica_1 healthy', () => pool.snapshot().every((n) => n.healthy))
 */
export async function eventually(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 10_000,
  intervalMs = 25,
): Promise<void> {
  await pollUntil(async () => (await check()) || undefined, timeoutMs, what, intervalMs)
}
