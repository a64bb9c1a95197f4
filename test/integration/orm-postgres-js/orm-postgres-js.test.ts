// postgres.js through freshet's proxy against a real cluster: prepared statements with hints, the simple
// protocol through sql.unsafe(), session tiers, sql.begin(), and NEAR_RT reads leaving a paused replica.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import postgres from 'postgres'
import { main } from '../../../examples/postgres-js/index.js'
import { eventually } from '../../support/eventually.js'
import { startBlogProxy } from '../../support/proxy-blog-fixture.js'
import type { ProxyFixture } from '../../support/proxy-fixture.js'

type PortRow = { port: number }

describe('postgres.js through the proxy', () => {
  let f: ProxyFixture
  let sql: postgres.Sql

  before(async () => {
    f = await startBlogProxy()
    sql = postgres(f.url(), { max: 4, onnotice: () => {} })
  })

  after(async () => {
    await sql?.end()
    await f?.stop()
  })

  /** The nodes that served `n` runs of a query returning `port`. */
  async function nodesOf(n: number, run: () => Promise<PortRow[]>): Promise<string[]> {
    const nodes: string[] = []
    for (let i = 0; i < n; i++) nodes.push(f.nodeOf((await run())[0]!.port))
    return nodes
  }

  it('routes prepared statements by their hint, again on every execution', async () => {
    const hinted = await nodesOf(
      8,
      () => sql<PortRow[]>`/* FRESHNESS: EVENTUAL */ SELECT inet_server_port() AS port`,
    )
    assert.ok(
      hinted.every((n) => n.startsWith('replica_')),
      `${hinted}`,
    )
    const plain = await nodesOf(4, () => sql<PortRow[]>`SELECT inet_server_port() AS port`)
    assert.deepEqual(plain, ['primary', 'primary', 'primary', 'primary'])
    const [row] = await sql<(PortRow & { name: string })[]>`/* FRESHNESS: NEAR_RT */
      SELECT inet_server_port() AS port, name FROM authors WHERE id = ${1}`
    assert.equal(row?.name, 'Alan')
    assert.match(f.nodeOf(row!.port), /^replica_/)
    const [w] = await sql<PortRow[]>`/* FRESHNESS: EVENTUAL */
      INSERT INTO authors (email, name) VALUES (${'w@example.com'}, ${'W'}) RETURNING inet_server_port() AS port`
    assert.equal(f.nodeOf(w!.port), 'primary')
  })

  it('routes sql.unsafe() (simple protocol without parameters) by its hint', async () => {
    const [row] = await sql.unsafe<PortRow[]>('/* FRESHNESS: EVENTUAL */ SELECT inet_server_port() AS port')
    assert.match(f.nodeOf(row!.port), /^replica_/)
  })

  it('takes the session tier from the startup option, or from SET sent with sql.unsafe()', async () => {
    const eventual = postgres(f.url(), { max: 2, connection: { options: '-c freshet.freshness=eventual' } })
    try {
      const reads = await nodesOf(4, () => eventual<PortRow[]>`SELECT inet_server_port() AS port`)
      assert.ok(
        reads.every((n) => n.startsWith('replica_')),
        `${reads}`,
      )
    } finally {
      await eventual.end()
    }

    const conn = await sql.reserve()
    try {
      // Simple protocol: freshet answers the SET itself and keeps the tier for this connection.
      await conn.unsafe("SET freshet.freshness = 'eventual'")
      const reads = await nodesOf(4, () => conn<PortRow[]>`SELECT inet_server_port() AS port`)
      assert.ok(
        reads.every((n) => n.startsWith('replica_')),
        `${reads}`,
      )
      await conn.unsafe('RESET freshet.freshness')
      assert.deepEqual(await nodesOf(2, () => conn<PortRow[]>`SELECT inet_server_port() AS port`), [
        'primary',
        'primary',
      ])
    } finally {
      conn.release()
    }
  })

  it('takes SET freshet.freshness sent as a prepared statement (extended protocol) too', async () => {
    const own = postgres(f.url(), { max: 1, onnotice: () => {} })
    try {
      await own`SET freshet.freshness = 'eventual'`
      const rows = await nodesOf(3, async () => {
        const [row] = await own<(PortRow & { s: string | null })[]>`SELECT inet_server_port() AS port,
          current_setting('freshet.freshness', true) AS s`
        // freshet answered it: PostgreSQL never saw a custom setting of that name
        assert.equal(row?.s, null)
        return [row!]
      })
      assert.ok(
        rows.every((n) => n.startsWith('replica_')),
        `${rows}`,
      )
      // prepared again (same text, postgres.js reuses its statement): answered again
      await own`RESET freshet.freshness`
      await own`SET freshet.freshness = 'eventual'`
      await own`RESET freshet.freshness`
      assert.deepEqual(await nodesOf(2, () => own<PortRow[]>`SELECT inet_server_port() AS port`), [
        'primary',
        'primary',
      ])
    } finally {
      await own.end()
    }
  })

  it('runs sql.begin() on the primary: commit keeps, rollback discards', async () => {
    const nodes = await sql.begin(async (tx) => {
      const [a] = await tx<PortRow[]>`INSERT INTO authors (email, name) VALUES (${'tx@example.com'}, ${'Tx'})
        RETURNING inet_server_port() AS port`
      const [r] = await tx<PortRow[]>`/* FRESHNESS: EVENTUAL */ SELECT inet_server_port() AS port`
      return [f.nodeOf(a!.port), f.nodeOf(r!.port)]
    })
    assert.deepEqual(nodes, ['primary', 'primary'])
    await assert.rejects(
      sql.begin(async (tx) => {
        await tx`INSERT INTO authors (email, name) VALUES (${'rollback@example.com'}, ${'Gone'})`
        throw new Error('abort')
      }),
      /abort/,
    )
    const rows = await sql<{ email: string }[]>`SELECT email FROM authors
      WHERE email IN ${sql(['tx@example.com', 'rollback@example.com'])}`
    assert.deepEqual([...rows], [{ email: 'tx@example.com' }])
  })

  it('stops sending NEAR_RT reads to a paused replica, and to none once both are paused', async () => {
    const nearRt = () => sql<PortRow[]>`/* FRESHNESS: NEAR_RT */ SELECT inet_server_port() AS port`
    const behind = (name: string) => {
      const lag = f.engine.snapshot().find((n) => n.name === name)?.staleness_bound_ms
      return lag !== null && lag !== undefined && lag > 500
    }
    const [r1, r2] = f.cluster.replicas
    await f.cluster.pauseReplay(r1!.name)
    try {
      await eventually(`${r1!.name} lags past NEAR_RT's 500 ms`, () => behind(r1!.name))
      assert.deepEqual(new Set(await nodesOf(8, nearRt)), new Set([r2!.name]))
      await f.cluster.pauseReplay(r2!.name)
      await eventually(`${r2!.name} lags past NEAR_RT's 500 ms`, () => behind(r2!.name))
      // near_rt's fallback is the primary.
      assert.deepEqual(new Set(await nodesOf(4, nearRt)), new Set(['primary']))
      // EVENTUAL (60 s) still accepts them.
      const eventual = await nodesOf(
        4,
        () => sql<PortRow[]>`/* FRESHNESS: EVENTUAL */ SELECT inet_server_port() AS port`,
      )
      assert.ok(
        eventual.every((n) => n.startsWith('replica_')),
        `${eventual}`,
      )
    } finally {
      for (const r of f.cluster.replicas) await f.cluster.resumeReplay(r.name)
    }
    await eventually('replicas caught up', () => f.cluster.replicas.every((r) => !behind(r.name)))
    assert.ok((await nodesOf(4, nearRt)).every((n) => n.startsWith('replica_')))
  })

  it('runs examples/postgres-js through the proxy', async () => {
    const result = await main(f.url())
    assert.equal(result.mine, 'Data abstraction')
    assert.deepEqual(result.feed[0], { title: 'Data abstraction', author: 'Barbara' })
    assert.deepEqual(result.report, [
      { author: 'Alan', posts: 1 },
      { author: 'Barbara', posts: 1 },
      { author: 'Tx', posts: 0 },
      { author: 'W', posts: 0 },
    ])
  })
})
