// Load run of the wire-protocol proxy: hundreds of pg clients over a small server pool for a while, with
// clients dropped abruptly (socket destroyed, no Terminate) while idle, inside an open transaction and
// during a running statement. Measures throughput and the heap, and checks afterwards that no server
// connection, transaction or proxy session was left behind.
//
// The proxy, the routing engine and every client run in this one process (the servers do not): the heap
// figures cover all of them together.

import type { Socket } from 'node:net'
import v8 from 'node:v8'
import vm from 'node:vm'
import pg from 'pg'
import { pollUntil } from '../../src/cluster/poll-until.js'
import { type ProxyFixture, startProxyFixture } from '../support/proxy-fixture.js'

/** Server connections per node the proxy may open (pools.primary / pools.replicas max_active). */
export const MAX_ACTIVE = 10
const REPLICAS = 2
const ITEMS = 1000
const CONNECT_BATCH = 50
const CHAOS_INTERVAL_MS = 200
const POOL_SAMPLE_MS = 100
const BACKEND_SAMPLE_MS = 1000
const PROGRESS_MS = 10_000
const WARMUP_FRACTION = 0.2
const SETTLE_TIMEOUT_MS = 15_000
/** How long a `running` victim waits for its pg_sleep to show up as active on the primary. */
const RUNNING_SEEN_TIMEOUT_MS = 10_000
const RUNNING_ATTEMPTS = 5
/** Client-side limit of one statement or connect. */
const OP_TIMEOUT_MS = 30_000

/**
 * Heap growth that fails a run: more than 20 % AND more than 8 MB between the end of the warm-up and the
 * end. Both samples are taken in the same state (every client connected and idle, after a forced GC),
 * where runs on a 2-core machine measured -1.6 to +0.6 MB on a heap of ~25 MB (500 clients and their
 * proxy sessions, ~17 KB a pair): 8 MB is several times that noise. It is passed by a leak of ~300 bytes
 * per statement in the 20 s run (~30 000 statements after the warm-up) and of ~30 bytes per statement in
 * a 3-minute run; the 20 % keeps the bound proportionate when more clients make the heap bigger. A
 * session kept alive per dropped client (too small for this bound in a short run) is caught apart, by
 * counting the sessions still reachable after GC (see `leaks`).
 */
export const HEAP_GROWTH_LIMIT = { fraction: 0.2, bytes: 8 * 1024 * 1024 } as const

export type DisconnectKind = 'idle' | 'in_transaction' | 'running'
const KINDS: readonly DisconnectKind[] = ['idle', 'in_transaction', 'running']

export type OpKind = 'hinted_read' | 'plain_read' | 'autocommit_write' | 'transaction'

export interface LoadOptions {
  durationMs: number
  clients: number
  /** Progress lines (every 10 s) and phase changes; default: silent. */
  log?: (line: string) => void
}

export interface LoadReport {
  durationMs: number
  clients: number
  replicas: number
  maxActive: number
  ops: Record<OpKind, number>
  totalOps: number
  opsPerSec: number
  /** Errors on clients the chaos loop had not picked: each one is a failure. */
  unexpectedErrors: { total: number; byKind: Record<string, number>; samples: string[] }
  /** Errors on clients after the chaos loop picked them (expected: their socket is destroyed). */
  victimErrors: Record<string, number>
  disconnects: Record<DisconnectKind, number>
  /** `running` attempts whose pg_sleep finished before it was seen running (then tried again). */
  runningRetries: number
  heap: {
    note: string
    warmupMB: number
    endMB: number
    growthMB: number
    growthPct: number
    exceeded: boolean
    rssEndMB: number
    externalEndMB: number
  }
  /** The highest `total` (open or opening server connections) in the proxy's pool stats, per node. */
  maxServerConnections: Record<string, number>
  /** The highest number of `app` backends in pg_stat_activity, per node (sampled every second). */
  maxServerBackends: Record<string, number>
  maxWaiting: number
  /** Proxy sessions created over the run (clients + replacements), for scale. */
  sessionsCreated: number
  /** Anything left behind: sessions, session objects, pool connections in use, busy server backends. */
  leaks: string[]
  /** Write accounting: rows in the tables against acknowledged writes. */
  integrity: string[]
  /** Seconds spent connecting the clients and settling after the run (not part of durationMs). */
  connectMs: number
  settleMs: number
}

