// TypeORM (postgres driver) on createPool through its `driver` option, against a real cluster: repository
// and query-builder reads with hints, dataSource.query(), transactions, read-your-writes. The serving
// node is read with inet_server_port() or from the pool's decision events.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { DataSource } from 'typeorm'
import { AuthorEntity, dataSourceFor, main, PostEntity } from '../../../examples/typeorm/index.js'
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

describe('TypeORM through createPool', () => {
  let cluster: LocalCluster
  let pool: FreshetPool
  let dataSource: DataSource
  let nodeOf: (port: number) => string

  before(async () => {
    ;({ cluster, pool, nodeOf } = await startOrmCluster(BLOG_SCHEMA))
    dataSource = await dataSourceFor(pool).initialize()
  })

  after(async () => {
    // destroy() ends the freshet pool too (TypeORM calls pool.end()).
    if (dataSource?.isInitialized) await dataSource.destroy()
    else await pool?.end()
    await cluster?.stop()
  })

  async function portOf(sql: string, params?: unknown[]): Promise<string> {
    const rows: { port: number }[] = await dataSource.query(sql, params)
    return nodeOf(rows[0]!.port)
  }

  it('hands every statement to freshet: TypeORM built no pg.Pool of its own', async () => {
    const { nodes } = await targetsOf(pool, () => dataSource.query('SELECT 1'))
    assert.deepEqual(nodes, ['primary'])
  })

  it('sends dataSource.query() with a FRESHNESS hint to a replica, unannotated reads to the primary', async () => {
    assert.match(await portOf('/* FRESHNESS: EVENTUAL */ SELECT inet_server_port() AS port'), /^replica_/)
    assert.equal(await portOf('SELECT inet_server_port() AS port'), 'primary')
    const rows: { port: number; name: string }[] = await dataSource.query(
      '/* FRESHNESS: NEAR_RT */ SELECT inet_server_port() AS port, name FROM authors WHERE id = $1',
      [1],
    )
    assert.equal(rows[0]?.name, 'Alan')
    assert.match(nodeOf(rows[0]!.port), /^replica_/)
  })

  it('takes a hint from find options `comment` and from the query builder `.comment()`', async () => {
    const posts = dataSource.getRepository(PostEntity)
    const found = await targetsOf(pool, () =>
      posts.find({ comment: 'FRESHNESS: EVENTUAL', relations: { author: true }, where: { published: true } }),
    )
    assert.equal(found.result[0]?.title, 'Computable numbers')
    assert.equal(found.result[0]?.author.name, 'Alan')
    assert.ok(found.nodes.length > 0 && found.nodes.every((n) => n.startsWith('replica_')), `${found.nodes}`)

    // find() with take and a relation runs two statements (ids, then rows): both carry the comment.
    const paged = await targetsOf(pool, () =>
      posts.find({
        comment: 'FRESHNESS: EVENTUAL',
        relations: { author: true },
        take: 5,
        order: { id: 'ASC' },
      }),
    )
    assert.equal(paged.result[0]?.title, 'Computable numbers')
    assert.ok(
      paged.nodes.length === 2 && paged.nodes.every((n) => n.startsWith('replica_')),
      `${paged.nodes}`,
    )

    const row = await dataSource
      .getRepository(AuthorEntity)
      .createQueryBuilder('a')
      .comment('FRESHNESS: EVENTUAL')
      .select('a.name', 'name')
      .addSelect('inet_server_port()', 'port')
      .where('a.id = :id', { id: 1 })
      .getRawOne<{ name: string; port: number }>()
    assert.equal(row?.name, 'Alan')
    assert.match(nodeOf(row!.port), /^replica_/)
  })

  it('streams a query builder (.stream(), pg-query-stream) from a replica under its hint', async () => {
    const stream = await dataSource
      .getRepository(AuthorEntity)
      .createQueryBuilder('a')
      .comment('FRESHNESS: EVENTUAL')
      .select('a.name', 'name')
      .addSelect('inet_server_port()', 'port')
      .orderBy('a.id')
      .stream()
    const rows: { name: string; port: number }[] = []
    try {
      for await (const row of stream) rows.push(row as { name: string; port: number })
    } finally {
      stream.destroy()
    }
    assert.ok(rows.length > 0)
    assert.equal(rows[0]?.name, 'Alan')
    assert.match(nodeOf(rows[0]!.port), /^replica_/)
  })

  it('serves repository reads from replicas inside freshness(), and from the primary without a tier', async () => {
    const authors = dataSource.getRepository(AuthorEntity)
    const scoped = await targetsOf(pool, () =>
      freshness('eventual', () => authors.find({ relations: { posts: true }, where: { id: 1 } })),
    )
    assert.equal(scoped.result[0]?.posts?.[0]?.title, 'Computable numbers')
    assert.ok(
      scoped.nodes.length > 0 && scoped.nodes.every((n) => n.startsWith('replica_')),
      `${scoped.nodes}`,
    )
    const plain = await targetsOf(pool, () => authors.findOneBy({ id: 1 }))
    assert.deepEqual(plain.nodes, ['primary'])
  })

  it('sends repository writes to the primary even inside freshness()', async () => {
    const authors = dataSource.getRepository(AuthorEntity)
    const { nodes } = await targetsOf(pool, () =>
      freshness('eventual', async () => {
        const saved = await authors.save({ email: 'barbara@example.com', name: 'Barbara' })
        await authors.update({ id: saved.id }, { name: 'Barbara L.' })
      }),
    )
    // save() wraps its INSERT in START TRANSACTION ... COMMIT; update() is one UPDATE.
    assert.ok(nodes.length >= 2 && nodes.every((n) => n === 'primary'), `${nodes}`)
  })

  it('runs dataSource.transaction() on the primary: commit keeps, rollback discards', async () => {
    const node = await freshness('eventual', () =>
      dataSource.transaction(async (manager) => {
        const a = await manager.save(AuthorEntity, { email: 'tx@example.com', name: 'Tx' })
        await manager.save(PostEntity, { title: 'in a transaction', published: false, author: a })
        const rows: { port: number }[] = await manager.query(
          '/* FRESHNESS: EVENTUAL */ SELECT inet_server_port() AS port FROM authors WHERE id = $1',
          [a.id],
        )
        return nodeOf(rows[0]!.port)
      }),
    )
    assert.equal(node, 'primary')

    await assert.rejects(
      dataSource.transaction(async (manager) => {
        await manager.save(AuthorEntity, { email: 'rollback@example.com', name: 'Gone' })
        throw new Error('abort')
      }),
      /abort/,
    )
    const rows: { email: string }[] = await dataSource.query(
      "SELECT email FROM authors WHERE email IN ('tx@example.com', 'rollback@example.com')",
    )
    assert.deepEqual(rows, [{ email: 'tx@example.com' }])
  })

  it('reads its own writes while every replica is paused', async () => {
    await withReplicasPaused(cluster, async () => {
      await withScope(async () => {
        const authors = dataSource.getRepository(AuthorEntity)
        const saved = await authors.save({ email: 'ryw@example.com', name: 'Mine' })
        const read = await targetsOf(pool, () =>
          freshness('eventual', () => authors.findOneBy({ id: saved.id })),
        )
        assert.equal(read.result?.name, 'Mine')
        assert.deepEqual(read.nodes, ['primary'])
        const rows: { port: number; name: string }[] = await dataSource.query(
          '/* FRESHNESS: EVENTUAL */ SELECT inet_server_port() AS port, name FROM authors WHERE id = $1',
          [saved.id],
        )
        assert.equal(rows[0]?.name, 'Mine')
        assert.equal(nodeOf(rows[0]!.port), 'primary')
      })
    })
  })

  it('runs examples/typeorm against the cluster', async () => {
    const lines: string[] = []
    const result = await main(configFor(cluster), (line) => lines.push(line))
    assert.equal(result.mine, 'Compilers for everyone')
    assert.deepEqual(result.feed[0], { title: 'Compilers for everyone', author: 'Grace' })
    assertExampleRouted(lines)
  })
})
