// The process side every harness server shares (PostgreSQL, MariaDB, etcd): stop with a signal and
// escalate to SIGKILL after a deadline, kill and reap every process left in the server's directory,
// and read the tail of its log for error messages.

import type { ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { pollUntil } from './poll-until.js'
import { processesIn } from './processes-in.js'

/** Sends `sig` to a pid; true when it was delivered (or the process exists but is not ours to signal). */
export function signal(pid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, sig)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Sends `sig` to the server and waits for `exited`; after `timeoutMs` (when given) calls `kill`.
 *
 * @example await stopServer(child, exited, 'SIGTERM', 30_000, () => server.kill())
 */
export async function stopServer(
  child: ChildProcess | null,
  exited: Promise<void>,
  sig: NodeJS.Signals,
  timeoutMs: number | null,
  kill: () => Promise<void>,
): Promise<void> {
  if (!child?.pid) return
  // Hold the event loop while we wait: the child handle is unref'd so it never keeps us alive.
  child.ref()
  signal(child.pid, sig)
  if (timeoutMs === null) return exited
  let timer: NodeJS.Timeout | undefined
  const done = await Promise.race([
    exited.then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs)
    }),
  ])
  clearTimeout(timer)
  if (!done) await kill()
}

/**
 * SIGKILLs the server (a crash), waits for it to exit, then SIGKILLs whatever still runs in `dir`
 * (PostgreSQL backends, helper processes) until nothing is left.
 */
export async function killServer(
  child: ChildProcess | null,
  exited: Promise<void>,
  dir: string,
): Promise<void> {
  if (child?.pid) {
    child.ref()
    signal(child.pid, 'SIGKILL')
    await exited
  }
  // Processes left on their own exit when they notice their parent's death; do not wait for that.
  await pollUntil(
    () => {
      const left = processesIn(dir)
      for (const pid of left) signal(pid, 'SIGKILL')
      return left.length === 0
    },
    10_000,
    `the processes of ${dir} to exit`,
    20,
  )
}

/** The last `lines` lines of a log file (from byte `fromByte`), or '(no log)'. */
export function logTail(file: string, lines = 20, fromByte = 0): string {
  try {
    return readFileSync(file)
      .subarray(fromByte)
      .toString('utf8')
      .trimEnd()
      .split('\n')
      .slice(-lines)
      .join('\n')
  } catch {
    return '(no log)'
  }
}
