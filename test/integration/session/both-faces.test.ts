// One table of statement sequences, run through both faces against the real cluster: a checked-out
// library client (createPool().connect()) and a client of the proxy. After each sequence an EVENTUAL
// read says where the session now sends reads; both faces must give the same answer, because both
// ask the same session machine (src/session): pins and their release, the split rule for strings of
// several statements, "wrote, so fetch a token" (read-your-writes) and keep-or-release. Replay is
// paused on the replica, so a read-your-writes token is never reached there and must send the read
// to the primary (consistency.max_wait_for_sync_ms: 0, no waiting).
// A second table checks return-or-close (the session machine's releaseConnection): the session's
// primary connection (its pid read inside the sequence) is closed after session state was made or
// released on it, and reused otherwise: the next session's transaction gets the same backend (both
// faces' pools hand out the most recently returned connection first).

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { withScope } from '../../../src/library/context.js'
import { createPool } from '../../../src/library/create-pool.js'
import type { FreshetPool } from '../../../src/library/freshet-pool.js'
import { configFor, poolReady } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'
import { type ProxyFixture, startProxyFixture } from '../../support/proxy-fixture.js'

const READ = '/* FRESHNESS: EVENTUAL */ SELECT inet_server_port() AS port'
const CONSISTENCY = { consistency: { max_wait_for_sync_ms: 0 } }

/** A statement sequence and where an EVENTUAL read goes after it. */
interface Row {
  readonly name: string
  readonly statements: readonly string[]
  readonly next: 'primary' | 'replica_1'
}

const ROWS: readonly Row[] = [
  { name: 'nothing yet: reads go to the replica', statements: [], next: 'replica_1' },
  { name: 'a read leaves no token', statements: ['SELECT count(*) FROM both_faces'], next: 'replica_1' },
  {
    name: 'an autocommit write owes a token',
    statements: ['INSERT INTO both_faces VALUES (1)'],
    next: 'primary',
  },
  {
    name: 'a committed transaction that wrote owes a token',
    statements: ['BEGIN', 'INSERT INTO both_faces VALUES (2)', 'COMMIT'],
    next: 'primary',
  },
  {
    name: 'a rolled-back transaction owes none',
    statements: ['BEGIN', 'INSERT INTO both_faces VALUES (3)', 'ROLLBACK'],
    next: 'replica_1',
  },
  {
    name: 'a read-only transaction owes none and releases the connection',
    statements: ['BEGIN', 'SELECT 1', 'COMMIT'],
    next: 'replica_1',
  },
  { name: 'LISTEN pins the session to its node', statements: ['LISTEN both_faces'], next: 'primary' },
  {
    name: 'UNLISTEN * releases the pin',
    statements: ['LISTEN both_faces', 'UNLISTEN *'],
    next: 'replica_1',
  },
  {
    name: 'SET outside a transaction pins the session',
    statements: ["SET application_name = 'both-faces'"],
    next: 'primary',
  },
  {
    name: 'RESET ALL releases a SET pin',
    statements: ["SET application_name = 'both-faces'", 'RESET ALL'],
    next: 'replica_1',
  },
  {
    name: 'the split rule: a pin inside a string of several statements counts',
    statements: ['SELECT 1; LISTEN both_faces'],
    next: 'primary',
  },
  {
    name: 'the split rule: a pin and its release in one string leave nothing',
    statements: ['LISTEN both_faces; UNLISTEN *'],
    next: 'replica_1',
  },
]

/** In a sequence: read the backend pid of the session's connection (it runs where the session is held). */
const PID = 'SELECT pg_backend_pid() AS pid'

/** A statement sequence on a primary connection, and whether that connection is reused after it. */
interface FateRow {
  readonly name: string
  /** Holds the session on a primary connection while PID runs. */
  readonly statements: readonly string[]
  readonly fate: 'reused' | 'closed'
}

const FATE_ROWS: readonly FateRow[] = [
  { name: 'a clean transaction: reused', statements: ['BEGIN', PID, 'SELECT 1', 'COMMIT'], fate: 'reused' },
  {
    name: 'a transaction that wrote: reused',
    statements: ['BEGIN', 'INSERT INTO both_faces VALUES (10)', PID, 'COMMIT'],
    fate: 'reused',
  },
  {
    name: 'LISTEN then UNLISTEN *: closed (session state was made on it)',
    statements: ['LISTEN both_faces', PID, 'UNLISTEN *'],
    fate: 'closed',
  },
  {
    name: 'SET then RESET ALL: closed',
    statements: ["SET application_name = 'both-faces'", PID, 'RESET ALL'],
    fate: 'closed',
  },
  {
    name: 'a temp table made in a transaction that rolled back: closed',
    statements: ['BEGIN', PID, 'CREATE TEMP TABLE fate_t (v int)', 'ROLLBACK'],
    fate: 'closed',
  },
  {
    name: 'DEALLOCATE ALL in a transaction: closed (prepared statements the pool counts on are gone)',
    statements: ['BEGIN', PID, 'DEALLOCATE ALL', 'COMMIT'],
    fate: 'closed',
  },
]

