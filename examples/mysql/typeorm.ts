// TypeORM (type: 'mysql') on freshet's MySQL pool through TypeORM's `driver` option: a note saved in a
// transaction, read back at once, then listed from a replica.
//
// Run beside `npx freshet sandbox --engine mariadb`:
//   FRESHET_CONFIG=freshet.yaml npx tsx examples/mysql/typeorm.ts

import { pathToFileURL } from 'node:url'
import { DataSource, EntitySchema } from 'typeorm'
import {
  createMysqlPool,
  type FreshetConfigInput,
  freshness,
  mysql2Module,
  withScope,
} from '../../src/mysql/index.js'
import { Steps } from './steps.js'

interface Note {
  id: number
  title: string
}

const NoteEntity = new EntitySchema<Note>({
  name: 'Note',
  tableName: 'typeorm_notes',
  columns: { id: { type: Number, primary: true, generated: true }, title: { type: String, length: 200 } },
})

export async function main(config: FreshetConfigInput | string, log: (line: string) => void = console.log) {
  const pool = createMysqlPool(config)
  const steps = new Steps(pool, log)
  // freshet: `driver` makes TypeORM create its pool through freshet (nodes come from freshet's config)
  const ds = new DataSource({
    type: 'mysql',
    driver: mysql2Module(pool),
    entities: [NoteEntity],
    synchronize: true,
  })
  await ds.initialize()
  try {
    const repo = ds.getRepository(NoteEntity)
    return await withScope(async () => {
      const saved = await steps.run('write', () =>
        ds.transaction((m) => m.getRepository(NoteEntity).save({ title: 'hello from typeorm' })),
      )
      const back = await steps.run('read back', () => repo.findOneBy({ id: saved.id }))
      const list = await steps.run('list (eventual)', () =>
        freshness('eventual', () => repo.find({ take: 10 })),
      )
      return { readBack: back?.title, listed: list.length, targets: steps.targets }
    })
  } finally {
    await ds.destroy()
    await pool.end()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await main(process.env.FRESHET_CONFIG ?? 'freshet.yaml')
}
