// node-postgres on freshet: an author writes a post, reads it back at once, then lists the feed from a replica.
//
// Run (beside a running `npx freshet sandbox`, which writes freshet.yaml):
//   FRESHET_CONFIG=freshet.yaml npx tsx examples/pg/index.ts
// Each statement prints the node and port it ran on, read from the server.
// The three lines that change when adopting freshet are marked "freshet (n)".

import { pathToFileURL } from 'node:url'
// freshet (1): was `import pg from 'pg'`. In your app: `from 'freshet'`.
import { createPool, type FreshetConfigInput, freshness, withScope } from '../../src/index.js'
import { SERVED_BY, servedBy } from '../served-by.js'

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS authors (id serial PRIMARY KEY, email text UNIQUE NOT NULL, name text NOT NULL);
  CREATE TABLE IF NOT EXISTS posts (
    id serial PRIMARY KEY, title text NOT NULL, published boolean NOT NULL DEFAULT false,
    author_id int NOT NULL REFERENCES authors (id))`

/** Runs the demo against the cluster in `config` (a config object or a YAML/JSON path) and returns what it read. */
export async function main(config: FreshetConfigInput | string, log: (line: string) => void = console.log) {
  // freshet (2): was `new pg.Pool({ connectionString })`.
  const pool = createPool(config)
  pool.on('decision', (d) => log(`routed to ${d.target} (${d.reason})`))
  try {
    for (const statement of SCHEMA.split(';')) await pool.query(statement)
    // One scope per unit of work (an HTTP request, a job): reads in it see its own writes.
    return await withScope(async () => {
      const client = await pool.connect()
      let postId: number
      try {
        await client.query('BEGIN')
        const author = await client.query<{ id: number }>(
          `INSERT INTO authors (email, name) VALUES ($1, $2)
           ON CONFLICT (email) DO UPDATE SET name = EXCLUDED.name RETURNING id`,
          ['ada@example.com', 'Ada'],
        )
        const post = await client.query<{ id: number }>(
          `INSERT INTO posts (title, published, author_id) VALUES ($1, true, $2) RETURNING id, ${SERVED_BY}`,
          ['Notes on the Analytical Engine', author.rows[0]!.id],
        )
        log(servedBy('write (transaction) INSERT INTO posts', post.rows[0]))
        postId = post.rows[0]!.id
        await client.query('COMMIT')
      } catch (err) {
        await client.query('ROLLBACK')
        throw err
      } finally {
        client.release()
      }
      // Read-your-writes: a replica that has replayed the commit, or the primary.
      const mine = await freshness('eventual', () =>
        pool.query(`SELECT title, ${SERVED_BY} FROM posts WHERE id = $1`, [postId]),
      )
      log(servedBy('read (eventual, own write) SELECT title FROM posts', mine.rows[0]))
      // freshet (3): say how fresh a read must be, here with a hint comment.
      const feed = await pool.query(
        `/* FRESHNESS: EVENTUAL */ SELECT p.title, a.name AS author, ${SERVED_BY}
         FROM posts p JOIN authors a ON a.id = p.author_id WHERE p.published ORDER BY p.id DESC LIMIT 10`,
      )
      log(servedBy('read (eventual) the feed', feed.rows[0]))
      return {
        postId,
        mine: mine.rows[0]?.title as string | undefined,
        feed: feed.rows.map(({ title, author }) => ({ title, author })),
      }
    })
  } finally {
    await pool.end()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const result = await main(process.env.FRESHET_CONFIG ?? 'freshet.yaml')
  console.log(result)
}
