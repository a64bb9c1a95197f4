// Test helpers that look at the real process table.

export { processesIn as processesUnder } from '../../src/cluster/processes-in.js'

/** Whether a process (or, with a negative pid, a process group) exists. */
export function exists(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
