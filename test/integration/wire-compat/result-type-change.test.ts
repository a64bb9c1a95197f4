// A named statement whose result type changed (table re-created with x int[] instead of x int) and
// that runs on another server connection than the one it was prepared on (transaction mode: that
// connection is held by another client; session mode: the server connection was lost without a
// FATAL, a network reset, and the client goes on on a new one). Directly, PostgreSQL answers 0A000
// "cached plan must not change result type"; through freshet the client must get the same answer,
// never rows decoded with its old types. The same client code runs on both sides and is compared:
// raw protocol messages, node-postgres named statements, and postgres.js (which re-prepares on 0A000
// and must return the new rows).

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import postgres from 'postgres'
import {
  bind,
  describe as describeMessage,
  execute,
  parse,
  query,
  SYNC,
} from '../../../src/protocol/index.js'
import { type FaultRelay, startFaultRelay } from '../../cluster/index.js'
import { eventually } from '../../support/eventually.js'
import { type CompatFixture, onBothSides, type Side, startCompatFixture } from './compat-fixture.js'
import { type Message, RawClient, transcript } from './raw-client.js'

/**
 * Messages as text, without the source line (L) PostgreSQL puts in errors (freshet's 0A000 has none)
 * and with RowDescription's table OIDs zeroed (each side reads its own tables).
 */
function comparable(messages: readonly Message[]): string[] {
  return transcript(messages.map(withoutTableOids)).map((m) =>
    m.startsWith('E:') ? m.replace(/\0L\d+\0/, '\0') : m,
  )
}

/** RowDescription: int16 count, then per column a name, int32 table OID and 14 more bytes. */
function withoutTableOids(m: Message): Message {
  if (m.type !== 'T') return m
  const body = Buffer.from(m.body)
  let at = 2
  for (let i = 0; i < body.readInt16BE(0); i++) {
    at = body.indexOf(0, at) + 1
    body.writeInt32BE(0, at)
    at += 18
  }
  return { type: m.type, body }
}

/** The server process id a client's statement ran in: the row of SELECT pg_backend_pid(). */
function pidOf(messages: readonly Message[]): number {
  const row = messages.find((m) => m.type === 'D')!
  // int16 column count, int32 length, the text
  return Number(row.body.subarray(6).toString('latin1'))
}

