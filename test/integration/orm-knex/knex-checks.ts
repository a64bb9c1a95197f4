// Checks both Knex suites (on the pool and through the proxy) make the same way.

import assert from 'node:assert/strict'
import type { Knex } from 'knex'

/**
 * A transaction that throws leaves nothing behind, while the one the test committed before (author
 * tx@example.com) stays.
 */
export async function assertRollbackDiscards(db: Knex): Promise<void> {
  await assert.rejects(
    db.transaction(async (trx) => {
      await trx('authors').insert({ email: 'rollback@example.com', name: 'Gone' })
      throw new Error('abort')
    }),
    /abort/,
  )
  const rows = await db('authors')
    .select('email')
    .whereIn('email', ['tx@example.com', 'rollback@example.com'])
  assert.deepEqual(rows, [{ email: 'tx@example.com' }])
}
