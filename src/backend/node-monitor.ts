// Probes one node on a jittered interval: health, role (pg_is_in_recovery) and replication lag
// (heartbeat age, replay LSN against the primary's LSN, replay timestamp as the last resort).

import pg from 'pg'
import { parseLsn } from '../core/lsn.js'
import type { NodeReading } from './node-reading.js'
import { ProbeLoop } from './probe-loop.js'

export type { NodeReading } from './node-reading.js'

/** What the monitor needs to know about the primary's last reading to judge "caught up". */
export interface PrimaryMark {
  /** Primary's WAL LSN as a bigint, sampled at `at`. */
  readonly lsn: bigint
  readonly at: number
}

export interface NodeMonitorOptions {
  readonly name: string
  readonly url: string
  readonly intervalMs: number
  readonly timeoutMs: number
  /** Heartbeat table to read, or null to use replay timestamps only. */
  heartbeatTable: string | null
  /** The primary's latest LSN mark, for the caught-up shortcut. */
  readonly primaryMark: () => PrimaryMark | null
  readonly onReading: (name: string, reading: NodeReading) => void
  /**
   * Runs before each probe query is sent, at most `beforeProbeMaxMs` (replicas: a fresh primary position
   * sample, so the replica's reading proves freshness as of a moment just before it).
   */
  readonly beforeProbe?: () => Promise<unknown>
  readonly beforeProbeMaxMs?: number
  /** The delay until the next scheduled probe, given the jittered default (probe sooner near a tier bound). */
  readonly nextDelayMs?: (name: string, jittered: number) => number
}

// One round trip: role, LSNs, heartbeat age and replay timestamp age, all measured on the node's clock.
const probeSql = (heartbeat: string | null): string => `
SELECT pg_is_in_recovery() AS rec,
       CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text ELSE pg_current_wal_lsn()::text END AS lsn,
       CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END AS paused,
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS tli,
       ${heartbeat ? `(SELECT extract(epoch FROM clock_timestamp() - max(ts)) * 1000 FROM ${heartbeat})` : 'NULL::float8'} AS hb_age_ms,
       extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000 AS replay_age_ms`

/** One row of the probe query. */
interface ProbeRow {
  rec: boolean
  lsn: string | null
  paused: boolean | null
  tli: number | null
  hb_age_ms: number | null
  replay_age_ms: number | null
}

/**
 * Keeps one dedicated connection to a node (never from the query pools, so a saturated pool cannot
 * stall lag readings) and probes it until stopped.
 */
export class NodeMonitor {
  readonly #options: NodeMonitorOptions
  #client: pg.Client | null = null
  #connecting: Promise<pg.Client> | null = null
  readonly #loop: ProbeLoop
  #heartbeatMissing = false

  constructor(options: NodeMonitorOptions) {
    this.#options = options
    this.#loop = new ProbeLoop(options, () => this.#probe())
  }

  get name(): string {
    return this.#options.name
  }

  get url(): string {
    return this.#options.url
  }

  get intervalMs(): number {
    return this.#options.intervalMs
  }

  get timeoutMs(): number {
    return this.#options.timeoutMs
  }

  /** Starts probing: the first probe runs at once, later ones on a jittered interval. */
  start(): void {
    this.#loop.start()
  }

  /**
   * Runs one probe now and returns its reading (also delivered to onReading). Concurrent callers share
   * the probe in flight: one connection, one query at a time.
   */
  probe(): Promise<NodeReading> {
    return this.#loop.probe()
  }

