// Drizzle ORM (drizzle-orm/node-postgres) on createPool against a real cluster: query builder, relational
// queries, transactions, per-query tiers and read-your-writes. Raw sql`` reports the serving node with
// inet_server_port(); builder queries are observed through the pool's 'decision' events.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { desc, eq, sql } from 'drizzle-orm'
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres'
import { main } from '../../../examples/drizzle/index.js'
import * as schema from '../../../examples/drizzle/schema.js'
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

const { authors, posts } = schema

describe('Drizzle through createPool', () => {
  let cluster: LocalCluster
  let pool: FreshetPool
  let db: NodePgDatabase<typeof schema>
  let nodeOf: (port: number) => string

  const targets = <T>(fn: () => Promise<T>) => targetsOf(pool, fn)

  async function servedBy(query: ReturnType<typeof sql>): Promise<string> {
    const res = await db.execute<{ port: number }>(query)
    return nodeOf(Number(res.rows[0]!.port))
  }

  before(async () => {
    ;({ cluster, pool, nodeOf } = await startOrmCluster(BLOG_SCHEMA))
    db = drizzle({ client: pool, schema })
  })

  after(async () => {
    await pool?.end()
    await cluster?.stop()
  })

  it('sends raw sql`` with a FRESHNESS hint to a replica, and unannotated reads to the primary', async () => {
    assert.match(
      await servedBy(sql`/* FRESHNESS: EVENTUAL */ SELECT inet_server_port() AS port`),
      /^replica_/,
    )
    assert.equal(await servedBy(sql`SELECT inet_server_port() AS port`), 'primary')
    // Parameters do not disturb the hint.
    const id = 1
    assert.match(
      await servedBy(
        sql`/* FRESHNESS: NEAR_RT */ SELECT inet_server_port() AS port FROM ${authors} WHERE ${authors.id} = ${id}`,
      ),
      /^replica_/,
    )
  })

  it('serves builder selects, joins and relational queries from replicas inside freshness()', async () => {
    const { result, nodes } = await targets(() =>
      freshness('eventual', async () => {
        const joined = await db
          .select({ title: posts.title, author: authors.name })
          .from(posts)
          .innerJoin(authors, eq(authors.id, posts.authorId))
          .orderBy(desc(posts.id))
        const nested = await db.query.authors.findMany({ with: { posts: true } })
        return { joined, nested }
      }),
    )
    assert.deepEqual(result.joined[0], { title: 'Computable numbers', author: 'Alan' })
    assert.equal(result.nested[0]?.posts[0]?.title, 'Computable numbers')
    assert.ok(nodes.length >= 2)
    for (const n of nodes) assert.match(n, /^replica_/)
  })

  it('runs a builder returned un-awaited from freshness() inside the scope (lazy thenables)', async () => {
    // Drizzle builders send their query only when awaited, i.e. after freshness() has returned.
    const { result, nodes } = await targets(() => freshness('eventual', () => db.select().from(authors)))
    assert.ok(result.length >= 1)
    assert.equal(nodes.length, 1)
    assert.match(nodes[0]!, /^replica_/)
  })

  it('sends inserts and updates to the primary even inside freshness()', async () => {
    const { result, nodes } = await targets(() =>
      freshness('eventual', async () => {
        const [row] = await db
          .insert(authors)
          .values({ email: 'barbara@example.com', name: 'Barbara' })
          .returning({ id: authors.id })
        await db.update(authors).set({ name: 'Barbara L.' }).where(eq(authors.id, row!.id))
        return row!.id
      }),
    )
    assert.deepEqual(nodes, ['primary', 'primary'])
    const [back] = await withScope(() => db.select().from(authors).where(eq(authors.id, result)))
    assert.equal(back?.name, 'Barbara L.')
  })

  it('runs db.transaction() on the primary: commit keeps, rollback discards', async () => {
    const committed = await freshness('eventual', () =>
      db.transaction(async (tx) => {
        const [a] = await tx.insert(authors).values({ email: 'tx@example.com', name: 'Tx' }).returning()
        await tx.insert(posts).values({ title: 'in a transaction', authorId: a!.id })
        const port = await tx.execute<{ port: number }>(
          sql`/* FRESHNESS: EVENTUAL */ SELECT inet_server_port() AS port`,
        )
        return { id: a!.id, node: nodeOf(Number(port.rows[0]!.port)) }
      }),
    )
    assert.equal(committed.node, 'primary')

    await assert.rejects(
      db.transaction(async (tx) => {
        await tx.insert(authors).values({ email: 'rollback@example.com', name: 'Gone' })
        tx.rollback()
      }),
      /Rollback/,
    )
    const rows = await db
      .select({ email: authors.email })
      .from(authors)
      .where(sql`${authors.email} IN ('tx@example.com', 'rollback@example.com')`)
    assert.deepEqual(rows, [{ email: 'tx@example.com' }])
  })

  it('reads its own writes while every replica is paused', async () => {
    await withReplicasPaused(cluster, async () => {
      await withScope(async () => {
        const [a] = await db.insert(authors).values({ email: 'ryw@example.com', name: 'Mine' }).returning()
        const { result, nodes } = await targets(() =>
          freshness('eventual', () => db.query.authors.findFirst({ where: eq(authors.id, a!.id) })),
        )
        assert.equal(result?.name, 'Mine')
        assert.deepEqual(nodes, ['primary'])
      })
    })
  })

  it('runs examples/drizzle against the cluster', async () => {
    const lines: string[] = []
    const result = await main(configFor(cluster), (line) => lines.push(line))
    assert.equal(result.mine, 'Compilers for everyone')
    assert.equal(result.author, 'Grace')
    assert.deepEqual(result.feed[0], { title: 'Compilers for everyone', author: 'Grace' })
    assertExampleRouted(lines)
  })
})
