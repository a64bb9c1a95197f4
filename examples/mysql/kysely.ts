// Kysely (MysqlDialect) on freshet's MySQL pool: a note written in a transaction, read back at once,
// then the list read from a replica.
//
// Run beside `npx freshet sandbox --engine mariadb`:
//   FRESHET_CONFIG=freshet.yaml npx tsx examples/mysql/kysely.ts

import { pathToFileURL } from 'node:url'
import { type Generated, Kysely, MysqlDialect, type MysqlDialectConfig, sql } from 'kysely'
// freshet (1): was `import { createPool } from 'mysql2'`.
import { createMysqlPool, type FreshetConfigInput, freshness, withScope } from '../../src/mysql/index.js'
import { Steps } from './steps.js'

interface Database {
  kysely_notes: { id: Generated<number>; title: string }
}

export async function main(config: FreshetConfigInput | string, log: (line: string) => void = console.log) {
  const pool = createMysqlPool(config)
  const steps = new Steps(pool, log)
  // freshet (2): `pool.pool` is the callback-style pool MysqlDialect expects (mysql2's createPool()).
  const db = new Kysely<Database>({
    dialect: new MysqlDialect({ pool: pool.pool as unknown as MysqlDialectConfig['pool'] }),
  })
  try {
    await sql`CREATE TABLE IF NOT EXISTS kysely_notes (id INT AUTO_INCREMENT PRIMARY KEY, title VARCHAR(200) NOT NULL)`.execute(
      db,
    )
    return await withScope(async () => {
      const id = await steps.run('write', () =>
        db.transaction().execute(async (trx) => {
          const res = await trx
            .insertInto('kysely_notes')
            .values({ title: 'hello from kysely' })
            .executeTakeFirstOrThrow()
          return Number(res.insertId)
        }),
      )
      const back = await steps.run('read back', () =>
        db.selectFrom('kysely_notes').select('title').where('id', '=', id).executeTakeFirst(),
      )
      const list = await steps.run('list (eventual)', () =>
        freshness('eventual', () => db.selectFrom('kysely_notes').selectAll().limit(10).execute()),
      )
      return { readBack: back?.title, listed: list.length, targets: steps.targets }
    })
  } finally {
    await db.destroy()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await main(process.env.FRESHET_CONFIG ?? 'freshet.yaml')
}
