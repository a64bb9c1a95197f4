// Kysely on freshet: an author writes a post in a transaction, reads it back at once, then lists the feed
// from a replica.
//
// Run (beside a running `npx freshet sandbox`, which writes freshet.yaml):
//   FRESHET_CONFIG=freshet.yaml npx tsx examples/kysely/index.ts
// Each statement prints the node and port it ran on, read from the server.
// The three lines that change when adopting freshet are marked "freshet (n)".

import { pathToFileURL } from 'node:url'
import { type Generated, Kysely, PostgresDialect, sql } from 'kysely'
// freshet (1): was `import { Pool } from 'pg'`. In your app: `from 'freshet'`.
import { createPool, type FreshetConfigInput, freshness, withScope } from '../../src/index.js'
import { SERVED_BY, servedBy } from '../served-by.js'

/** Columns naming the server that runs the statement: its cluster_name and port. */
const node = sql<string>`current_setting('cluster_name')`.as('node')
const port = sql<number>`inet_server_port()`.as('port')

export interface Database {
  authors: { id: Generated<number>; email: string; name: string }
  posts: { id: Generated<number>; title: string; published: Generated<boolean>; author_id: number }
}

/** Runs the demo against the cluster in `config` (a config object or a YAML/JSON path) and returns what it read. */
export async function main(config: FreshetConfigInput | string, log: (line: string) => void = console.log) {
  // freshet (2): was `new Pool({ connectionString })`; the dialect stays as it was.
  const pool = createPool(config)
  pool.on('decision', (d) => log(`routed to ${d.target} (${d.reason})`))
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
  try {
    await db.schema
      .createTable('authors')
      .ifNotExists()
      .addColumn('id', 'serial', (c) => c.primaryKey())
      .addColumn('email', 'text', (c) => c.notNull().unique())
      .addColumn('name', 'text', (c) => c.notNull())
      .execute()
    await db.schema
      .createTable('posts')
      .ifNotExists()
      .addColumn('id', 'serial', (c) => c.primaryKey())
      .addColumn('title', 'text', (c) => c.notNull())
      .addColumn('published', 'boolean', (c) => c.notNull().defaultTo(false))
      .addColumn('author_id', 'integer', (c) => c.notNull().references('authors.id'))
      .execute()
    // One scope per unit of work (an HTTP request, a job): reads in it see its own writes.
    return await withScope(async () => {
      const postId = await db.transaction().execute(async (trx) => {
        const author = await trx
          .insertInto('authors')
          .values({ email: 'edsger@example.com', name: 'Edsger' })
          .onConflict((oc) => oc.column('email').doUpdateSet({ name: 'Edsger' }))
          .returning('id')
          .executeTakeFirstOrThrow()
        const post = await trx
          .insertInto('posts')
          .values({ title: 'On structured programming', published: true, author_id: author.id })
          .returning(['id', node, port])
          .executeTakeFirstOrThrow()
        log(servedBy('write (transaction) insertInto posts', post))
        return post.id
      })
      // Read-your-writes: a replica that has replayed the transaction, or the primary.
      const mine = await freshness('eventual', () =>
        db.selectFrom('posts').select(['title', node, port]).where('id', '=', postId).executeTakeFirst(),
      )
      log(servedBy('read (eventual, own write) selectFrom posts', mine))
      // freshet (3): say how fresh a read must be, here with a hint comment through sql``.
      const feed = await sql<{ title: string; author: string }>`/* FRESHNESS: EVENTUAL */
        SELECT p.title, a.name AS author, ${sql.raw(SERVED_BY)} FROM posts p JOIN authors a ON a.id = p.author_id
        WHERE p.published ORDER BY p.id DESC LIMIT 10`.execute(db)
      log(servedBy('read (eventual) the feed', feed.rows[0]))
      return { postId, mine: mine?.title, feed: feed.rows.map(({ title, author }) => ({ title, author })) }
    })
  } finally {
    await db.destroy()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(await main(process.env.FRESHET_CONFIG ?? 'freshet.yaml'))
}