interface Slot {
  readonly index: number
  readonly client: pg.Client
  readonly clientId: number
  /** Set by the chaos loop once it owns the client: errors from then on are expected. */
  victim: boolean
  /** Asks the worker loop to return after its current operation. */
  stop: boolean
  /** The connection ended (or failed) without the chaos loop asking. */
  dead: boolean
  loop: Promise<void>
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10

/** The global `gc` (V8's --expose-gc switched on at run time). */
function exposeGc(): () => void {
  v8.setFlagsFromString('--expose-gc')
  return vm.runInNewContext('gc') as () => void
}

/** Polls `check` every 50 ms (the harness's pollUntil) until true or `timeoutMs` passes; resolves with the answer. */
function poll(check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<boolean> {
  return pollUntil(async () => (await check()) || undefined, timeoutMs, 'load settle', 50).then(
    () => true,
    () => false,
  )
}

/** Destroys a pg client's socket, sending no Terminate; resolves once it is closed. */
function destroySocket(client: pg.Client): Promise<void> {
  const stream = (client as unknown as { connection: { stream: Socket } }).connection.stream
  if (stream.closed) return Promise.resolve()
  const closed = new Promise<void>((r) => stream.once('close', () => r()))
  stream.destroy()
  return closed
}

/** Error kind for counting: SQLSTATE when there is one, else the message without numbers. */
function kindOf(err: unknown): string {
  const e = err as { code?: string; message?: string }
  const message = String(e?.message ?? err).replace(/\d+/g, 'N')
  return e?.code ? `${e.code} ${message}` : message
}

/**
 * Boots a cluster (primary + 2 replicas) with the proxy in front (at most {@link MAX_ACTIVE} server
 * connections per node), connects `clients` pg clients through it and runs a mixed workload on every
 * client for `durationMs`, while every 200 ms one client is dropped abruptly and replaced. Then ends every
 * client and checks that the proxy's pool and the servers are back to a clean state.
 */
export async function runProxyLoad(options: LoadOptions): Promise<LoadReport> {
  const log = options.log ?? (() => {})
  const gc = exposeGc()
  const f = await startProxyFixture(
    {
      pools: {
        primary: { min_idle: 0, max_active: MAX_ACTIVE, connection_timeout_ms: 5000 },
        replicas: { min_idle: 0, max_active: MAX_ACTIVE, connection_timeout_ms: 5000 },
        max_waiting: 2000,
        slow_start_ms: 0,
      },
    },
    REPLICAS,
    async (cluster) => {
      await cluster.query('primary', 'CREATE TABLE load_items (id int PRIMARY KEY, v bigint NOT NULL)')
      await cluster.query('primary', `INSERT INTO load_items SELECT g, 0 FROM generate_series(1, ${ITEMS}) g`)
      await cluster.query(
        'primary',
        'CREATE TABLE load_log (id bigserial PRIMARY KEY, client int NOT NULL, kind text NOT NULL)',
      )
      await cluster.query('primary', 'GRANT ALL ON load_items, load_log TO app')
      await cluster.query('primary', 'GRANT ALL ON SEQUENCE load_log_id_seq TO app')
    },
  )
  // direct to each node as postgres: the checks must not go through (or count against) the proxy
  const monitors = new Map<string, pg.Pool>()
  try {
    for (const node of f.cluster.nodes) {
      const m = new pg.Pool({ connectionString: node.url(), max: 3 })
      m.on('error', () => {})
      monitors.set(node.name, m)
    }
    return await drive(f, monitors, options, log, gc)
  } finally {
    await Promise.all([...monitors.values()].map((m) => m.end().catch(() => {})))
    await f.stop()
  }
}

async function drive(
  f: ProxyFixture,
  monitors: Map<string, pg.Pool>,
  options: LoadOptions,
  log: (line: string) => void,
  gc: () => void,
): Promise<LoadReport> {
  const { durationMs, clients } = options
  const nodes = f.cluster.nodes.map((n) => n.name)

  // Every logged-in proxy session, weakly: after a forced GC the ones still alive must be exactly those
  // of connected clients (a session kept reachable after its client dropped is a leak, however small).
  const sessions: WeakRef<object>[] = []
  let sessionsCreated = 0
  const register = f.proxy.register.bind(f.proxy)
  f.proxy.register = (session) => {
    sessionsCreated++
    sessions.push(new WeakRef(session))
    return register(session)
  }
  /** Sessions still reachable after a full GC (run in a task of its own: WeakRefs hold for the job). */
  async function aliveSessions(): Promise<number> {
    await sleep(0)
    gc()
    gc()
    await sleep(0)
    let n = 0
    for (let i = sessions.length - 1; i >= 0; i--) {
      if (sessions[i]!.deref() === undefined) sessions.splice(i, 1)
      else n++
    }
    return n
  }
  const primaryMonitor = monitors.get(f.cluster.primary.name)!

  const ops: Record<OpKind, number> = { hinted_read: 0, plain_read: 0, autocommit_write: 0, transaction: 0 }
  const unexpected = { total: 0, byKind: {} as Record<string, number>, samples: [] as string[] }
  const victimErrors: Record<string, number> = {}
  const disconnects: Record<DisconnectKind, number> = { idle: 0, in_transaction: 0, running: 0 }
  let runningRetries = 0
  const acked = { autocommit: 0, tx: 0 }
  const maxServerConnections: Record<string, number> = Object.fromEntries(nodes.map((n) => [n, 0]))
  const maxServerBackends: Record<string, number> = Object.fromEntries(nodes.map((n) => [n, 0]))
  let maxWaiting = 0
  let stopped = false
  /** Workers return after their current operation and the chaos loop waits (for the warm-up sample). */
  let paused = false
  let nextClientId = 1

  function fail(err: unknown, where: string): void {
    const kind = `${where}: ${kindOf(err)}`
    unexpected.total++
    unexpected.byKind[kind] = (unexpected.byKind[kind] ?? 0) + 1
    if (unexpected.samples.length < 10) unexpected.samples.push(`${kind} (${(err as Error)?.stack ?? err})`)
  }
  function expected(err: unknown): void {
    const kind = kindOf(err)
    victimErrors[kind] = (victimErrors[kind] ?? 0) + 1
  }

  const rand = (n: number) => Math.floor(Math.random() * n)

  /** One operation of the mix; throws on a wrong answer too. */
  async function oneOp(c: pg.Client, clientId: number): Promise<void> {
    const r = Math.random()
    const id = rand(ITEMS) + 1
    if (r < 0.35) {
      const res = await c.query(`/* FRESHNESS: EVENTUAL */ SELECT id, v FROM load_items WHERE id = $1`, [id])
      if (res.rows[0]?.id !== id) throw new Error(`hinted read of ${id} returned ${JSON.stringify(res.rows)}`)
      ops.hinted_read++
    } else if (r < 0.6) {
      const res = await c.query('SELECT count(*)::int AS n FROM load_items WHERE id <= 10')
      if (res.rows[0]?.n !== 10) throw new Error(`plain read returned ${JSON.stringify(res.rows)}`)
      ops.plain_read++
    } else if (r < 0.8) {
      if (r < 0.7) {
        const res = await c.query('UPDATE load_items SET v = v + 1 WHERE id = $1', [id])
        if (res.rowCount !== 1) throw new Error(`update of ${id} touched ${res.rowCount} rows`)
      } else {
        await c.query(`INSERT INTO load_log (client, kind) VALUES ($1, 'autocommit')`, [clientId])
        acked.autocommit++
      }
      ops.autocommit_write++
    } else {
      await c.query('BEGIN')
      await c.query('UPDATE load_items SET v = v + 1 WHERE id = $1', [id])
      await c.query(`INSERT INTO load_log (client, kind) VALUES ($1, 'tx')`, [clientId])
      await c.query('COMMIT')
      acked.tx++
      ops.transaction++
    }
  }

  async function work(slot: Slot): Promise<void> {
    while (!stopped && !paused && !slot.stop && !slot.dead) {
      try {
        await oneOp(slot.client, slot.clientId)
      } catch (err) {
        if (slot.victim) expected(err)
        else fail(err, 'query')
        // a transaction left open by a failed statement must not swallow the next operations
        if (!slot.dead) await slot.client.query('ROLLBACK').catch(() => {})
        // a broken client rejects at once (nextTick): without a real wait the loop would spin in
        // microtasks and starve every timer in the process
        await sleep(10)
      }
    }
  }

  /** A connected client in slot `index`, its worker started. */
  async function open(index: number): Promise<Slot> {
    // bounded, so that a stall (a lost answer, a connection never given back) ends as counted errors
    // rather than a hung run: ~0.25 s is the usual latency with 500 clients on 10 connections
    const client = new pg.Client({
      connectionString: f.url(),
      query_timeout: OP_TIMEOUT_MS,
      connectionTimeoutMillis: OP_TIMEOUT_MS,
    })
    const clientId = nextClientId++
    const slot: Slot = {
      index,
      client,
      clientId,
      victim: false,
      stop: false,
      dead: false,
      loop: Promise.resolve(),
    }
    client.on('error', (err) => {
      if (slot.victim) expected(err)
      else fail(err, 'client error event')
    })
    client.on('end', () => {
      if (!slot.victim && !stopped) fail(new Error('the connection ended'), 'client end')
      slot.dead = true
    })
    await client.connect()
    slot.loop = work(slot)
    return slot
  }

  // ---- connect -------------------------------------------------------------------------------------
  const connectStarted = Date.now()
  const slots: Slot[] = []
  for (let i = 0; i < clients; i += CONNECT_BATCH) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(CONNECT_BATCH, clients - i) }, (_, k) => open(i + k)),
    )
    slots.push(...batch)
  }
  const connectMs = Date.now() - connectStarted
  log(`${clients} clients connected through the proxy in ${(connectMs / 1000).toFixed(1)} s`)

  // ---- samplers ------------------------------------------------------------------------------------
  function samplePool(): void {
    for (const [node, s] of Object.entries(f.proxy.poolStats())) {
      maxServerConnections[node] = Math.max(maxServerConnections[node] ?? 0, s.total)
      maxWaiting = Math.max(maxWaiting, s.waiting)
    }
  }
  const poolTimer = setInterval(samplePool, POOL_SAMPLE_MS)
  async function sampleBackends(): Promise<void> {
    await Promise.all(
      nodes.map(async (node) => {
        const { rows } = await monitors
          .get(node)!
          .query<{ n: number }>(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'app' AND backend_type = 'client backend'",
          )
        maxServerBackends[node] = Math.max(maxServerBackends[node] ?? 0, rows[0]!.n)
      }),
    )
  }
  let backendSampling = true
  const backendLoop = (async () => {
    while (backendSampling) {
      await sampleBackends().catch((err) => fail(err, 'pg_stat_activity sample'))
      await sleep(BACKEND_SAMPLE_MS)
    }
  })()

  // ---- chaos ---------------------------------------------------------------------------------------
  let victimCount = 0

  /** Waits until a statement tagged `marker` runs on the primary; false when `done` settles first. */
  async function seenRunning(marker: string, done: { settled: boolean }): Promise<boolean> {
    const deadline = Date.now() + RUNNING_SEEN_TIMEOUT_MS
    while (!done.settled && Date.now() < deadline) {
      const { rows } = await primaryMonitor.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND usename = 'app' AND strpos(query, $1) > 0",
        [marker],
      )
      if (rows[0]!.n > 0) return !done.settled
      await sleep(5)
    }
    return false
  }

  /** Drops the client of `slot` abruptly at the moment `kind`, then puts a fresh client in its place. */
  async function victimize(slot: Slot, kind: DisconnectKind): Promise<void> {
    slot.stop = true
    await slot.loop // its current operation completes (and counts) as usual
    if (slot.dead) return // ended by itself (already counted as unexpected); replaced by the caller
    const c = slot.client
    // errors count as expected only from the drop on: the client is healthy until then
    const drop = () => {
      slot.victim = true
      return destroySocket(c)
    }
    const n = ++victimCount
    try {
      if (kind === 'in_transaction') {
        await c.query('BEGIN')
        // rows a rolled-back transaction must not leave behind (checked after the run)
        await c.query(`INSERT INTO load_log (client, kind) VALUES ($1, 'abandoned')`, [-n])
        await c.query('UPDATE load_items SET v = v + 1000000 WHERE id = $1', [rand(ITEMS) + 1])
        await drop()
      } else if (kind === 'running') {
        // pg_sleep on the primary (an unannotated read), dropped once pg_stat_activity shows it active
        for (let attempt = 0; attempt < RUNNING_ATTEMPTS; attempt++) {
          const marker = `load-victim-${n}-${attempt}`
          const done = { settled: false }
          const outcome = c.query(`SELECT pg_sleep(0.2) /* ${marker} */`).then(
            () => {
              done.settled = true
              return null
            },
            (err: unknown) => {
              done.settled = true
              return err
            },
          )
          if (!(await seenRunning(marker, done))) {
            const err = await outcome
            if (err !== null) throw err
            runningRetries++
            continue
          }
          await drop()
          const err = await outcome
          if (err !== null) expected(err)
          // the statement may have ended between the look and the drop: then the client was idle
          disconnects[err !== null ? 'running' : 'idle']++
          return
        }
        fail(new Error(`pg_sleep never seen running in ${RUNNING_ATTEMPTS} attempts`), 'chaos')
        await drop()
        return
      } else {
        await drop()
      }
      disconnects[kind]++
    } catch (err) {
      // the victim's own statements before the drop must work: the client was healthy until now
      fail(err, `chaos ${kind}`)
      await drop()
    }
  }

  const chaosTasks = new Set<Promise<void>>()
  const chaosLoop = (async () => {
    let round = 0
    while (!stopped) {
      await sleep(CHAOS_INTERVAL_MS) // pacing, not synchronisation
      if (stopped) break
      if (paused) continue
      const candidates = slots.filter((s) => !s.stop && !s.dead)
      if (candidates.length === 0) continue
      const slot = candidates[rand(candidates.length)]!
      const kind = KINDS[round++ % KINDS.length]!
      const task = (async () => {
        await victimize(slot, kind)
        try {
          slots[slot.index] = await open(slot.index)
        } catch (err) {
          fail(err, 'reconnect')
        }
      })()
      chaosTasks.add(task)
      void task.finally(() => chaosTasks.delete(task))
    }
  })()

  // ---- run -----------------------------------------------------------------------------------------
  const started = Date.now()
  const totalOps = () => ops.hinted_read + ops.plain_read + ops.autocommit_write + ops.transaction
  let lastOps = 0
  const progressTimer = setInterval(() => {
    const now = totalOps()
    const pool = Object.entries(f.proxy.poolStats())
      .map(([n, s]) => `${n} ${s.active}/${s.total} w${s.waiting}`)
      .join(', ')
    log(
      `run +${((Date.now() - started) / 1000).toFixed(0)} s: ${now} ops (${((now - lastOps) / (PROGRESS_MS / 1000)).toFixed(0)}/s), ` +
        `drops ${disconnects.idle}/${disconnects.in_transaction}/${disconnects.running} (idle/tx/running), ` +
        `unexpected errors ${unexpected.total}, proxy clients ${f.proxy.clients}, pool ${pool}, ` +
        `heap ${mb(process.memoryUsage().heapUsed)} MB`,
    )
    lastOps = now
  }, PROGRESS_MS)

  // The heap is sampled twice in the same state: every client connected and idle, no drop under way, the
  // proxy holding exactly one session per client. Here the workload pauses for that (well under a second).
  const live = () => slots.filter((s) => !s.dead).length
  async function quiesce(): Promise<void> {
    paused = true
    await Promise.all([...chaosTasks])
    await Promise.all(slots.map((s) => s.loop))
    await poll(() => f.proxy.clients === live(), SETTLE_TIMEOUT_MS)
  }

  await sleep(durationMs * WARMUP_FRACTION)
  const pauseStarted = Date.now()
  await quiesce()
  gc()
  gc()
  const heapWarmup = process.memoryUsage().heapUsed
  paused = false
  for (const slot of slots) if (!slot.dead && !slot.stop) slot.loop = work(slot)
  const pausedMs = Date.now() - pauseStarted
  log(`warm-up done: heap ${mb(heapWarmup)} MB after GC (load paused ${pausedMs} ms for the sample)`)
  await sleep(durationMs - durationMs * WARMUP_FRACTION - pausedMs)

  stopped = true
  clearInterval(progressTimer)
  const elapsedMs = Date.now() - started
  const opsDone = totalOps()
  await chaosLoop
  await Promise.all([...chaosTasks])
  await Promise.all(slots.map((s) => s.loop))
  const settleStarted = Date.now()

  const leaks: string[] = []
  // every dropped client's proxy session is gone: exactly the live clients remain
  if (!(await poll(() => f.proxy.clients === live(), SETTLE_TIMEOUT_MS))) {
    leaks.push(`proxy sessions: ${f.proxy.clients} open for ${live()} live clients after the drops`)
  }

  // same client objects as at the warm-up sample (live ones, all idle now)
  const sessionsAtEnd = await aliveSessions()
  if (sessionsAtEnd !== live()) {
    leaks.push(`proxy session objects: ${sessionsAtEnd} still reachable after GC for ${live()} live clients`)
  }
  const end = process.memoryUsage()
  const growth = end.heapUsed - heapWarmup
  const growthPct = (growth / heapWarmup) * 100

  // ---- end every client normally, then look for leftovers ------------------------------------------
  for (let i = 0; i < slots.length; i += CONNECT_BATCH) {
    await Promise.all(slots.slice(i, i + CONNECT_BATCH).map((s) => s.client.end().catch(() => {})))
  }
  if (!(await poll(() => f.proxy.clients === 0, SETTLE_TIMEOUT_MS))) {
    leaks.push(`proxy sessions: ${f.proxy.clients} still open after every client ended`)
  }
  const poolClean = () => Object.values(f.proxy.poolStats()).every((s) => s.active === 0 && s.waiting === 0)
  if (!(await poll(poolClean, SETTLE_TIMEOUT_MS))) {
    leaks.push(`server pool not released: ${JSON.stringify(f.proxy.poolStats())}`)
  }
  // a server connection still finishing a session's hidden token fetch (its client already gone) holds
  // that session until the answer comes: a leak is a session still reachable once that has settled
  let sessionsAfter = -1
  const noSessionLeft = async () => {
    sessionsAfter = await aliveSessions()
    return sessionsAfter === 0
  }
  if (!(await poll(noSessionLeft, SETTLE_TIMEOUT_MS))) {
    leaks.push(`proxy session objects: ${sessionsAfter} still reachable after GC once every client ended`)
  }
  backendSampling = false
  await backendLoop
  clearInterval(poolTimer)
  samplePool()

  // no backend of the app user holds a transaction or runs a statement, on any node
  const busy = async () => {
    const out: string[] = []
    for (const node of nodes) {
      const { rows } = await monitors.get(node)!.query<{ pid: number; state: string; query: string }>(
        `SELECT pid, state, left(query, 80) AS query FROM pg_stat_activity
          WHERE usename = 'app' AND backend_type = 'client backend'
            AND (state <> 'idle' OR xact_start IS NOT NULL) AND pid <> pg_backend_pid()`,
      )
      for (const r of rows) out.push(`${node} pid ${r.pid} ${r.state}: ${r.query}`)
    }
    return out
  }
  let busyNow: string[] = []
  await poll(async () => {
    busyNow = await busy()
    return busyNow.length === 0
  }, SETTLE_TIMEOUT_MS)
  for (const b of busyNow) leaks.push(`server backend still busy after every client ended: ${b}`)

  // every app backend on a node is a connection the proxy's pool still counts (none forgotten open)
  const backends = async () => {
    const out: Record<string, number> = {}
    for (const node of nodes) {
      const { rows } = await monitors
        .get(node)!
        .query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'app' AND backend_type = 'client backend'",
        )
      out[node] = rows[0]!.n
    }
    return out
  }
  let serverCounts: Record<string, number> = {}
  const matches = async () => {
    serverCounts = await backends()
    const stats = f.proxy.poolStats()
    return nodes.every((n) => serverCounts[n] === (stats[n]?.total ?? 0))
  }
  if (!(await poll(matches, SETTLE_TIMEOUT_MS))) {
    leaks.push(
      `app backends on the servers ${JSON.stringify(serverCounts)} differ from the proxy's pool ${JSON.stringify(f.proxy.poolStats())}`,
    )
  }
  const settleMs = Date.now() - settleStarted

  // ---- write accounting ----------------------------------------------------------------------------
  const integrity: string[] = []
  const { rows: counted } = await primaryMonitor.query<{ kind: string; n: number }>(
    'SELECT kind, count(*)::int AS n FROM load_log GROUP BY kind',
  )
  const rowsOf = (kind: string) => counted.find((r) => r.kind === kind)?.n ?? 0
  if (rowsOf('abandoned') !== 0) {
    integrity.push(`${rowsOf('abandoned')} rows of transactions abandoned by a dropped client were committed`)
  }
  // a statement that failed unexpectedly may or may not have committed: exact only without those
  const slack = unexpected.total
  for (const [kind, n] of [
    ['tx', acked.tx],
    ['autocommit', acked.autocommit],
  ] as const) {
    const rows = rowsOf(kind)
    if (rows < n || rows > n + slack) integrity.push(`${kind}: ${rows} rows for ${n} acknowledged inserts`)
  }

  return {
    durationMs: elapsedMs,
    clients,
    replicas: nodes.length - 1,
    maxActive: MAX_ACTIVE,
    ops: { ...ops },
    totalOps: opsDone,
    // over the time the workload ran (without the warm-up pause)
    opsPerSec: Math.round(opsDone / ((elapsedMs - pausedMs) / 1000)),
    unexpectedErrors: unexpected,
    victimErrors,
    disconnects,
    runningRetries,
    heap: {
      note: 'heapUsed after a forced GC of this one process, which runs the proxy, the routing engine and every client',
      warmupMB: mb(heapWarmup),
      endMB: mb(end.heapUsed),
      growthMB: mb(growth),
      growthPct: Math.round(growthPct * 10) / 10,
      exceeded: growth > HEAP_GROWTH_LIMIT.bytes && growth > heapWarmup * HEAP_GROWTH_LIMIT.fraction,
      rssEndMB: mb(end.rss),
      externalEndMB: mb(end.external),
    },
    maxServerConnections,
    maxServerBackends,
    maxWaiting,
    sessionsCreated,
    leaks,
    integrity,
    connectMs,
    settleMs,
  }
}

