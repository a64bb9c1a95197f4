// Drizzle ORM (drizzle-orm/mysql2) on freshet's MySQL pool: a note written in a transaction, read back at
// once (primary, the scope's GTID token), then the list read from a replica.
//
// Run beside `npx freshet sandbox --engine mariadb` (it writes freshet.yaml):
//   FRESHET_CONFIG=freshet.yaml npx tsx examples/mysql/drizzle.ts
// The lines that change when adopting freshet are marked "freshet (n)".

import { pathToFileURL } from 'node:url'
import { eq, sql } from 'drizzle-orm'
import { int, mysqlTable, varchar } from 'drizzle-orm/mysql-core'
import { drizzle } from 'drizzle-orm/mysql2'
import type { Pool } from 'mysql2/promise'
// freshet (1): was `import mysql from 'mysql2/promise'`. In your app: `from 'freshet/mysql'`.
import { createMysqlPool, type FreshetConfigInput, freshness, withScope } from '../../src/mysql/index.js'
import { Steps } from './steps.js'

export const notes = mysqlTable('drizzle_notes', {
  id: int('id').autoincrement().primaryKey(),
  title: varchar('title', { length: 200 }).notNull(),
})

/** Runs the demo against the cluster in `config`; returns what it read and where each step ran. */
export async function main(config: FreshetConfigInput | string, log: (line: string) => void = console.log) {
  // freshet (2): was `mysql.createPool(url)`; drizzle() takes it as it took the mysql2 pool (typed as one).
  const pool = createMysqlPool(config)
  const steps = new Steps(pool, log)
  const db = drizzle({ client: pool as unknown as Pool })
  try {
    await db.execute(
      sql`CREATE TABLE IF NOT EXISTS drizzle_notes (id INT AUTO_INCREMENT PRIMARY KEY, title VARCHAR(200) NOT NULL)`,
    )
    return await withScope(async () => {
      const id = await steps.run('write', () =>
        db.transaction(async (tx) => {
          const [res] = await tx.insert(notes).values({ title: 'hello from drizzle' })
          return res.insertId
        }),
      )
      const [back] = await steps.run('read back', () => db.select().from(notes).where(eq(notes.id, id)))
      const list = await steps.run('list (eventual)', () =>
        freshness('eventual', () => db.select().from(notes).limit(10)),
      )
      return { readBack: back?.title, listed: list.length, targets: steps.targets }
    })
  } finally {
    await pool.end()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await main(process.env.FRESHET_CONFIG ?? 'freshet.yaml')
}
