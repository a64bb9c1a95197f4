// Finds the processes running inside a directory: how the harness tells a node's processes apart.

import { readdirSync, readlinkSync } from 'node:fs'

/**
 * Pids of every live process whose working directory is `dir` or below it (Linux /proc). Postgres
 * chdirs to its data directory, and its children (which call setsid(), so they are not in the
 * postmaster's process group) inherit it, so this finds a node's whole process tree.
 */
export function processesIn(dir: string): number[] {
  const pids: number[] = []
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return pids
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const cwd = readlinkSync(`/proc/${entry}/cwd`)
      if (cwd === dir || cwd.startsWith(`${dir}/`)) pids.push(Number(entry))
    } catch {
      // exited meanwhile, or a zombie
    }
  }
  return pids
}
