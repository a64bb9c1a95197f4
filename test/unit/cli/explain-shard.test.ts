// `freshet explain --config sharded.yaml SQL`: the shard decision (shard, source, key) or the refusal,
// through the real command with a config file.

import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { run as explain } from '../../../src/cli/explain.js'
import { hashBucket } from '../../../src/core/shard/shard-key.js'

const dir = mkdtempSync(join(tmpdir(), 'freshet-explain-shard-'))
const file = join(dir, 'sharded.json')
writeFileSync(
  file,
  JSON.stringify({
    shards: [
      { name: 'shard_0', primary: { name: 's0p', url: 'postgres://app@127.0.0.1:1/main' } },
      { name: 'shard_1', primary: { name: 's1p', url: 'postgres://app@127.0.0.1:2/main' } },
    ],
    sharding: {
      tables: { orders: { key: 'customer_id' } },
      map: [
        { partition_key_range: '0-511', target_backend: 'shard_0' },
        { partition_key_range: '512-1023', target_backend: 'shard_1' },
      ],
      aggregate: { name: 'federated', url: 'postgres://app@127.0.0.1:3/main' },
    },
  }),
)
const shardOf = (k: number) => (hashBucket(BigInt(k), 'integer', 1024) < 512 ? 'shard_0' : 'shard_1')

async function captured(argv: string[]): Promise<{ code: number; out: string }> {
  const out: string[] = []
  const log = console.log
  console.log = (...a: unknown[]) => out.push(a.join(' '))
  try {
    return { code: await explain(['--config', file, ...argv]), out: out.join('\n') }
  } finally {
    console.log = log
  }
}

describe('freshet explain with a sharded config', () => {
  after(() => rmSync(dir, { recursive: true, force: true }))
  it('a keyed read names its shard, source and key', async () => {
    const r = await captured(['SELECT * FROM orders WHERE customer_id = 42'])
    assert.equal(r.code, 0)
    assert.match(r.out, new RegExp(`shard: +${shardOf(42)} \\(source: statement, key 42\\)`))
  })
  it('a cross-shard read goes to the aggregate node, counted by table', async () => {
    const r = await captured(['--json', 'SELECT count(*) FROM orders'])
    assert.equal(r.code, 0)
    assert.deepEqual(JSON.parse(r.out).shard, {
      shard: '@aggregate',
      source: 'cross_shard',
      crossShardTables: ['orders'],
    })
  })
  it('a write spanning shards is refused with ZF003 (exit 3)', async () => {
    const r = await captured(['UPDATE orders SET total = 0'])
    assert.equal(r.code, 3)
    assert.match(r.out, /refused: +ZF003 freshet: a write spanning shards is refused/)
  })
})