  async #probe(): Promise<NodeReading> {
    const started = Date.now()
    const o = this.#options
    let sentAt = started
    try {
      const client = await this.#connect()
      if (o.beforeProbe)
        await withTimeout(o.beforeProbe(), o.beforeProbeMaxMs ?? o.timeoutMs, '').catch(() => {})
      sentAt = Date.now()
      const res = await withTimeout(
        client.query(probeSql(this.#heartbeatMissing ? null : o.heartbeatTable)),
        o.timeoutMs,
        `probe of ${o.name} timed out after ${o.timeoutMs} ms`,
      )
      const row = res.rows[0] as ProbeRow
      const at = Date.now()
      return this.#deliver(this.#reading(row, sentAt, at, at - sentAt))
    } catch (err) {
      const message = (err as Error).message
      if (/relation .* does not exist/.test(message) && o.heartbeatTable && !this.#heartbeatMissing) {
        // The heartbeat table is not there (yet): fall back to replay timestamps until it appears.
        this.#heartbeatMissing = true
        return this.#probe()
      }
      this.#drop()
      return this.#deliver({
        ok: false,
        at: Date.now(),
        sentAt,
        inRecovery: null,
        lsn: null,
        lagMs: null,
        lagSource: null,
        replayPaused: null,
        timeline: null,
        error: message,
        rttMs: null,
      })
    }
  }

  /** Tells the monitor the heartbeat table exists now (after the writer created it). */
  heartbeatAvailable(table: string | null): void {
    this.#options.heartbeatTable = table
    this.#heartbeatMissing = false
  }

  async stop(): Promise<void> {
    this.#loop.stop()
    const client = this.#client
    this.#client = null
    if (client) await client.end().catch(() => {})
  }

  #reading(row: ProbeRow, sentAt: number, at: number, rttMs: number): NodeReading {
    const base = {
      ok: true,
      at,
      sentAt,
      inRecovery: row.rec,
      lsn: row.lsn,
      replayPaused: row.paused,
      error: null,
      rttMs,
    }
    if (!row.rec) return { ...base, lagMs: 0, lagSource: 'primary', timeline: row.tli }
    // Caught up: the replica replayed everything the primary had written when we last sampled it, so it
    // is at most (now - that sample) behind. This is what keeps an idle primary from looking like lag.
    const mark = this.#options.primaryMark()
    const replayed = row.lsn ? parseLsn(row.lsn) : null
    if (mark && replayed !== null && replayed >= mark.lsn) {
      return { ...base, lagMs: Math.max(0, at - mark.at), lagSource: 'caught_up', timeline: null }
    }
    if (row.hb_age_ms !== null) {
      return { ...base, lagMs: Math.max(0, Number(row.hb_age_ms)), lagSource: 'heartbeat', timeline: null }
    }
    if (row.replay_age_ms !== null) {
      return {
        ...base,
        lagMs: Math.max(0, Number(row.replay_age_ms)),
        lagSource: 'replay_timestamp',
        timeline: null,
      }
    }
    return { ...base, lagMs: null, lagSource: null, timeline: null }
  }

  #deliver(reading: NodeReading): NodeReading {
    // a probe that was in flight when the monitor stopped (node removed or moved) reports nothing
    if (!this.#loop.stopped) this.#options.onReading(this.#options.name, reading)
    return reading
  }

  async #connect(): Promise<pg.Client> {
    if (this.#client) return this.#client
    if (this.#connecting) return this.#connecting
    const client = new pg.Client({
      connectionString: this.#options.url,
      connectionTimeoutMillis: this.#options.timeoutMs,
      application_name: 'freshet-monitor',
    })
    client.on('error', () => this.#drop())
    this.#connecting = client.connect().then(
      () => {
        this.#connecting = null
        if (this.#loop.stopped) {
          void client.end().catch(() => {})
          throw new Error('monitor stopped')
        }
        this.#client = client
        return client
      },
      (err) => {
        this.#connecting = null
        void client.end().catch(() => {})
        throw err
      },
    )
    return this.#connecting
  }

  #drop(): void {
    const client = this.#client
    this.#client = null
    if (client) void client.end().catch(() => {})
  }
}

/** Rejects after `ms` unless the promise settles first. */
export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms)
      timer.unref()
    }),
  ]).finally(() => clearTimeout(timer))
}
