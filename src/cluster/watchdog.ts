// A detached process that kills a cluster's servers and removes its directory when our process dies.

import { type ChildProcess, spawn } from 'node:child_process'
import type { Socket } from 'node:net'

// Plain CommonJS run with `node -e`, so it works the same from TypeScript sources (tsx) and from dist.
// It learns of our death when its stdin pipe closes (any death, SIGKILL included) or our pid vanishes.
// A cluster's processes are those whose cwd is inside root (as in processes-in.ts): postgres chdirs to
// its data dir and its children inherit it, and a recycled pid elsewhere is never touched.
const WATCHDOG_SOURCE = `
const fs = require('fs'), path = require('path'), cp = require('child_process')
const [root, ppid] = [process.argv[1], Number(process.argv[2])]
process.title = 'freshet-cluster-watchdog ' + root
const alive = (pid) => { try { process.kill(pid, 0); return true } catch (e) { return e.code === 'EPERM' } }
function inside() {
  const pids = []
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\\d+$/.test(e)) continue
    try { const cwd = fs.readlinkSync('/proc/' + e + '/cwd'); if (cwd === root || cwd.startsWith(root + '/')) pids.push(Number(e)) } catch {}
  }
  return pids
}
function shmIds() {
  const ids = []
  try {
    for (const e of fs.readdirSync(root, { withFileTypes: true })) {
      if (!e.isDirectory()) continue
      try { const id = fs.readFileSync(path.join(root, e.name, 'postmaster.pid'), 'utf8').split('\\n')[6].trim().split(/\\s+/)[1]; if (id) ids.push(id) } catch {}
    }
  } catch {}
  return ids
}
let done = false
function cleanup() {
  if (done) return
  done = true
  const deadline = Date.now() + 10000
  const sweep = () => {
    const left = inside()
    for (const pid of left) { try { process.kill(pid, 'SIGKILL') } catch {} }
    if (left.length > 0 && Date.now() < deadline) return setTimeout(sweep, 25)
    for (const id of shmIds()) { try { cp.spawnSync('ipcrm', ['-m', id], { stdio: 'ignore' }) } catch {} }
    try { fs.rmSync(root, { recursive: true, force: true }) } catch {}
    process.exit(0)
  }
  sweep()
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGPIPE']) process.on(sig, () => {})
process.stdin.on('data', () => {})
process.stdin.on('end', cleanup)
process.stdin.on('close', cleanup)
process.stdin.on('error', cleanup)
setInterval(() => { if (!alive(ppid)) cleanup() }, 500)
`

/** A running watchdog; `release()` lets it go once the cluster has cleaned up after itself. */
export interface Watchdog {
  readonly pid: number | undefined
  /** Closes the pipe: the watchdog removes whatever is left under root (normally nothing) and exits. */
  release(): void
}

/**
 * Starts the watchdog for `root`. It survives SIGINT/SIGTERM/SIGKILL of this process (own process
 * group, detached) and then SIGKILLs every process running inside `root` (the cluster's servers),
 * removes leftover shared memory and deletes `root`.
 *
 * @example
 * const dog = startWatchdog('/tmp/freshet-cluster-abc')
 * // ... on a clean stop, after removing the directory:
 * dog.release()
 */
export function startWatchdog(root: string): Watchdog {
  const child: ChildProcess = spawn(process.execPath, ['-e', WATCHDOG_SOURCE, root, String(process.pid)], {
    detached: true,
    stdio: ['pipe', 'ignore', 'ignore'],
  })
  child.unref()
  const pipe = child.stdin as Socket | null
  pipe?.on('error', () => {})
  pipe?.unref()
  return {
    pid: child.pid,
    release: () => pipe?.end(),
  }
}
