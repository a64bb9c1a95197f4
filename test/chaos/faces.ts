// The two faces of freshet the chaos readers go through: the library pool and the wire-protocol proxy.

import { AsyncLocalStorage } from 'node:async_hooks'
import pg from 'pg'
import type { Classification } from '../../src/core/classify/classification.js'
import type { Decision } from '../../src/core/route/decision.js'
import { type FreshetPool, withScope } from '../../src/index.js'
import type { ProxyServer } from '../../src/proxy/proxy-server.js'
import type { RoutingEngine } from '../../src/routing/routing-engine.js'
import { type ChaosLog, type Face, now } from './checker.js'

const RYW_READ =
  '/* FRESHNESS: EVENTUAL */ SELECT coalesce(max(n), 0)::int AS n, inet_server_port() AS port FROM chaos_ryw WHERE session = $1'
const RYW_WRITE = 'INSERT INTO chaos_ryw (session, n) VALUES ($1, $2)'

function isWrite(d: Decision, c: Classification): boolean {
  return d.reason === 'write' || c.requiresPrimary
}

/** Records every write decision of an engine with its time, for the "never on a standby" check. */
function recordWrites(engine: RoutingEngine, face: string, log: ChaosLog): () => void {
  const onDecision = (d: Decision, c: Classification) => {
    if (isWrite(d, c) && c.kind !== 'transaction' && c.kind !== 'session')
      log.writeDecisions.push({ face, at: now(), target: d.target })
  }
  engine.on('decision', onDecision)
  return () => engine.off('decision', onDecision)
}

/**
 * The library face: `pool.query` with the tier hint. Each read runs in its own async scope so the
 * decision event (emitted in the caller's context) is attributed to exactly that read.
 */
export function libraryFace(pool: FreshetPool, log: ChaosLog): Face {
  const current = new AsyncLocalStorage<{ decision: Decision | null }>()
  const onDecision = (d: Decision) => {
    const slot = current.getStore()
    if (slot) slot.decision = d
  }
  pool.on('decision', onDecision)
  const detach = recordWrites(pool.engine, 'library', log)
  return {
    name: 'library',
    read: (_tier, sql) => {
      const slot = { decision: null as Decision | null }
      return current.run(slot, async () => {
        const res = await pool.query(sql)
        const row = res.rows[0] as { v: number; port: number }
        return {
          value: row.v,
          port: Number(row.port),
          reason: slot.decision?.reason ?? null,
          boundMs: slot.decision?.stalenessBoundMs ?? null,
        }
      })
    },
    session: async (id) => ({
      // One request scope per round: the write's token makes the read wait for a replica that has it.
      round: (k, acked) => {
        const slot = { decision: null as Decision | null }
        return current.run(slot, () =>
          withScope(async () => {
            await pool.query(RYW_WRITE, [id, k])
            acked()
            slot.decision = null
            const res = await pool.query(RYW_READ, [id])
            const row = res.rows[0] as { n: number; port: number }
            const d = slot.decision as Decision | null
            return { value: row.n, port: Number(row.port), reason: d?.reason ?? null }
          }),
        )
      },
      close: async () => {},
    }),
    close: async () => {
      pool.off('decision', onDecision)
      detach()
    },
  }
}

/**
 * The proxy face: plain pg clients through the proxy (one per reader). Decisions cannot be tied to a
 * client's statement from outside, except EVENTUAL ones: only that reader sends EVENTUAL reads.
 */
export function proxyFace(proxy: ProxyServer, url: string, log: ChaosLog): Face {
  const eventual: { at: number; d: Decision }[] = []
  const onDecision = (d: Decision, c: Classification) => {
    if (d.tier === 'eventual' && !c.requiresPrimary) {
      eventual.push({ at: now(), d })
      if (eventual.length > 64) eventual.shift()
    }
  }
  proxy.engine.on('decision', onDecision)
  const detach = recordWrites(proxy.engine, 'proxy', log)
  const clients = new Map<string, pg.Client>()
  const connect = async (): Promise<pg.Client> => {
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 })
    c.on('error', () => {})
    await c.connect()
    return c
  }
  return {
    name: 'proxy',
    read: async (tier, sql) => {
      const started = now()
      try {
        let c = clients.get(tier)
        if (!c) {
          c = await connect()
          clients.set(tier, c)
        }
        const res = await c.query(sql)
        const row = res.rows[0] as { v: number; port: number }
        const d = tier === 'eventual' ? eventual.findLast((e) => e.at >= started)?.d : undefined
        return {
          value: row.v,
          port: Number(row.port),
          reason: d?.reason ?? null,
          boundMs: d?.stalenessBoundMs ?? null,
        }
      } catch (err) {
        // a broken connection is replaced on the next read
        const c = clients.get(tier)
        clients.delete(tier)
        if (c) void c.end().catch(() => {})
        throw err
      }
    },
    session: async (id) => {
      // The proxy keeps each client session's token: the same connection writes, then reads.
      const c = await connect()
      return {
        round: async (k, acked) => {
          await c.query(RYW_WRITE, [id, k])
          acked()
          // NEAR_RT here: EVENTUAL decisions on this engine belong to the eventual reader alone.
          const res = await c.query(RYW_READ.replace('EVENTUAL', 'NEAR_RT'), [id])
          const row = res.rows[0] as { n: number; port: number }
          return { value: row.n, port: Number(row.port), reason: null }
        },
        close: async () => {
          await c.end().catch(() => {})
        },
      }
    },
    close: async () => {
      proxy.engine.off('decision', onDecision)
      detach()
      for (const c of clients.values()) await c.end().catch(() => {})
      clients.clear()
    },
  }
}
