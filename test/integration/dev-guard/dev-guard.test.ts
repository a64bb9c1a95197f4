// The development guard on a real cluster: a scope that writes a table and then reads it from a replica
// gets one warning per statement fingerprint; primary reads, other tables and token-guarded reads stay quiet.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import {
  createPool,
  type FreshetPool,
  freshness,
  type ReadAfterWriteWarning,
  withPrimary,
  withScope,
} from '../../../src/index.js'
import { type LocalCluster, startCluster } from '../../cluster/index.js'
import { configFor, nodeByPort, poolReady } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'

const PORT = 'SELECT inet_server_port() AS port'

describe('development guard: replica reads right after a write', () => {
  let cluster: LocalCluster
  let nodeOf: (port: number) => string
  const pools: FreshetPool[] = []

  async function openPool(patch: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) {
    const pool = createPool(configFor(cluster, patch), { env })
    pools.push(pool)
    await poolReady(pool)
    const warnings: ReadAfterWriteWarning[] = []
    pool.on('warning', (w: ReadAfterWriteWarning) => warnings.push(w))
    return { pool, warnings }
  }

  before(async () => {
    cluster = await startCluster({ replicas: 2 })
    nodeOf = nodeByPort(cluster)
    await cluster.query('primary', 'CREATE TABLE carts (id int PRIMARY KEY, items int NOT NULL DEFAULT 0)')
    await cluster.query('primary', 'CREATE TABLE products (id int PRIMARY KEY, name text)')
    await cluster.query('primary', 'INSERT INTO carts SELECT g FROM generate_series(1, 10) g')
    await cluster.query('primary', "INSERT INTO products VALUES (1, 'pen')")
    await cluster.waitForCatchUp()
  })

  after(async () => {
    for (const p of pools) await p.end()
    await cluster?.stop()
  })

  it('warns once per fingerprint on a real read-after-write to a replica (NODE_ENV=development, causal off)', async () => {
    // Without causal tokens nothing stops the read from landing on a replica: the mistake the guard catches.
    const { pool, warnings } = await openPool({ consistency: { causal: false } }, { NODE_ENV: 'development' })
    const processWarnings: Error[] = []
    const onProcessWarning = (w: Error) => {
      if ((w as { code?: string }).code === 'FRESHET_READ_AFTER_WRITE') processWarnings.push(w)
    }
    process.on('warning', onProcessWarning)
    try {
      await withScope(async () => {
        await pool.query('UPDATE carts SET items = items + 1 WHERE id = 1')
        // Quiet: the primary, and a table this scope did not write.
        await withPrimary(() => pool.query('SELECT items FROM carts WHERE id = 1'))
        const other = await freshness('eventual', () =>
          pool.query(`${PORT}, name FROM products WHERE id = 1`),
        )
        assert.match(nodeOf(other.rows[0].port), /^replica_/)
        assert.equal(warnings.length, 0)

        for (let i = 0; i < 3; i++) {
          const res = await freshness('eventual', () =>
            pool.query(`${PORT}, items FROM carts WHERE id = $1`, [i + 1]),
          )
          assert.match(nodeOf(res.rows[0].port), /^replica_/, 'the read really went to a replica')
        }
        assert.equal(warnings.length, 1, 'one warning per statement fingerprint')
        assert.equal(warnings[0]!.table, 'carts')
        assert.match(warnings[0]!.message, /readYourWrites|withPrimary|causal/)

        await freshness('eventual', () => pool.query('SELECT count(*) FROM carts'))
        assert.equal(warnings.length, 2, 'a different statement warns again')
      })
      // A fresh scope has written nothing.
      await withScope(() => freshness('eventual', () => pool.query('SELECT sum(items) FROM carts')))
      assert.equal(warnings.length, 2)
      await eventually('process warnings emitted', () => processWarnings.length === 2)
    } finally {
      process.off('warning', onProcessWarning)
    }
  })

  it('stays quiet when the read carries a read-your-writes token, even on a replica', async () => {
    const { pool, warnings } = await openPool({}, { NODE_ENV: 'development' })
    await withScope(async () => {
      await pool.query('UPDATE carts SET items = items + 1 WHERE id = 2')
      // causal (default): the scope's token follows the read; a replica serves it once it replayed.
      await eventually('a token-guarded replica read', async () => {
        const res = await freshness('eventual', () => pool.query(`${PORT}, items FROM carts WHERE id = 2`))
        return nodeOf(res.rows[0].port).startsWith('replica_')
      })
    })
    const token = await withScope(async () => {
      await pool.query('UPDATE carts SET items = items + 1 WHERE id = 3')
      return pool.lastWriteToken()
    })
    await withScope(() => freshness('eventual', () => pool.query('SELECT items FROM carts WHERE id = 3')))
    assert.ok(token)
    assert.equal(warnings.length, 0)
  })

  it('is off outside development unless asked for', async () => {
    const { pool, warnings } = await openPool({ consistency: { causal: false } }, { NODE_ENV: 'production' })
    await withScope(async () => {
      await pool.query('UPDATE carts SET items = items + 1 WHERE id = 4')
      const res = await freshness('eventual', () => pool.query(`${PORT}, items FROM carts WHERE id = 4`))
      assert.match(nodeOf(res.rows[0].port), /^replica_/)
    })
    assert.equal(warnings.length, 0)
  })
})
