// Prisma 7 (prisma-client generator, @prisma/adapter-pg) on createPool against a real cluster: model
// queries with relations, interactive and batch transactions, per-query tiers and read-your-writes.
// $queryRaw reads the serving node with inet_server_port(); model queries are observed through the
// pool's 'decision' events. The client in examples/prisma/generated is committed (generated offline).

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { PrismaPg } from '@prisma/adapter-pg'
import { PrismaClient } from '../../../examples/prisma/generated/client.js'
import { main } from '../../../examples/prisma/index.js'
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

describe('Prisma through createPool', () => {
  let cluster: LocalCluster
  let pool: FreshetPool
  let prisma: PrismaClient
  let nodeOf: (port: number) => string

  const targets = <T>(fn: () => Promise<T>) => targetsOf(pool, fn)

  before(async () => {
    ;({ cluster, pool, nodeOf } = await startOrmCluster(BLOG_SCHEMA))
    prisma = new PrismaClient({ adapter: new PrismaPg(pool) })
  })

  after(async () => {
    await prisma?.$disconnect()
    await pool?.end()
    await cluster?.stop()
  })

  it('uses the freshet pool itself (not a pool of its own)', async () => {
    const { nodes } = await targets(() => prisma.$queryRaw`SELECT 1`)
    assert.deepEqual(nodes, ['primary'])
  })

  it('sends $queryRaw with a FRESHNESS hint to a replica, and unannotated reads to the primary', async () => {
    const hinted = await prisma.$queryRaw<
      { port: number }[]
    >`/* FRESHNESS: EVENTUAL */ SELECT inet_server_port() AS port`
    assert.match(nodeOf(hinted[0]!.port), /^replica_/)
    const plain = await prisma.$queryRaw<{ port: number }[]>`SELECT inet_server_port() AS port`
    assert.equal(nodeOf(plain[0]!.port), 'primary')
    const withParam = await prisma.$queryRaw<{ port: number; name: string }[]>`/* FRESHNESS: NEAR_RT */
      SELECT inet_server_port() AS port, name FROM authors WHERE id = ${1}`
    assert.equal(withParam[0]!.name, 'Alan')
    assert.match(nodeOf(withParam[0]!.port), /^replica_/)
  })

  it('serves model reads with relations from replicas inside freshness()', async () => {
    const { result, nodes } = await targets(() =>
      freshness('eventual', () =>
        prisma.author.findMany({ include: { posts: true }, where: { email: 'alan@example.com' } }),
      ),
    )
    assert.equal(result[0]?.posts[0]?.title, 'Computable numbers')
    assert.ok(nodes.length >= 1)
    for (const n of nodes) assert.match(n, /^replica_/)
  })

  it('sends creates and updates to the primary even inside freshness()', async () => {
    const { result, nodes } = await targets(() =>
      freshness('eventual', async () => {
        const a = await prisma.author.create({ data: { email: 'liskov@example.com', name: 'Barbara' } })
        return prisma.author.update({ where: { id: a.id }, data: { name: 'Barbara L.' } })
      }),
    )
    assert.equal(result.name, 'Barbara L.')
    for (const n of nodes) assert.equal(n, 'primary')
  })

  it('runs interactive and batch $transaction on the primary: commit keeps, rollback discards', async () => {
    const node = await freshness('eventual', () =>
      prisma.$transaction(async (tx) => {
        const a = await tx.author.create({
          data: { email: 'tx@example.com', name: 'Tx', posts: { create: { title: 'in a transaction' } } },
        })
        const read = await tx.$queryRaw<{ port: number }[]>`/* FRESHNESS: EVENTUAL */
          SELECT inet_server_port() AS port FROM authors WHERE id = ${a.id}`
        return nodeOf(read[0]!.port)
      }),
    )
    assert.equal(node, 'primary')

    await assert.rejects(
      prisma.$transaction(async (tx) => {
        await tx.author.create({ data: { email: 'rollback@example.com', name: 'Gone' } })
        throw new Error('abort')
      }),
      /abort/,
    )
    const { nodes } = await targets(() =>
      prisma.$transaction([
        prisma.author.create({ data: { email: 'batch@example.com', name: 'Batch' } }),
        prisma.author.count(),
      ]),
    )
    assert.ok(nodes.length >= 2)
    for (const n of nodes) assert.equal(n, 'primary')

    const emails = await prisma.author.findMany({
      where: { email: { in: ['tx@example.com', 'rollback@example.com', 'batch@example.com'] } },
      select: { email: true },
      orderBy: { email: 'asc' },
    })
    assert.deepEqual(emails, [{ email: 'batch@example.com' }, { email: 'tx@example.com' }])
  })

  it('reads its own writes while every replica is paused', async () => {
    await withReplicasPaused(cluster, async () => {
      await withScope(async () => {
        const a = await prisma.author.create({ data: { email: 'ryw@example.com', name: 'Mine' } })
        const { result, nodes } = await targets(() =>
          freshness('eventual', () => prisma.author.findUnique({ where: { id: a.id } })),
        )
        assert.equal(result?.name, 'Mine')
        assert.deepEqual(nodes, ['primary'])
      })
    })
  })

  it('runs examples/prisma against the cluster', async () => {
    const lines: string[] = []
    const result = await main(configFor(cluster), (line) => lines.push(line))
    assert.equal(result.mine, 'Data abstraction')
    assert.equal(result.author, 'Barbara')
    assert.deepEqual(result.feed[0], { title: 'Data abstraction', author: 'Barbara' })
    assertExampleRouted(lines)
  })
})
