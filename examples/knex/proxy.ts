// Knex through freshet's proxy: the application keeps Knex's own pg clients and only points them at
// `freshet proxy`. A second instance with a session tier serves reports from replicas.
//
// Run (beside a running `npx freshet sandbox`, which prints this URL):
//   FRESHET_URL=postgres://app:app@127.0.0.1:6432/freshet npx tsx examples/knex/proxy.ts
// Each statement prints the node and port it ran on, read from the server.
// The lines that change when adopting freshet are marked "freshet (n)".

import { pathToFileURL } from 'node:url'
import knex from 'knex'
import { SERVED_BY, servedBy } from '../served-by.js'
import { blogDemo } from './index.js'

/** Runs the blog demo through the proxy at `url`, then a report on a session-tier connection. */
export async function main(url: string, log: (line: string) => void = console.log) {
  // freshet (1): the connection string names the proxy instead of the primary. No import changes.
  const db = knex({ client: 'pg', connection: { connectionString: url }, pool: { min: 0, max: 4 } })
  // freshet (2): reads without a hint on this instance may go to a replica at most 60 s behind.
  const reports = knex({
    client: 'pg',
    connection: { connectionString: url, options: '-c freshet.freshness=eventual' },
    pool: { min: 0, max: 2 },
  })
  try {
    // freshet (3): hints on the queries that may read from a replica (inside blogDemo).
    const blog = await blogDemo(db, log)
    const report = await reports('posts')
      .join('authors', 'authors.id', 'posts.author_id')
      .groupBy('authors.name')
      .select('authors.name as author', reports.raw(SERVED_BY))
      .count<{ author: string; posts: string }[]>('posts.id as posts')
    log(servedBy('read (eventual session tier) the report', report[0]))
    return { ...blog, report: report.map(({ author, posts }) => ({ author, posts })) }
  } finally {
    await Promise.all([db.destroy(), reports.destroy()])
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(await main(process.env.FRESHET_URL ?? 'postgres://app:app@127.0.0.1:6432/freshet'))
}
