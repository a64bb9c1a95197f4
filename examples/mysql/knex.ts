// Knex on freshet's MySQL pool, given as Knex's `connectionPool` (a native mysql2 pool, Knex 3.2+): each
// checked-out connection routes per statement while idle and pins for transactions. A note written in a
// transaction, read back at once, then listed from a replica.
//
// Run beside `npx freshet sandbox --engine mariadb`:
//   FRESHET_CONFIG=freshet.yaml npx tsx examples/mysql/knex.ts

import { pathToFileURL } from 'node:url'
import knex from 'knex'
import {
  createMysqlPool,
  type FreshetConfigInput,
  freshness,
  mysql2Module,
  withScope,
} from '../../src/mysql/index.js'
import { Steps } from './steps.js'

export async function main(config: FreshetConfigInput | string, log: (line: string) => void = console.log) {
  const pool = createMysqlPool(config)
  const steps = new Steps(pool, log)
  // freshet: was `connection: url` (or a mysql2 pool as connectionPool); knex borrows the pool's connections
  const db = knex({ client: 'mysql2', connectionPool: pool })
  try {
    if (!(await db.schema.hasTable('knex_notes'))) {
      await db.schema.createTable('knex_notes', (t) => {
        t.increments('id')
        t.string('title', 200).notNullable()
      })
    }
    return await withScope(async () => {
      const id = await steps.run('write', () =>
        db.transaction(async (trx) => {
          const [newId] = await trx('knex_notes').insert({ title: 'hello from knex' })
          return newId as number
        }),
      )
      const back = await steps.run('read back', () => db('knex_notes').where({ id }).first())
      const list = await steps.run('list (eventual)', () =>
        freshness('eventual', () => db('knex_notes').limit(10)),
      )
      return { readBack: back?.title as string | undefined, listed: list.length, targets: steps.targets }
    })
  } finally {
    await db.destroy()
    await pool.end()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await main(process.env.FRESHET_CONFIG ?? 'freshet.yaml')
}
