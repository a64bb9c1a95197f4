// Knex through freshet's proxy against a real cluster: Knex's own pg clients, hints in knex.raw() and
// .comment(), the session tier from the startup option or SET, transactions pinned to the primary.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import knex, { type Knex } from 'knex'
import { main } from '../../../examples/knex/proxy.js'
import { startBlogProxy } from '../../support/proxy-blog-fixture.js'
import type { ProxyFixture } from '../../support/proxy-fixture.js'
import { assertRollbackDiscards } from './knex-checks.js'

describe('Knex through the proxy', () => {
  let f: ProxyFixture
  let db: Knex

  before(async () => {
    f = await startBlogProxy()
    db = knex({ client: 'pg', connection: { connectionString: f.url() }, pool: { min: 0, max: 4 } })
  })

  after(async () => {
    await db?.destroy()
    await f?.stop()
  })

  const port = () => db.raw('inet_server_port() AS port')

  it('sends hinted reads to replicas, unannotated reads to the primary', async () => {
    const hinted = await db.raw('/* FRESHNESS: EVENTUAL */ SELECT inet_server_port() AS port')
    assert.match(f.nodeOf(hinted.rows[0].port), /^replica_/)
    const plain = await db.raw('SELECT inet_server_port() AS port')
    assert.equal(f.nodeOf(plain.rows[0].port), 'primary')
    const row = await db('authors').comment('FRESHNESS: NEAR_RT').first('name', port()).where({ id: 1 })
    assert.equal(row.name, 'Alan')
    assert.match(f.nodeOf(row.port), /^replica_/)
  })

  it('takes the session tier from the startup option and from SET freshet.freshness', async () => {
    const eventual = knex({
      client: 'pg',
      connection: { connectionString: f.url(), options: '-c freshet.freshness=eventual' },
      pool: { min: 0, max: 1 },
    })
    try {
      const read = await eventual('authors').first('name', port()).where({ id: 1 })
      assert.match(f.nodeOf(read.port), /^replica_/)
      const [w] = await eventual('authors')
        .insert({ email: 'opt@example.com', name: 'Opt' })
        .returning(port())
      assert.equal(f.nodeOf(w.port), 'primary')
    } finally {
      await eventual.destroy()
    }

    // SET on a pooled connection: afterCreate runs it once per new connection, so every one has the tier.
    const viaSet = knex({
      client: 'pg',
      connection: { connectionString: f.url() },
      pool: {
        min: 0,
        max: 2,
        afterCreate: (
          conn: { query: (sql: string, cb: (err: Error | null) => void) => void },
          done: (err: Error | null, conn: unknown) => void,
        ) => conn.query("SET freshet.freshness = 'eventual'", (err) => done(err, conn)),
      },
    })
    try {
      const reads = await Promise.all([1, 2, 3, 4].map(() => viaSet.raw('SELECT inet_server_port() AS port')))
      for (const r of reads) assert.match(f.nodeOf(r.rows[0].port), /^replica_/)
    } finally {
      await viaSet.destroy()
    }
  })

  it('runs knex.transaction() on the primary: commit keeps, rollback discards', async () => {
    const node = await db.transaction(async (trx) => {
      const [a] = await trx('authors').insert({ email: 'tx@example.com', name: 'Tx' }).returning('id')
      const read = await trx.raw('/* FRESHNESS: EVENTUAL */ SELECT inet_server_port() AS port, ? AS id', [
        a.id,
      ])
      return f.nodeOf(read.rows[0].port)
    })
    assert.equal(node, 'primary')
    await assertRollbackDiscards(db)
  })

  it('reads its own writes on the same connection while every replica is paused', async () => {
    // The proxy keeps the read-your-writes token per client connection: a one-connection Knex pool
    // carries it from the write to the read.
    const single = knex({ client: 'pg', connection: { connectionString: f.url() }, pool: { min: 0, max: 1 } })
    try {
      for (const r of f.cluster.replicas) await f.cluster.pauseReplay(r.name)
      try {
        const [a] = await single('authors').insert({ email: 'ryw@example.com', name: 'Mine' }).returning('id')
        const read = await single('authors')
          .comment('FRESHNESS: EVENTUAL')
          .first('name', port())
          .where({ id: a.id })
        assert.equal(read.name, 'Mine')
        assert.equal(f.nodeOf(read.port), 'primary')
      } finally {
        for (const r of f.cluster.replicas) await f.cluster.resumeReplay(r.name)
      }
    } finally {
      await single.destroy()
    }
  })

  it('runs examples/knex/proxy.ts through the proxy', async () => {
    const result = await main(f.url())
    assert.equal(result.mine, 'Notes on the analytical engine')
    assert.deepEqual(result.feed[0], { title: 'Notes on the analytical engine', author: 'Ada' })
    assert.deepEqual(result.report.map((r) => r.author).sort(), ['Ada', 'Alan'])
  })
})