for (const mode of ['transaction', 'session'] as const) {
  describe(`wire compat: a prepared statement whose result type changed, on another server connection (${mode} mode)`, () => {
    let f: CompatFixture
    let relay: FaultRelay
    // the proxy reaches the primary through a relay, so a test can cut its server connections
    const clusterPatch: Record<string, unknown> = {}
    const holders: RawClient[] = []
    let table = 0

    before(async () => {
      f = await startCompatFixture(mode, {
        patch: {
          cluster: clusterPatch,
          proxy: { auth: { type: 'trust', users: { postgres: { password: 'postgres' } } } },
        },
        setup: async (c) => {
          relay = await startFaultRelay({ target: () => c.primary.port })
          clusterPatch.primary = {
            name: c.primary.name,
            url: `postgres://postgres@127.0.0.1:${relay.port}/freshet`,
          }
          clusterPatch.replicas = []
        },
      })
    })

    after(async () => {
      for (const h of holders) h.end()
      await f?.stop()
      await relay?.close()
    })

    /** A new table `x int` with one row (1), for one side of one test. */
    async function freshTable(): Promise<string> {
      const name = `rtc_${++table}`
      await f.cluster.query('primary', `CREATE TABLE ${name} (x int); INSERT INTO ${name} VALUES (1)`)
      return name
    }

    /** The DDL that changes the statements' result type: x becomes int[]. */
    async function changeType(name: string): Promise<void> {
      await f.cluster.query(
        'primary',
        `DROP TABLE ${name}; CREATE TABLE ${name} (x int[]); INSERT INTO ${name} VALUES ('{1,NULL,3}')`,
      )
    }

    /**
     * Through the proxy, makes sure the client's next statement runs on another server connection than
     * `pid`, the one its statements were prepared on. Transaction mode: other clients hold that
     * connection in open transactions (the pool lends the most recently returned idle connection
     * first). Session mode: the relay resets the server connection (no FATAL: the client goes on).
     */
    async function moveOff(side: Side, pid: number): Promise<void> {
      if (side === 'direct') return
      if (mode === 'session') {
        relay.reset()
        await eventually(
          'the proxy saw its server connection go',
          () => f.proxy.poolStats().primary?.active === 0,
        )
        return
      }
      for (let i = 0; i < 4; i++) {
        const { host, port } = f.addressOf('proxy')
        const h = await RawClient.open(host, port)
        holders.push(h)
        await h.roundTrip([query('BEGIN')])
        if (pidOf(await h.roundTrip([query('SELECT pg_backend_pid()')])) === pid) return
      }
      throw new Error(`no holder got server process ${pid}`)
    }

    async function releaseHolders(): Promise<void> {
      for (const h of holders.splice(0)) {
        await h.roundTrip([query('ROLLBACK')])
        h.end()
      }
    }

    it('raw protocol: Bind, Bind in a transaction and Describe of the statement get 0A000 as directly; parameter types stay fixed', async () => {
      const got = await onBothSides(async (side) => {
        const name = await freshTable()
        const other = await freshTable()
        const { host, port } = f.addressOf(side)
        const c = await RawClient.open(host, port)
        try {
          const out: string[] = []
          // prepared inside one transaction, so on one server connection, whose pid is noted
          out.push(...comparable(await c.roundTrip([query('BEGIN')])))
          out.push(
            ...comparable(
              await c.roundTrip([
                parse('s1', `SELECT x FROM ${name}`),
                describeMessage('S', 's1'),
                parse('s2', `INSERT INTO ${name} (x) VALUES ($1)`),
                parse('s3', `SELECT x FROM ${other}`),
                bind('', 's1'),
                execute(),
                SYNC,
              ]),
            ),
          )
          const pid = pidOf(await c.roundTrip([query('SELECT pg_backend_pid()')]))
          out.push(...comparable(await c.roundTrip([query('COMMIT')])))
          await changeType(name)
          // the other table is created again with the same column type: its statement still runs
          await f.cluster.query(
            'primary',
            `DROP TABLE ${other}; CREATE TABLE ${other} (x int); INSERT INTO ${other} VALUES (7)`,
          )
          await moveOff(side, pid)
          out.push('| autocommit Bind/Execute')
          out.push(
            ...comparable(
              await c.roundTrip([
                bind('', 's1'),
                execute(),
                parse('', 'SELECT 2'),
                bind('', ''),
                execute(),
                SYNC,
              ]),
            ),
          )
          out.push('| in a transaction')
          out.push(...comparable(await c.roundTrip([query('BEGIN')])))
          out.push(...comparable(await c.roundTrip([bind('', 's1'), execute(), SYNC])))
          out.push(...comparable(await c.roundTrip([query('ROLLBACK')])))
          out.push('| Describe of the statement')
          out.push(...comparable(await c.roundTrip([describeMessage('S', 's1'), SYNC])))
          out.push('| a parameter that became int[]')
          out.push(...comparable(await c.roundTrip([bind('', 's2', ['5']), execute(), SYNC])))
          out.push('| a statement whose result type did not change')
          out.push(...comparable(await c.roundTrip([bind('', 's3'), execute(), SYNC])))
          return out
        } finally {
          c.end()
          await releaseHolders()
        }
      })
      assert.deepEqual(got.proxy, got.direct)
      const text = got.direct.join('\n')
      assert.equal(text.match(/C0A000\0Mcached plan must not change result type/g)?.length, 3, text)
      assert.match(text, /RRevalidateCachedQuery/)
      assert.match(text, /C42804/)
      assert.match(text, /Z:E/) // the transaction failed, as directly
      assert.ok(got.direct.includes(`D:${Buffer.from([0, 1, 0, 0, 0, 1]).toString('latin1')}7`), text)
    })

    it('node-postgres: a named statement gets 0A000 as directly, and a new name works', async () => {
      const got = await onBothSides(async (side) => {
        const name = await freshTable()
        const client = new pg.Client({ connectionString: f.urlOf(side, 'postgres') })
        await client.connect()
        try {
          await client.query('BEGIN')
          const first = await client.query({ name: 'rtc_pg', text: `SELECT x FROM ${name}` })
          const pid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number
          await client.query('COMMIT')
          await changeType(name)
          await moveOff(side, pid)
          const failed = await client.query({ name: 'rtc_pg', text: `SELECT x FROM ${name}` }).then(
            () => null,
            (err: Error & { code?: string; routine?: string }) => ({
              code: err.code,
              message: err.message,
              routine: err.routine,
            }),
          )
          const renamed = await client.query({ name: 'rtc_pg2', text: `SELECT x FROM ${name}` })
          return { first: first.rows, failed, renamed: renamed.rows }
        } finally {
          await client.end()
          await releaseHolders()
        }
      })
      assert.deepEqual(got.proxy, got.direct)
      assert.deepEqual(got.direct.failed, {
        code: '0A000',
        message: 'cached plan must not change result type',
        routine: 'RevalidateCachedQuery',
      })
      assert.deepEqual(got.direct.renamed, [{ x: [1, null, 3] }])
    })

    it('postgres.js re-prepares on 0A000 and returns the new rows, as directly', async () => {
      const got = await onBothSides(async (side) => {
        const name = await freshTable()
        const sql = postgres(f.urlOf(side, 'postgres'), { max: 1, onnotice: () => {} })
        try {
          // a parameter, so postgres.js prepares it (without one it sends a simple query)
          const select = (q: postgres.TransactionSql) => q`SELECT x, ${1}::int AS one FROM ${q(name)}`
          const first = await sql.begin(async (tx) => {
            const rows = await select(tx)
            const [row] = await tx`
              SELECT pg_backend_pid() AS pid,
                (SELECT count(*)::int FROM pg_prepared_statements WHERE statement LIKE ${'%AS one%'}) AS prepared`
            return { rows: [...rows], pid: row!.pid as number, prepared: row!.prepared as number }
          })
          await changeType(name)
          await moveOff(side, first.pid)
          const again = await select(sql as unknown as postgres.TransactionSql)
          return { first: first.rows, prepared: first.prepared, again: [...again] }
        } finally {
          await sql.end()
          await releaseHolders()
        }
      })
      assert.deepEqual(got.proxy, got.direct)
      // postgres.js parses a NULL element of an int[] as NaN, directly as well
      assert.deepEqual(got.direct, {
        first: [{ x: 1, one: 1 }],
        prepared: 1,
        again: [{ x: [1, Number.NaN, 3], one: 1 }],
      })
    })
  })
}
