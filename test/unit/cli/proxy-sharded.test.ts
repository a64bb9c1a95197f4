// startShardedProxy refuses what a sharded proxy does not run, by key path, before starting anything.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { startShardedProxy } from '../../../src/cli/proxy-sharded.js'
import { validateConfig } from '../../../src/core/config/parse-config.js'
import { ConfigError } from '../../../src/core/errors.js'

const base = {
  version: 1,
  shards: [
    { name: 'shard_0', primary: { name: 's0', url: 'postgres://app@127.0.0.1:1/x' } },
    { name: 'shard_1', primary: { name: 's1', url: 'postgres://app@127.0.0.1:2/x' } },
  ],
  sharding: {
    tables: { orders: { key: 'customer_id' } },
    map: [
      { partition_key_range: '0-511', target_backend: 'shard_0' },
      { partition_key_range: '512-1023', target_backend: 'shard_1' },
    ],
    cross_shard: 'error',
  },
}

describe('startShardedProxy', () => {
  it('refuses proxy.workers above 1 with the key path', async () => {
    const config = validateConfig({ ...base, proxy: { workers: 2 } })
    await assert.rejects(
      startShardedProxy(config, { adminListen: false }),
      (err) => err instanceof ConfigError && err.issues.some((i) => i.path === 'proxy.workers'),
    )
  })

  it('refuses replica discovery with the key path (the schema first; a hand-built config here)', async () => {
    assert.throws(
      () =>
        validateConfig({
          ...base,
          cluster: {
            primary: base.shards[0]!.primary,
            discovery: { endpoint: 'http://discovery.internal/nodes' },
          },
        }),
      (err) => err instanceof ConfigError && err.issues.some((i) => i.path === 'cluster.discovery'),
    )
    const config = validateConfig(base)
    const withDiscovery = {
      ...config,
      cluster: {
        ...config.cluster,
        discovery: {
          endpoint: 'http://discovery.internal/nodes',
          refresh_interval_ms: 15000,
          fallback_cache_ttl_ms: 300000,
          mode: 'replace' as const,
        },
      },
    }
    await assert.rejects(
      startShardedProxy(withDiscovery, { adminListen: false }),
      (err) => err instanceof ConfigError && err.issues.some((i) => i.path === 'cluster.discovery'),
    )
  })
})
