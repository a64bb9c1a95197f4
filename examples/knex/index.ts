// Knex on freshet's pool (Knex 3.3's `connectionPool` option): an author writes a post in a transaction,
// reads it back at once, then lists the feed from a replica. examples/knex/proxy.ts does the same through
// freshet's proxy.
//
// Run (beside a running `npx freshet sandbox`, which writes freshet.yaml):
//   FRESHET_CONFIG=freshet.yaml npx tsx examples/knex/index.ts
// Each statement prints the node and port it ran on, read from the server.
// The three lines that change when adopting freshet are marked "freshet (n)".

import { pathToFileURL } from 'node:url'
import knex, { type Knex } from 'knex'
// freshet (1): new import. In your app: `from 'freshet'`.
import { createPool, type FreshetConfigInput, withScope } from '../../src/index.js'
import { SERVED_BY, servedBy } from '../served-by.js'

export const BLOG_DDL = [
  'CREATE TABLE IF NOT EXISTS authors (id serial PRIMARY KEY, email text UNIQUE NOT NULL, name text NOT NULL)',
  `CREATE TABLE IF NOT EXISTS posts (id serial PRIMARY KEY, title text NOT NULL,
     published boolean NOT NULL DEFAULT false, author_id int NOT NULL REFERENCES authors (id))`,
]

/** The example's unit of work on any Knex instance: write in a transaction, read it back, list the feed. */
export async function blogDemo(db: Knex, log: (line: string) => void = console.log) {
  for (const ddl of BLOG_DDL) await db.raw(ddl)
  const postId = await db.transaction(async (trx) => {
    const [author] = await trx('authors')
      .insert({ email: 'ada@example.com', name: 'Ada' })
      .onConflict('email')
      .merge()
      .returning<{ id: number }[]>('id')
    const [post] = await trx('posts')
      .insert({ title: 'Notes on the analytical engine', published: true, author_id: author!.id })
      .returning<{ id: number }[]>('id')
    // a transaction runs on one node: ask it which
    const where = await trx.raw<{ rows: object[] }>(`SELECT ${SERVED_BY}`)
    log(servedBy('write (transaction) insert into posts', where.rows[0]))
    return post!.id
  })
  // freshet (3): say how fresh a read must be, with `.comment()` on the builder (a leading comment) ...
  // Read-your-writes: a replica that has replayed the transaction, or the primary.
  const mine = await db('posts')
    .comment('FRESHNESS: EVENTUAL')
    .first<{ title: string }>('title', db.raw(SERVED_BY))
    .where({ id: postId })
  log(servedBy('read (eventual, own write) posts.first', mine))
  // ... or a comment leading raw SQL.
  const feed = await db.raw<{ rows: { title: string; author: string }[] }>(
    `/* FRESHNESS: EVENTUAL */ SELECT p.title, a.name AS author, ${SERVED_BY} FROM posts p JOIN authors a ON a.id = p.author_id
     WHERE p.published ORDER BY p.id DESC LIMIT ?`,
    [10],
  )
  log(servedBy('read (eventual) the feed', feed.rows[0]))
  return { postId, mine: mine?.title, feed: feed.rows.map(({ title, author }) => ({ title, author })) }
}

/** Runs the demo against the cluster in `config` (a config object or a YAML/JSON path) and returns what it read. */
export async function main(config: FreshetConfigInput | string, log: (line: string) => void = console.log) {
  // freshet (2): Knex takes a ready pool instead of `connection: { connectionString }`.
  const pool = createPool(config)
  pool.on('decision', (d) => log(`routed to ${d.target} (${d.reason})`))
  const db = knex({ client: 'pg', connectionPool: pool })
  try {
    // One scope per unit of work (an HTTP request, a job): reads in it see its own writes.
    return await withScope(() => blogDemo(db, log))
  } finally {
    await db.destroy()
    // Knex does not end a pool it was given.
    await pool.end()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(await main(process.env.FRESHET_CONFIG ?? 'freshet.yaml'))
}
