// Writes freshet's heartbeat row on the primary every `lag.heartbeat.interval_ms`, so a replica's lag
// is the age of the newest heartbeat it has replayed (no false lag when the primary is idle).

import pg from 'pg'
import { withTimeout } from './node-monitor.js'

/** A connection the writer can send SQL over. */
export interface HeartbeatConnection {
  query(sql: string): Promise<unknown>
  end(): Promise<void>
}

/** The engine-specific half of the heartbeat: how to connect, the two statements, which errors last. */
export interface HeartbeatDialect {
  connect(url: string, timeoutMs: number, onError: () => void): Promise<HeartbeatConnection>
  createSql(table: string): string
  writeSql(table: string): string
  /** Errors that will not go away by retrying (permissions, read-only server, missing schema). */
  isLasting(err: Error & { code?: string }): boolean
}

/** PostgreSQL: timestamptz from clock_timestamp(), ON CONFLICT. */
export const PG_HEARTBEAT: HeartbeatDialect = Object.freeze({
  async connect(url: string, timeoutMs: number, onError: () => void): Promise<HeartbeatConnection> {
    const client = new pg.Client({
      connectionString: url,
      connectionTimeoutMillis: timeoutMs,
      application_name: 'freshet-heartbeat',
    })
    client.on('error', onError)
    await client.connect()
    return client
  },
  createSql: (table: string) =>
    `CREATE TABLE IF NOT EXISTS ${table} (id int PRIMARY KEY, ts timestamptz NOT NULL)`,
  writeSql: (table: string) =>
    `INSERT INTO ${table} (id, ts) VALUES (1, clock_timestamp()) ON CONFLICT (id) DO UPDATE SET ts = excluded.ts`,
  isLasting: (e: Error & { code?: string }) => e.code === '42501' || e.code === '25006' || e.code === '42P01',
})

export interface HeartbeatWriterOptions {
  readonly table: string
  readonly intervalMs: number
  readonly timeoutMs: number
  /** URL of the current primary (it changes after a promotion). */
  readonly primaryUrl: () => string
  /** Called once when the table cannot be created or written, with the reason. */
  readonly onUnavailable: (reason: string) => void
  readonly onAvailable: () => void
  /** The engine's statements and connections; PostgreSQL's by default. */
  readonly dialect?: HeartbeatDialect
}

/** One row per freshet instance would grow without bound; one shared row (id 1) is enough for lag. */
export class HeartbeatWriter {
  readonly #o: HeartbeatWriterOptions
  #client: HeartbeatConnection | null = null
  #url: string | null = null
  #timer: NodeJS.Timeout | null = null
  #stopped = false
  #ready = false
  #reportedUnavailable = false
  /** Consecutive failed beats, for the retry backoff, and the primary they failed on. */
  #failures = 0
  #failedUrl: string | null = null

  constructor(options: HeartbeatWriterOptions) {
    this.#o = options
  }

  start(): void {
    this.#stopped = false
    void this.#tick()
  }

  /** Writes one heartbeat now (creating the table first if needed). */
  async beat(): Promise<boolean> {
    try {
      const client = await this.#connect()
      if (!this.#ready) {
        await withTimeout(
          client.query(this.#dialect.createSql(this.#o.table)),
          this.#o.timeoutMs * 4,
          'creating the heartbeat table timed out',
        )
        this.#ready = true
        this.#reportedUnavailable = false
        this.#o.onAvailable()
      }
      await withTimeout(
        client.query(this.#dialect.writeSql(this.#o.table)),
        this.#o.timeoutMs,
        'heartbeat write timed out',
      )
      this.#failures = 0
      return true
    } catch (err) {
      const e = err as Error & { code?: string }
      const lasting = this.#dialect.isLasting(e)
      // Permission problems and read-only primaries are lasting: say so once; connection trouble is the
      // health monitor's business.
      if (!this.#reportedUnavailable && lasting) {
        this.#reportedUnavailable = true
        this.#o.onUnavailable(`${e.message} (falling back to replay LSN and timestamps)`)
      }
      this.#ready = false
      // an SQL error leaves a good connection: keep it, rather than log in again every interval
      if (!lasting) this.#drop()
      this.#failures++
      this.#failedUrl = this.#url ?? this.#o.primaryUrl()
      return false
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true
    if (this.#timer) clearTimeout(this.#timer)
    this.#drop()
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return
    await this.beat()
    if (this.#stopped) return
    this.#timer = setTimeout(() => void this.#tick(), this.#nextDelay())
    this.#timer.unref()
  }

  /**
   * The interval while beats succeed; after failures it doubles up to 30 s (a primary that refuses the
   * table is not asked four times a second forever), and starts over when the primary changes.
   */
  #nextDelay(): number {
    if (this.#failures === 0) return this.#o.intervalMs
    if (this.#failedUrl !== this.#o.primaryUrl()) {
      this.#failures = 0
      return this.#o.intervalMs
    }
    return retryDelayMs(this.#o.intervalMs, this.#failures)
  }

  get #dialect(): HeartbeatDialect {
    return this.#o.dialect ?? PG_HEARTBEAT
  }

  async #connect(): Promise<HeartbeatConnection> {
    const url = this.#o.primaryUrl()
    if (this.#client && this.#url === url) return this.#client
    this.#drop()
    const client = await this.#dialect.connect(url, this.#o.timeoutMs, () => this.#drop())
    this.#client = client
    this.#url = url
    this.#ready = false
    return client
  }

  #drop(): void {
    const client = this.#client
    this.#client = null
    this.#url = null
    if (client) void client.end().catch(() => {})
  }
}

/** The wait before the next heartbeat after `failures` failed ones in a row: doubling, at most 30 s. */
export function retryDelayMs(intervalMs: number, failures: number): number {
  if (failures <= 0) return intervalMs
  return Math.min(Math.max(intervalMs, 30_000), intervalMs * 2 ** Math.min(failures, 16))
}
