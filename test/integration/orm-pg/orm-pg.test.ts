// node-postgres usage patterns through createPool on a real cluster: every query form, checked-out clients,
// transactions, per-query tiers and read-your-writes; which node served is read with inet_server_port().

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { QueryArrayConfig } from 'pg'
import { main } from '../../../examples/pg/index.js'
import { type FreshetPool, freshness, withScope } from '../../../src/index.js'
import type { LocalCluster } from '../../cluster/index.js'
import { configFor } from '../../support/cluster-config.js'
import { assertExampleRouted, startOrmCluster, withReplicasPaused } from '../../support/orm-cluster.js'

const PORT = 'SELECT inet_server_port() AS port'
const EVENTUAL = '/* FRESHNESS: EVENTUAL */'

describe('node-postgres through createPool', () => {
  let cluster: LocalCluster
  let pool: FreshetPool
  let nodeOf: (port: number) => string

  before(async () => {
    ;({ cluster, pool, nodeOf } = await startOrmCluster([
      'CREATE TABLE things (id int PRIMARY KEY, name text NOT NULL)',
      "INSERT INTO things SELECT g, 'thing ' || g FROM generate_series(1, 20) g",
    ]))
  })

  after(async () => {
    await pool?.end()
    await cluster?.stop()
  })

  it('serves every query form: text + values, QueryConfig, rowMode array, named statements', async () => {
    const byValues = await pool.query(`${EVENTUAL} ${PORT}, name FROM things WHERE id = $1`, [3])
    assert.equal(byValues.rows[0].name, 'thing 3')
    assert.match(nodeOf(byValues.rows[0].port), /^replica_/)

    const byConfig = await pool.query({
      text: `${EVENTUAL} ${PORT}, name FROM things WHERE id = $1`,
      values: [4],
    })
    assert.equal(byConfig.rows[0].name, 'thing 4')
    assert.match(nodeOf(byConfig.rows[0].port), /^replica_/)

    // FreshetPool.query() is typed with pg.QueryConfig, which lacks rowMode: name the array form's type.
    const arrayQuery: QueryArrayConfig = {
      text: `${EVENTUAL} SELECT inet_server_port(), id, name FROM things WHERE id <= $1 ORDER BY id`,
      values: [2],
      rowMode: 'array',
    }
    const arrays = await pool.query(arrayQuery)
    assert.deepEqual(
      arrays.rows.map((r: unknown[]) => r.slice(1)),
      [
        [1, 'thing 1'],
        [2, 'thing 2'],
      ],
    )
    assert.match(nodeOf(arrays.rows[0]![0]), /^replica_/)

    // A named statement is prepared once per connection; freshet may run it on different nodes.
    const named = { name: 'thing-by-id', text: `${EVENTUAL} ${PORT}, name FROM things WHERE id = $1` }
    const seen = new Set<string>()
    for (let id = 1; id <= 6; id++) {
      const res = await pool.query({ ...named, values: [id] })
      assert.equal(res.rows[0].name, `thing ${id}`)
      seen.add(nodeOf(res.rows[0].port))
    }
    assert.deepEqual([...seen].sort(), ['replica_1', 'replica_2'])
  })

  it('supports the callback forms of query() and connect()', async () => {
    const port = await new Promise<number>((resolve, reject) =>
      pool.query(`${EVENTUAL} ${PORT}`, (err, res) => (err ? reject(err) : resolve(res!.rows[0].port))),
    )
    assert.match(nodeOf(port), /^replica_/)
    const name = await new Promise<string>((resolve, reject) =>
      pool.query('SELECT name FROM things WHERE id = $1', [5], (err, res) =>
        err ? reject(err) : resolve(res!.rows[0].name),
      ),
    )
    assert.equal(name, 'thing 5')
    const fromClient = await new Promise<string>((resolve, reject) =>
      pool.connect((err, client, done) => {
        if (err || !client || !done) return reject(err)
        client.query(`${EVENTUAL} ${PORT}`, (qerr, res) => {
          done()
          if (qerr) reject(qerr)
          else resolve(nodeOf(res!.rows[0].port))
        })
      }),
    )
    assert.match(fromClient, /^replica_/)
  })

  it('routes an idle checked-out client per statement: reads by tier, writes to the primary', async () => {
    const client = await pool.connect()
    try {
      assert.match(nodeOf((await client.query(`${EVENTUAL} ${PORT}`)).rows[0].port), /^replica_/)
      const write = await client.query(
        `WITH w AS (INSERT INTO things VALUES (100, 'written') RETURNING id) SELECT inet_server_port() AS port FROM w`,
      )
      assert.equal(nodeOf(write.rows[0].port), 'primary')
      assert.equal(
        nodeOf((await client.query(PORT)).rows[0].port),
        'primary',
        'unannotated reads default to the primary',
      )
      const scoped = await freshness('eventual', () => client.query(PORT))
      assert.match(nodeOf(scoped.rows[0].port), /^replica_/)
    } finally {
      client.release()
    }
  })

  it('runs transactions on the primary: commit keeps, rollback discards', async () => {
    const client = await pool.connect()
    try {
      await freshness('eventual', async () => {
        await client.query('BEGIN')
        await client.query('INSERT INTO things VALUES ($1, $2)', [200, 'committed'])
        const inside = await client.query(
          `${EVENTUAL} ${PORT}, (SELECT name FROM things WHERE id = 200) AS name`,
        )
        assert.equal(nodeOf(inside.rows[0].port), 'primary', 'pinned to the transaction node')
        assert.equal(inside.rows[0].name, 'committed')
        await client.query('COMMIT')

        // Fired without awaiting each, as pg.Client queues them.
        const queued = [
          client.query('BEGIN'),
          client.query('INSERT INTO things VALUES (201, $1)', ['rolled back']),
          client.query(`${PORT}, (SELECT count(*)::int FROM things WHERE id = 201) AS n`),
          client.query('ROLLBACK'),
        ]
        const results = await Promise.all(queued)
        assert.equal(nodeOf(results[2]!.rows[0].port), 'primary')
        assert.equal(results[2]!.rows[0].n, 1)
      })
    } finally {
      client.release()
    }
    const after = await pool.query('SELECT id FROM things WHERE id IN (200, 201) ORDER BY id')
    assert.deepEqual(
      after.rows.map((r) => r.id),
      [200],
    )
  })

  it('reads its own writes while every replica is paused', async () => {
    await withReplicasPaused(cluster, async () => {
      await withScope(async () => {
        await pool.query("INSERT INTO things VALUES (300, 'mine')")
        const res = await pool.query(`${EVENTUAL} ${PORT}, (SELECT name FROM things WHERE id = 300) AS name`)
        assert.equal(res.rows[0].name, 'mine')
        assert.equal(nodeOf(res.rows[0].port), 'primary')
      })
    })
  })

  it('runs examples/pg against the cluster', async () => {
    const lines: string[] = []
    const result = await main(configFor(cluster), (line) => lines.push(line))
    assert.equal(result.mine, 'Notes on the Analytical Engine')
    assert.deepEqual(result.feed[0], { title: 'Notes on the Analytical Engine', author: 'Ada' })
    assertExampleRouted(lines)
  })
})
