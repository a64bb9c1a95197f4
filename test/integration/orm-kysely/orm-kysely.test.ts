// Kysely (PostgresDialect) on createPool against a real cluster: builder queries, joins, transactions,
// per-query tiers and read-your-writes. sql`` reads the serving node with inet_server_port(); builder
// queries select it alongside their columns.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Kysely, PostgresDialect, sql } from 'kysely'
import { type Database, main } from '../../../examples/kysely/index.js'
import { type FreshetPool, freshness, withScope } from '../../../src/index.js'
import type { LocalCluster } from '../../cluster/index.js'
import { configFor } from '../../support/cluster-config.js'
import {
  assertExampleRouted,
  BLOG_SCHEMA,
  startOrmCluster,
  withReplicasPaused,
} from '../../support/orm-cluster.js'

const port = sql<number>`inet_server_port()`.as('port')

describe('Kysely through createPool', () => {
  let cluster: LocalCluster
  let pool: FreshetPool
  let db: Kysely<Database>
  let nodeOf: (port: number) => string

  before(async () => {
    ;({ cluster, pool, nodeOf } = await startOrmCluster(BLOG_SCHEMA))
    // PostgresDialect only needs connect() and end(): FreshetPool type-checks as is.
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
  })

  after(async () => {
    await db?.destroy()
    await cluster?.stop()
  })

  it('sends sql`` with a FRESHNESS hint to a replica, and unannotated reads to the primary', async () => {
    const hinted = await sql<{
      port: number
    }>`/* FRESHNESS: EVENTUAL */ SELECT inet_server_port() AS port`.execute(db)
    assert.match(nodeOf(hinted.rows[0]!.port), /^replica_/)
    const plain = await sql<{ port: number }>`SELECT inet_server_port() AS port`.execute(db)
    assert.equal(nodeOf(plain.rows[0]!.port), 'primary')
    // A hint comment works with parameters too.
    const withParam = await sql<{ port: number; name: string }>`/* FRESHNESS: NEAR_RT */
      SELECT inet_server_port() AS port, name FROM authors WHERE id = ${1}`.execute(db)
    assert.equal(withParam.rows[0]!.name, 'Alan')
    assert.match(nodeOf(withParam.rows[0]!.port), /^replica_/)
  })

  it('serves builder selects and joins from replicas inside freshness()', async () => {
    const rows = await freshness('eventual', () =>
      db
        .selectFrom('posts')
        .innerJoin('authors', 'authors.id', 'posts.author_id')
        .select(['posts.title', 'authors.name', port])
        .where('posts.published', '=', true)
        .execute(),
    )
    assert.equal(rows[0]?.title, 'Computable numbers')
    assert.equal(rows[0]?.name, 'Alan')
    assert.match(nodeOf(rows[0]!.port), /^replica_/)
  })

  it('takes a sqlcommenter hint on a builder query through modifyFront()', async () => {
    const row = await db
      .selectFrom('authors')
      .modifyFront(sql.raw("/*freshness='eventual'*/"))
      .select(['name', port])
      .where('id', '=', 1)
      .executeTakeFirstOrThrow()
    assert.equal(row.name, 'Alan')
    assert.match(nodeOf(row.port), /^replica_/)
  })

  it('sends inserts and updates to the primary even inside freshness()', async () => {
    await freshness('eventual', async () => {
      const inserted = await db
        .insertInto('authors')
        .values({ email: 'barbara@example.com', name: 'Barbara' })
        .returning(['id', port])
        .executeTakeFirstOrThrow()
      assert.equal(nodeOf(inserted.port), 'primary')
      const updated = await db
        .updateTable('authors')
        .set({ name: 'Barbara L.' })
        .where('id', '=', inserted.id)
        .returning(port)
        .executeTakeFirstOrThrow()
      assert.equal(nodeOf(updated.port), 'primary')
    })
  })

  it('runs db.transaction() on the primary: commit keeps, rollback discards', async () => {
    const node = await freshness('eventual', () =>
      db.transaction().execute(async (trx) => {
        const a = await trx
          .insertInto('authors')
          .values({ email: 'tx@example.com', name: 'Tx' })
          .returning('id')
          .executeTakeFirstOrThrow()
        await trx.insertInto('posts').values({ title: 'in a transaction', author_id: a.id }).execute()
        const read = await trx
          .selectFrom('authors')
          .select(port)
          .where('id', '=', a.id)
          .executeTakeFirstOrThrow()
        return nodeOf(read.port)
      }),
    )
    assert.equal(node, 'primary')

    await assert.rejects(
      db.transaction().execute(async (trx) => {
        await trx.insertInto('authors').values({ email: 'rollback@example.com', name: 'Gone' }).execute()
        throw new Error('abort')
      }),
      /abort/,
    )
    const rows = await db
      .selectFrom('authors')
      .select('email')
      .where('email', 'in', ['tx@example.com', 'rollback@example.com'])
      .execute()
    assert.deepEqual(rows, [{ email: 'tx@example.com' }])
  })

  it('reads its own writes while every replica is paused', async () => {
    await withReplicasPaused(cluster, async () => {
      await withScope(async () => {
        const a = await db
          .insertInto('authors')
          .values({ email: 'ryw@example.com', name: 'Mine' })
          .returning('id')
          .executeTakeFirstOrThrow()
        const read = await freshness('eventual', () =>
          db.selectFrom('authors').select(['name', port]).where('id', '=', a.id).executeTakeFirst(),
        )
        assert.equal(read?.name, 'Mine')
        assert.equal(nodeOf(read!.port), 'primary')
      })
    })
  })

  it('runs examples/kysely against the cluster', async () => {
    const lines: string[] = []
    const result = await main(configFor(cluster), (line) => lines.push(line))
    assert.equal(result.mine, 'On structured programming')
    assert.deepEqual(result.feed[0], { title: 'On structured programming', author: 'Edsger' })
    assertExampleRouted(lines)
  })
})
