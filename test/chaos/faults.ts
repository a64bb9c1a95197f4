// The fault schedule run while the checker runs: lag, dead and unreachable replicas, slow links, and a failover.

import { parseLsn } from '../../src/core/lsn.js'
import type { FaultRelay, LocalCluster } from '../cluster/index.js'
import { type ChaosLog, now } from './checker.js'

export { seededRandom } from './seeded-random.js'

export type FaultKind =
  | 'pause_replay'
  | 'apply_delay'
  | 'kill_replica'
  | 'blackhole'
  | 'reset'
  | 'slow_link'
  | 'failover'

/** Replica faults, in the order the short schedule runs them. */
export const REPLICA_FAULTS: readonly FaultKind[] = [
  'pause_replay',
  'apply_delay',
  'slow_link',
  'blackhole',
  'reset',
  'kill_replica',
]

export interface FaultContext {
  cluster: LocalCluster
  /** One relay per replica name; freshet reaches that replica through it. */
  relays: Map<string, FaultRelay>
  log: ChaosLog
  rand: () => number
}

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)]!
}

/** Holds a fault for `ms` (the schedule's own timing: the fault lasts this long). */
function hold(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/** Runs one fault on a random current replica for about `holdMs`, then restores it. */
export async function runFault(ctx: FaultContext, kind: FaultKind, holdMs: number): Promise<void> {
  const { cluster, log, rand } = ctx
  if (kind === 'failover') return failover(ctx)
  // Running replicas reached through a relay (after a failover the dead old primary is neither).
  const name = pick(
    rand,
    cluster.replicas.filter((r) => ctx.relays.has(r.name) && r.pid !== null),
  ).name
  const relay = ctx.relays.get(name)!
  switch (kind) {
    case 'pause_replay':
      log.fault(`pause replay ${name}`)
      await cluster.pauseReplay(name)
      await hold(holdMs)
      await cluster.resumeReplay(name)
      break
    case 'apply_delay': {
      const ms = 800 + Math.round(rand() * 1500)
      log.fault(`apply delay ${ms} ms on ${name}`)
      await cluster.setApplyDelay(name, ms)
      await hold(holdMs)
      await cluster.setApplyDelay(name, 0)
      break
    }
    case 'slow_link': {
      const latencyMs = 30 + Math.round(rand() * 120)
      log.fault(`slow link to ${name} (${latencyMs} ms + 0..50 ms jitter per chunk)`)
      relay.set({ mode: 'delay', latencyMs, jitterMs: 50 })
      await hold(holdMs)
      relay.set({ mode: 'pass' })
      break
    }
    case 'blackhole':
      log.fault(`blackhole ${name}`)
      relay.set({ mode: 'blackhole' })
      await hold(holdMs)
      relay.set({ mode: 'pass' })
      break
    case 'reset':
      log.fault(`reset connections to ${name}, refuse new ones`)
      relay.set({ mode: 'refuse' })
      relay.reset()
      await hold(holdMs)
      relay.set({ mode: 'pass' })
      break
    case 'kill_replica':
      log.fault(`kill ${name}`)
      await cluster.kill(name)
      await hold(holdMs)
      await cluster.start(name)
      break
  }
  log.fault(`restored ${name}`)
}

/**
 * Kills the primary, promotes the replica that received the most WAL and re-points the others to it.
 * The cluster runs `synchronous_standby_names = 'ANY 1 (...)'`, so that replica holds every
 * acknowledged write; without it, asynchronous replication could lose acknowledged writes at a failover
 * whatever freshet does.
 */
async function failover(ctx: FaultContext): Promise<void> {
  const { cluster, log } = ctx
  // No lag fault may outlive the failover: promotion would wait for a paused replay or a delay.
  for (const r of cluster.replicas) {
    await cluster.resumeReplay(r.name).catch(() => {})
    await cluster.setApplyDelay(r.name, 0).catch(() => {})
    ctx.relays.get(r.name)?.set({ mode: 'pass' })
  }
  const old = cluster.primary.name
  log.fault(`kill primary ${old}`)
  await cluster.kill(old)
  const received = await Promise.all(
    cluster.replicas.map(async (r) => {
      const { rows } = await cluster.query<{ l: string | null }>(
        r.name,
        'SELECT pg_last_wal_receive_lsn()::text AS l',
      )
      return { name: r.name, lsn: parseLsn(rows[0]?.l ?? '0/0') ?? 0n }
    }),
  )
  const chosen = received.reduce((a, b) => (b.lsn > a.lsn ? b : a)).name
  // After the failover only one replica may be left: synchronous commit would block every write on it.
  await cluster.query(chosen, "ALTER SYSTEM SET synchronous_standby_names = ''")
  await cluster.query(chosen, 'SELECT pg_reload_conf()')
  log.roles.push({ at: now(), primary: old, promoting: chosen })
  log.fault(`promote ${chosen}`)
  await cluster.promote(chosen)
  log.roles.push({ at: now(), primary: chosen, promoting: null })
  for (const r of cluster.replicas) {
    if (r.name === old) continue
    log.fault(`repoint ${r.name} to ${chosen}`)
    await cluster.repoint(r.name, chosen)
  }
  log.fault('failover done')
}

export interface ScheduleOptions {
  /** Total schedule length (ms); the failover happens at about 60% of it. */
  durationMs: number
  /** The short schedule: every replica fault once in a fixed order, then the failover, then one more. */
  short?: boolean
  holdMs?: number
  gapMs?: number
}

/** Runs the schedule; resolves when it ended with every fault restored. */
export async function runSchedule(ctx: FaultContext, o: ScheduleOptions): Promise<void> {
  const holdMs = o.holdMs ?? 2000
  const gapMs = o.gapMs ?? 800
  const started = now()
  ctx.log.roles.push({ at: started, primary: ctx.cluster.primary.name, promoting: null })
  ctx.log.fault('schedule start')
  if (o.short) {
    for (const kind of REPLICA_FAULTS) {
      await runFault(ctx, kind, holdMs)
      await hold(gapMs)
    }
    await runFault(ctx, 'failover', 0)
    await hold(gapMs)
    await runFault(ctx, 'pause_replay', holdMs)
    await hold(gapMs)
    ctx.log.fault('schedule end')
    return
  }
  let failedOver = false
  while (now() - started < o.durationMs) {
    if (!failedOver && now() - started >= o.durationMs * 0.6) {
      failedOver = true
      await runFault(ctx, 'failover', 0)
    } else {
      await runFault(ctx, pick(ctx.rand, REPLICA_FAULTS), holdMs / 2 + ctx.rand() * holdMs)
    }
    await hold(gapMs / 2 + ctx.rand() * gapMs)
  }
  ctx.log.fault('schedule end')
}
