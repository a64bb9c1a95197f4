// Each MySQL example (Drizzle mysql2, Kysely MysqlDialect, Knex, TypeORM) against one real MariaDB cluster:
// the write transaction runs on the primary, the read-back sees it at once, the eventual list is read on a replica.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { main as drizzle } from '../../../examples/mysql/drizzle.js'
import { main as knex } from '../../../examples/mysql/knex.js'
import { main as kysely } from '../../../examples/mysql/kysely.js'
import { main as typeorm } from '../../../examples/mysql/typeorm.js'
import { type MariadbCluster, startMariadbCluster } from '../../../src/cluster/index.js'
import { mariadbConfigFor } from '../../support/mariadb-fixture.js'

type Example = (
  config: ReturnType<typeof mariadbConfigFor>,
  log: (line: string) => void,
) => Promise<{ readBack: string | undefined; listed: number; targets: Record<string, string[]> }>

const EXAMPLES: [string, Example, string][] = [
  ['Drizzle (mysql2)', drizzle, 'hello from drizzle'],
  ['Kysely (MysqlDialect)', kysely, 'hello from kysely'],
  ['Knex', knex, 'hello from knex'],
  ['TypeORM', typeorm, 'hello from typeorm'],
]

describe('ORMs on createMysqlPool (examples/mysql)', () => {
  let cluster: MariadbCluster

  before(async () => {
    cluster = await startMariadbCluster({ replicas: 2 })
  })

  after(async () => {
    await cluster?.stop()
  })

  for (const [name, run, title] of EXAMPLES) {
    it(`${name}: writes on the primary, reads its write back, lists from a replica`, async () => {
      const lines: string[] = []
      const out = await run(mariadbConfigFor(cluster), (l) => lines.push(l))
      assert.equal(out.readBack, title, lines.join('\n'))
      assert.ok(out.listed >= 1)
      const { write = [], 'read back': back = [], 'list (eventual)': list = [] } = out.targets
      assert.ok(write.length >= 2, `transaction statements seen: ${write.join(',')}`)
      assert.ok(
        write.every((t) => t === 'primary'),
        `write step: ${write.join(',')}`,
      )
      // the read-back is unannotated (primary) or, with a token, a replica that has the write: either
      // way it returned the row (asserted above)
      assert.ok(back.length >= 1)
      assert.ok(list.length >= 1 && list.every((t) => /^replica_|^primary$/.test(t)), list.join(','))
      assert.ok(
        list.some((t) => t.startsWith('replica_')),
        `the eventual list ran on ${list.join(',')}\n${lines.join('\n')}`,
      )
    })
  }
})
