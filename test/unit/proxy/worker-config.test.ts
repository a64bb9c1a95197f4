// proxy.workers: the config key (N, 'auto', refused values naming the key), the worker count and the pools each worker gets.

import assert from 'node:assert/strict'
import { availableParallelism } from 'node:os'
import { describe, it } from 'node:test'
import { validateConfig } from '../../../src/core/config/parse-config.js'
import { ConfigError } from '../../../src/core/errors.js'
import { workerConfig, workerCount } from '../../../src/proxy/workers/worker-protocol.js'

const base = (proxy: Record<string, unknown> = {}) =>
  validateConfig({
    version: 1,
    cluster: { primary: { name: 'primary', url: 'postgres://127.0.0.1:1/x' } },
    pools: { primary: { min_idle: 5, max_active: 50 }, replicas: { min_idle: 0, max_active: 3 } },
    proxy,
  })

describe('proxy.workers', () => {
  it('defaults to 1; takes a number or auto (one per core)', () => {
    assert.equal(workerCount(base()), 1)
    assert.equal(workerCount(base({ workers: 4 })), 4)
    assert.equal(workerCount(base({ workers: 'auto' })), availableParallelism())
  })

  it('refuses 0, fractions and other words, naming proxy.workers', () => {
    for (const workers of [0, 1.5, 'all', 257]) {
      assert.throws(
        () => base({ workers }),
        (err: unknown) => err instanceof ConfigError && /proxy\.workers/.test(err.message),
        String(workers),
      )
    }
  })

  it('splits the pool bounds over the workers, at least one connection each', () => {
    const c = workerConfig(base({ workers: 4 }), 4)
    assert.deepEqual(
      [
        c.pools.primary.min_idle,
        c.pools.primary.max_active,
        c.pools.replicas.min_idle,
        c.pools.replicas.max_active,
      ],
      [2, 13, 0, 1],
    )
    // everything else is the config as it was
    assert.equal(c.pools.primary.connection_timeout_ms, base().pools.primary.connection_timeout_ms)
    assert.equal(c.proxy.listen, base().proxy.listen)
  })
})
