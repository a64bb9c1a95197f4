// One table of statement sequences, run through both faces against the real cluster: a checked-out
// library client (createPool().connect()) and a client of the proxy. After each sequence an EVENTUAL
// read says where the session now sends reads; both faces must give the same answer, because both
// ask the same session machine (src/session): pins and their release, the split rule for strings of
// several statements, "wrote, so fetch a token" (read-your-writes) and keep-or-release. Replay is
// paused on the replica, so a read-your-writes token is never reached there and must send the read
// to the primary (consistency.max_wait_for_sync_ms: 0, no waiting).

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { withScope } from '../../../src/library/context.js'
import { createPool, type FreshetPool } from '../../../src/library/freshet-pool.js'
import { configFor, poolReady } from '../../support/cluster-config.js'
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
})
