// postgres.js through freshet's proxy: an author writes a post in a transaction and reads it back at
// once on the same connection, then the feed and a report come from replicas. postgres.js prepares its
// statements (extended protocol); the proxy routes each one by the hint in its text.
//
// Run (beside a running `npx freshet sandbox`, which prints this URL):
//   FRESHET_URL=postgres://app:app@127.0.0.1:6432/freshet npx tsx examples/postgres-js/index.ts
// Each statement prints the node and port it ran on, read from the server.
// The lines that change when adopting freshet are marked "freshet (n)".

import { pathToFileURL } from 'node:url'
import postgres from 'postgres'
import { servedBy } from '../served-by.js'

/** Runs the demo through the proxy at `url` and returns what it read. */
export async function main(url: string, log: (line: string) => void = console.log) {
  // freshet (1): the connection string names the proxy instead of the primary. No import changes.
  const sql = postgres(url, { max: 4, onnotice: () => {} })
  // freshet (2): unhinted reads on this instance may go to a replica at most 60 s behind.
  const reports = postgres(url, { max: 2, connection: { options: '-c freshet.freshness=eventual' } })
  try {
    await sql`CREATE TABLE IF NOT EXISTS authors (id serial PRIMARY KEY, email text UNIQUE NOT NULL, name text NOT NULL)`
    await sql`CREATE TABLE IF NOT EXISTS posts (id serial PRIMARY KEY, title text NOT NULL,
      published boolean NOT NULL DEFAULT false, author_id int NOT NULL REFERENCES authors (id))`
    // The proxy keeps the read-your-writes token per client connection: a unit of work that reads its
    // own writes runs on one reserved connection.
    const conn = await sql.reserve()
    let postId: number
    let mine: string | undefined
    try {
      // sql.begin() takes a connection of its own; a reserved one runs BEGIN ... COMMIT itself.
      await conn`BEGIN`
      try {
        const [author] = await conn<{ id: number }[]>`INSERT INTO authors (email, name)
          VALUES (${'barbara@example.com'}, ${'Barbara'})
          ON CONFLICT (email) DO UPDATE SET name = excluded.name RETURNING id`
        const [post] = await conn<{ id: number }[]>`INSERT INTO posts (title, published, author_id)
          VALUES (${'Data abstraction'}, true, ${author!.id})
          RETURNING id, current_setting('cluster_name') AS node, inet_server_port() AS port`
        log(servedBy('write (transaction) INSERT INTO posts', post))
        postId = post!.id
        await conn`COMMIT`
      } catch (err) {
        await conn`ROLLBACK`
        throw err
      }
      // freshet (3): a hint comment first in the statement. Read-your-writes: a replica that has replayed
      // the transaction, or the primary.
      const [row] = await conn<
        { title: string }[]
      >`/* FRESHNESS: EVENTUAL */ SELECT title, current_setting('cluster_name') AS node,
          inet_server_port() AS port FROM posts WHERE id = ${postId}`
      log(servedBy('read (eventual, own write) SELECT title FROM posts', row))
      mine = row?.title
    } finally {
      conn.release()
    }
    const feed = await sql<{ title: string; author: string }[]>`/* FRESHNESS: EVENTUAL */
      SELECT p.title, a.name AS author, current_setting('cluster_name') AS node, inet_server_port() AS port
      FROM posts p JOIN authors a ON a.id = p.author_id
      WHERE p.published ORDER BY p.id DESC LIMIT ${10}`
    log(servedBy('read (eventual) the feed', feed[0]))
    const report = await reports<{ author: string; posts: number }[]>`
      SELECT a.name AS author, count(p.id)::int AS posts,
        current_setting('cluster_name') AS node, inet_server_port() AS port
      FROM authors a LEFT JOIN posts p ON p.author_id = a.id
      GROUP BY a.name ORDER BY a.name`
    log(servedBy('read (eventual session tier) the report', report[0]))
    return {
      postId,
      mine,
      feed: feed.map(({ title, author }) => ({ title, author })),
      report: report.map(({ author, posts }) => ({ author, posts })),
    }
  } finally {
    await Promise.all([sql.end(), reports.end()])
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(await main(process.env.FRESHET_URL ?? 'postgres://app:app@127.0.0.1:6432/freshet'))
}
