// Knex on createPool through its `connectionPool` option, against a real cluster: builder queries with
// .comment() hints, knex.raw() hints, freshness() scopes, transactions, read-your-writes. The serving
// node is read with inet_server_port().

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import knex, { type Knex } from 'knex'
import { main } from '../../../examples/knex/index.js'
import { type FreshetPool, freshness, withScope } from '../../../src/index.js'
import type { LocalCluster } from '../../cluster/index.js'
import { configFor } from '../../support/cluster-config.js'
import {
  assertExampleRouted,
  BLOG_SCHEMA,
  startOrmCluster,
  targetsOf,
  withReplicasPaused,
} from '../../support/orm-cluster.js'
import { assertRollbackDiscards } from './knex-checks.js'

describe('Knex through createPool (connectionPool)', () => {
  let cluster: LocalCluster
  let pool: FreshetPool
  let db: Knex
  let nodeOf: (port: number) => string

  before(async () => {
    ;({ cluster, pool, nodeOf } = await startOrmCluster(BLOG_SCHEMA))
    db = knex({ client: 'pg', connectionPool: pool })
  })

  after(async () => {
    await db?.destroy()
    await pool?.end()
    await cluster?.stop()
  })

  const port = () => db.raw('inet_server_port() AS port')

  it('hands every statement to freshet, including its version check', async () => {
    const { nodes } = await targetsOf(pool, () => db.raw('SELECT 1'))
    // The first acquire runs `select version();` before the statement itself.
    assert.deepEqual(nodes, ['primary', 'primary'])
  })

  it('sends knex.raw() with a FRESHNESS hint to a replica, unannotated reads to the primary', async () => {
    const hinted = await db.raw('/* FRESHNESS: EVENTUAL */ SELECT inet_server_port() AS port')
    assert.match(nodeOf(hinted.rows[0].port), /^replica_/)
    const plain = await db.raw('SELECT inet_server_port() AS port')
    assert.equal(nodeOf(plain.rows[0].port), 'primary')
    const withParam = await db.raw(
      '/* FRESHNESS: NEAR_RT */ SELECT inet_server_port() AS port, name FROM authors WHERE id = ?',
      [1],
    )
    assert.equal(withParam.rows[0].name, 'Alan')
    assert.match(nodeOf(withParam.rows[0].port), /^replica_/)
  })

  it('takes a hint from .comment() on builder selects and joins', async () => {
    const rows = await db('posts')
      .comment('FRESHNESS: EVENTUAL')
      .join('authors', 'authors.id', 'posts.author_id')
      .where('posts.published', true)
      .select('posts.title', 'authors.name', port())
    assert.equal(rows[0].title, 'Computable numbers')
    assert.equal(rows[0].name, 'Alan')
    assert.match(nodeOf(rows[0].port), /^replica_/)
  })

  it('serves builder reads from replicas inside freshness(), writes from the primary', async () => {
    await freshness('eventual', async () => {
      const read = await db('authors').first('name', port()).where({ id: 1 })
      assert.equal(read.name, 'Alan')
      assert.match(nodeOf(read.port), /^replica_/)
      const [inserted] = await db('authors')
        .insert({ email: 'barbara@example.com', name: 'Barbara' })
        .returning(['id', port()])
      assert.equal(nodeOf(inserted.port), 'primary')
      const [updated] = await db('authors')
        .update({ name: 'Barbara L.' })
        .where({ id: inserted.id })
        .returning(port())
      assert.equal(nodeOf(updated.port), 'primary')
    })
  })

  it('runs knex.transaction() on the primary: commit keeps, rollback discards', async () => {
    const node = await freshness('eventual', () =>
      db.transaction(async (trx) => {
        const [a] = await trx('authors').insert({ email: 'tx@example.com', name: 'Tx' }).returning('id')
        await trx('posts').insert({ title: 'in a transaction', author_id: a.id })
        const read = await trx('authors').comment('FRESHNESS: EVENTUAL').first(port()).where({ id: a.id })
        return nodeOf(read.port)
      }),
    )
    assert.equal(node, 'primary')

    await assertRollbackDiscards(db)
  })

  it('reads its own writes while every replica is paused', async () => {
    await withReplicasPaused(cluster, async () => {
      await withScope(async () => {
        const [a] = await db('authors').insert({ email: 'ryw@example.com', name: 'Mine' }).returning('id')
        const read = await db('authors')
          .comment('FRESHNESS: EVENTUAL')
          .first('name', port())
          .where({ id: a.id })
        assert.equal(read.name, 'Mine')
        assert.equal(nodeOf(read.port), 'primary')
      })
    })
  })

  it('runs examples/knex against the cluster', async () => {
    const lines: string[] = []
    const result = await main(configFor(cluster), (line) => lines.push(line))
    assert.equal(result.mine, 'Notes on the analytical engine')
    assert.deepEqual(result.feed[0], { title: 'Notes on the analytical engine', author: 'Ada' })
    assertExampleRouted(lines)
  })
})
