// Prisma on freshet (driver adapter): an author writes a post in a transaction, reads it back at once, then
// lists the feed from a replica.
//
// Run (beside a running `npx freshet sandbox`, which writes freshet.yaml):
//   FRESHET_CONFIG=freshet.yaml npx tsx examples/prisma/index.ts
// Each statement prints the node and port it ran on, read from the server.
// The three lines that change when adopting freshet are marked "freshet (n)".

import { pathToFileURL } from 'node:url'
import { PrismaPg } from '@prisma/adapter-pg'
// freshet (1): was `import { Pool } from 'pg'`. In your app: `from 'freshet'`.
import { createPool, type FreshetConfigInput, freshness, withScope } from '../../src/index.js'
import { servedBy } from '../served-by.js'
import { PrismaClient } from './generated/client.js'

/** The tables of schema.prisma (an app would use `prisma migrate`; here plain DDL keeps the demo offline). */
export const SCHEMA_SQL = [
  'CREATE TABLE IF NOT EXISTS authors (id serial PRIMARY KEY, email text UNIQUE NOT NULL, name text NOT NULL)',
  `CREATE TABLE IF NOT EXISTS posts (id serial PRIMARY KEY, title text NOT NULL,
     published boolean NOT NULL DEFAULT false, author_id int NOT NULL REFERENCES authors (id))`,
]

/** Runs the demo against the cluster in `config` (a config object or a YAML/JSON path) and returns what it read. */
export async function main(config: FreshetConfigInput | string, log: (line: string) => void = console.log) {
  // freshet (2): was `new PrismaPg({ connectionString })` or `new PrismaPg(new Pool(...))`.
  const pool = createPool(config)
  pool.on('decision', (d) => log(`routed to ${d.target} (${d.reason})`))
  // FreshetPool is a pg.Pool at run time (instanceof holds) and in its types.
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) })
  try {
    for (const ddl of SCHEMA_SQL) await prisma.$executeRawUnsafe(ddl)
    // One scope per unit of work (an HTTP request, a job): reads in it see its own writes.
    return await withScope(async () => {
      const post = await prisma.$transaction(async (tx) => {
        const author = await tx.author.upsert({
          where: { email: 'barbara@example.com' },
          create: { email: 'barbara@example.com', name: 'Barbara' },
          update: {},
        })
        const created = await tx.post.create({
          data: { title: 'Data abstraction', published: true, authorId: author.id },
        })
        // a transaction runs on one node: ask it which (Prisma's typed queries cannot select server functions)
        const [where] = await tx.$queryRaw<
          object[]
        >`SELECT current_setting('cluster_name') AS node, inet_server_port() AS port`
        log(servedBy('write (transaction) post.create', where))
        return created
      })
      // freshet (3): say how fresh reads must be; here a scope around client calls.
      return await freshness('eventual', async () => {
        // Read-your-writes: a replica that has replayed the transaction, or the primary.
        const mine = await prisma.post.findUnique({ where: { id: post.id }, include: { author: true } })
        const feed = await prisma.post.findMany({
          where: { published: true },
          include: { author: true },
          orderBy: { id: 'desc' },
          take: 10,
        })
        // raw SQL in the same scope, to show where eventual reads go (typed queries cannot say)
        const [where] = await prisma.$queryRaw<
          object[]
        >`SELECT current_setting('cluster_name') AS node, inet_server_port() AS port`
        log(servedBy('read (eventual) $queryRaw beside the feed', where))
        return {
          postId: post.id,
          mine: mine?.title,
          author: mine?.author.name,
          feed: feed.map((p) => ({ title: p.title, author: p.author.name })),
        }
      })
    })
  } finally {
    await prisma.$disconnect()
    await pool.end()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(await main(process.env.FRESHET_CONFIG ?? 'freshet.yaml'))
}