/** What makes a run fail: unexpected errors, leaks, wrong write accounting, heap growth, pool bound. */
export function loadFindings(report: LoadReport): string[] {
  const out: string[] = []
  if (report.unexpectedErrors.total > 0) {
    out.push(
      `${report.unexpectedErrors.total} unexpected errors: ${JSON.stringify(report.unexpectedErrors.byKind)}`,
    )
  }
  out.push(...report.leaks, ...report.integrity)
  if (report.heap.exceeded) {
    out.push(
      `heap grew ${report.heap.growthMB} MB (${report.heap.growthPct} %) from warm-up to end: over ` +
        `${HEAP_GROWTH_LIMIT.fraction * 100} % and ${HEAP_GROWTH_LIMIT.bytes / 1024 / 1024} MB`,
    )
  }
  for (const [node, n] of Object.entries(report.maxServerConnections)) {
    if (n > report.maxActive)
      out.push(`${node}: ${n} server connections, above max_active ${report.maxActive}`)
  }
  return out
}

/** The report as text. */
export function formatLoadReport(r: LoadReport): string {
  const lines = [
    `proxy load: ${r.clients} clients, primary + ${r.replicas} replicas, max_active ${r.maxActive} per node, ` +
      `${(r.durationMs / 1000).toFixed(1)} s (connect ${(r.connectMs / 1000).toFixed(1)} s, settle ${(r.settleMs / 1000).toFixed(1)} s)`,
    `ops: ${r.totalOps} (${r.opsPerSec}/s): hinted reads ${r.ops.hinted_read}, plain reads ${r.ops.plain_read}, ` +
      `autocommit writes ${r.ops.autocommit_write}, transactions ${r.ops.transaction}`,
    `abrupt disconnects: idle ${r.disconnects.idle}, in a transaction ${r.disconnects.in_transaction}, ` +
      `during a statement ${r.disconnects.running} (${r.runningRetries} statements finished before the drop and were re-run)`,
    `errors on dropped clients (expected): ${JSON.stringify(r.victimErrors)}`,
    `unexpected errors: ${r.unexpectedErrors.total}${r.unexpectedErrors.total > 0 ? ` ${JSON.stringify(r.unexpectedErrors.byKind)}` : ''}`,
    ...r.unexpectedErrors.samples.map((s) => `  ${s.split('\n').slice(0, 4).join('\n    ')}`),
    `heap: ${r.heap.warmupMB} MB at the end of the warm-up, ${r.heap.endMB} MB at the end, growth ` +
      `${r.heap.growthMB} MB (${r.heap.growthPct} %); rss ${r.heap.rssEndMB} MB, external ${r.heap.externalEndMB} MB`,
    `  (${r.heap.note})`,
    `server connections per node, max (proxy pool): ${JSON.stringify(r.maxServerConnections)}; ` +
      `app backends per node, max (pg_stat_activity): ${JSON.stringify(r.maxServerBackends)}; max waiting ${r.maxWaiting}`,
    `proxy sessions created: ${r.sessionsCreated}`,
    `leaks: ${r.leaks.length === 0 ? 'none' : ''}`,
    ...r.leaks.map((l) => `  ${l}`),
    `write accounting: ${r.integrity.length === 0 ? 'ok' : ''}`,
    ...r.integrity.map((l) => `  ${l}`),
  ]
  return lines.join('\n')
}
