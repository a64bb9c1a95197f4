// Drizzle ORM on freshet: an author writes a post in a transaction, reads it back at once, then lists the
// feed from a replica.
//
// Run (beside a running `npx freshet sandbox`, which writes freshet.yaml):
//   FRESHET_CONFIG=freshet.yaml npx tsx examples/drizzle/index.ts
// Each statement prints the node and port it ran on, read from the server.
// The three lines that change when adopting freshet are marked "freshet (n)".

import { pathToFileURL } from 'node:url'
import { desc, eq, sql } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/node-postgres'
// freshet (1): was `import { Pool } from 'pg'`. In your app: `from 'freshet'`.
import { createPool, type FreshetConfigInput, freshness, withScope } from '../../src/index.js'
import { servedBy } from '../served-by.js'
import * as schema from './schema.js'

const { authors, posts } = schema

/** Columns naming the server that runs the statement: its cluster_name and port. */
const served = {
  node: sql<string>`current_setting('cluster_name')`,
  port: sql<number>`inet_server_port()`,
}

/** Runs the demo against the cluster in `config` (a config object or a YAML/JSON path) and returns what it read. */
export async function main(config: FreshetConfigInput | string, log: (line: string) => void = console.log) {
  // freshet (2): was `new Pool({ connectionString })`.
  const pool = createPool(config)
  pool.on('decision', (d) => log(`routed to ${d.target} (${d.reason})`))
  // FreshetPool is a pg.Pool, in its types too: no cast.
  const db = drizzle({ client: pool, schema })
  try {
    for (const ddl of schema.SCHEMA_SQL) await db.execute(sql.raw(ddl))
    // One scope per unit of work (an HTTP request, a job): reads in it see its own writes.
    return await withScope(async () => {
      const postId = await db.transaction(async (tx) => {
        const [author] = await tx
          .insert(authors)
          .values({ email: 'grace@example.com', name: 'Grace' })
          .onConflictDoUpdate({ target: authors.email, set: { name: 'Grace' } })
          .returning({ id: authors.id })
        const [post] = await tx
          .insert(posts)
          .values({ title: 'Compilers for everyone', published: true, authorId: author!.id })
          .returning({ id: posts.id, ...served })
        log(servedBy('write (transaction) insert into posts', post))
        return post!.id
      })
      // freshet (3): say how fresh reads must be; here a scope around query-builder calls.
      return await freshness('eventual', async () => {
        // Read-your-writes: a replica that has replayed the transaction, or the primary.
        const mine = await db.query.posts.findFirst({
          where: eq(posts.id, postId),
          with: { author: true },
          extras: { node: served.node.as('node'), port: served.port.as('port') },
        })
        log(servedBy('read (eventual, own write) posts.findFirst', mine))
        const feed = await db
          .select({ title: posts.title, author: authors.name, ...served })
          .from(posts)
          .innerJoin(authors, eq(authors.id, posts.authorId))
          .where(eq(posts.published, true))
          .orderBy(desc(posts.id))
          .limit(10)
        log(servedBy('read (eventual) the feed', feed[0]))
        return {
          postId,
          mine: mine?.title,
          author: mine?.author.name,
          feed: feed.map(({ title, author }) => ({ title, author })),
        }
      })
    })
  } finally {
    await pool.end()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(await main(process.env.FRESHET_CONFIG ?? 'freshet.yaml'))
}