describe('the same session rules in both faces', { timeout: 120_000 }, () => {
  let f: ProxyFixture
  let pool: FreshetPool
  let portName: (port: number) => string

  before(async () => {
    f = await startProxyFixture(CONSISTENCY, 1, async (cluster) => {
      await cluster.query('primary', 'CREATE TABLE both_faces (v int)')
    })
    pool = createPool(configFor(f.cluster, CONSISTENCY))
    await poolReady(pool)
    portName = f.nodeOf
    await f.cluster.pauseReplay('replica_1')
  })
  after(async () => {
    await f?.cluster.resumeReplay('replica_1').catch(() => {})
    await pool?.end()
    await f?.stop()
  })

  /** Runs the row through a checked-out library client in its own scope; the node of the next read. */
  async function library(row: Row): Promise<string> {
    return withScope(async () => {
      const client = await pool.connect()
      try {
        for (const sql of row.statements) await client.query(sql)
        const { rows } = await client.query(READ)
        return portName(Number(rows[0].port))
      } finally {
        client.release()
      }
    })
  }

  /** Runs the row through a new client of the proxy; the node of the next read. */
  async function proxy(row: Row): Promise<string> {
    const client = new pg.Client({ connectionString: f.url() })
    await client.connect()
    try {
      for (const sql of row.statements) await client.query(sql)
      const { rows } = await client.query(READ)
      return portName(Number(rows[0].port))
    } finally {
      await client.end()
    }
  }

  for (const row of ROWS) {
    it(row.name, async () => {
      assert.equal(await library(row), row.next, 'library face')
      assert.equal(await proxy(row), row.next, 'proxy face')
    })
  }

  /** The session's statements on one face's client; the pid PID read. */
  async function runFate(query: (sql: string) => Promise<pg.QueryResult>, row: FateRow): Promise<number> {
    let pid = 0
    for (const sql of row.statements) {
      const { rows } = await query(sql)
      if (sql === PID) pid = Number(rows[0].pid)
    }
    assert.ok(pid > 0, 'the sequence read its pid')
    return pid
  }

  /** The pid of the primary connection the next session's transaction gets. */
  async function nextPid(query: (sql: string) => Promise<pg.QueryResult>): Promise<number> {
    await query('BEGIN')
    const { rows } = await query(PID)
    await query('COMMIT')
    return Number(rows[0].pid)
  }

  async function alive(pid: number): Promise<boolean> {
    const { rows } = await f.cluster.query(
      'primary',
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ${pid}`,
    )
    return (rows[0] as { n: number }).n === 1
  }

  async function libraryFate(row: FateRow): Promise<{ pid: number; next: number }> {
    return withScope(async () => {
      const client = await pool.connect()
      let pid: number
      try {
        pid = await runFate((sql) => client.query(sql), row)
      } finally {
        client.release()
      }
      if (row.fate === 'closed')
        await eventually(`library: backend ${pid} closed`, async () => !(await alive(pid)))
      const again = await pool.connect()
      try {
        return { pid, next: await nextPid((sql) => again.query(sql)) }
      } finally {
        again.release()
      }
    })
  }

  async function proxyFate(row: FateRow): Promise<{ pid: number; next: number }> {
    const client = new pg.Client({ connectionString: f.url() })
    await client.connect()
    let pid: number
    try {
      pid = await runFate((sql) => client.query(sql), row)
    } finally {
      await client.end()
    }
    // the proxy lets the connection go when it sees the client leave, and a connection that wrote only once
    // its hidden token fetch has answered: until then the next session would get another connection
    await eventually('proxy: the client is gone', () => f.proxy.clients === 0)
    await eventually('proxy: no server connection in use', () =>
      Object.values(f.proxy.poolStats()).every((s) => s.active === 0),
    )
    if (row.fate === 'closed')
      await eventually(`proxy: backend ${pid} closed`, async () => !(await alive(pid)))
    const again = new pg.Client({ connectionString: f.url() })
    await again.connect()
    try {
      return { pid, next: await nextPid((sql) => again.query(sql)) }
    } finally {
      await again.end()
      await eventually('proxy: the client is gone', () => f.proxy.clients === 0)
    }
  }

  for (const row of FATE_ROWS) {
    it(`return or close: ${row.name}`, async () => {
      for (const [face, run] of [
        ['library face', libraryFate],
        ['proxy face', proxyFate],
      ] as const) {
        const { pid, next } = await run(row)
        if (row.fate === 'reused') assert.equal(next, pid, `${face}: the next session reuses backend ${pid}`)
        else assert.notEqual(next, pid, `${face}: backend ${pid} is not handed out again`)
      }
    })
  }
})
