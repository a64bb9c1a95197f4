// CPU time of a process and all its descendants from /proc (utime + stime), for router CPU per wall second.

import { readdirSync, readFileSync } from 'node:fs'

const TICKS_PER_SECOND = 100 // USER_HZ: 100 on every Linux build we run on

interface Stat {
  ppid: number
  ticks: number
}

function readStat(pid: string): Stat | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // fields after the parenthesised command name (which may hold spaces): state ppid ... utime(14) stime(15)
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) }
  } catch {
    return null
  }
}

/** CPU seconds used so far by `pid` and every live descendant (pgpool-II forks one child per client slot). */
export function treeCpuSeconds(pid: number): number {
  const stats = new Map<number, Stat>()
  for (const name of readdirSync('/proc')) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue
    const st = readStat(name)
    if (st) stats.set(Number(name), st)
  }
  const children = new Map<number, number[]>()
  for (const [p, st] of stats) {
    const list = children.get(st.ppid) ?? []
    list.push(p)
    children.set(st.ppid, list)
  }
  let ticks = 0
  const stack = [pid]
  while (stack.length) {
    const p = stack.pop()!
    ticks += stats.get(p)?.ticks ?? 0
    stack.push(...(children.get(p) ?? []))
  }
  return ticks / TICKS_PER_SECOND
}
