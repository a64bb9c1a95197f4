import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConfigSchema } from '../../../../src/core/config/schema.js'
import { FallbackLimiter } from '../../../../src/core/tiers/fallback-limiter.js'
import { TierResolver } from '../../../../src/core/tiers/tier-resolver.js'
import { TokenBucket } from '../../../../src/core/tiers/token-bucket.js'

const base = { cluster: { primary: { name: 'primary', url: 'postgres://p' } } }

describe('TokenBucket', () => {
  it('starts full, empties, and refills at the rate on the injected clock', () => {
    const b = new TokenBucket(2, 2, 0)
    assert.equal(b.take(0), true)
    assert.equal(b.take(0), true)
    assert.equal(b.take(0), false)
    assert.equal(b.take(499), false)
    assert.equal(b.take(500), true)
    assert.equal(b.take(500), false)
    assert.equal(b.available(10_000), 2, 'never above capacity')
  })
  it('a clock stepping backwards refills nothing', () => {
    const b = new TokenBucket(1, 1, 1000)
    assert.equal(b.take(1000), true)
    assert.equal(b.take(0), false)
    assert.equal(b.take(1999), false)
    assert.equal(b.take(2000), true)
  })
})

describe('FallbackLimiter', () => {
  it('caps only tiers with a fallback_rate_limit', () => {
    const config = ConfigSchema.parse({
      ...base,
      routing: {
        tiers: {
          near_rt: { max_lag_ms: 500, fallback_rate_limit: 3 },
          eventual: { max_lag_ms: 60000 },
        },
      },
    })
    const l = new FallbackLimiter(config.routing.tiers, 0)
    assert.deepEqual(
      Array.from({ length: 4 }, () => l.tryFallback('near_rt', 0)),
      [true, true, true, false],
    )
    assert.equal(l.tryFallback('near_rt', 334), true)
    for (let i = 0; i < 100; i++) assert.equal(l.tryFallback('eventual', 0), true)
    assert.equal(l.tryFallback('no_such_tier', 0), true)
  })
})

describe('TierResolver', () => {
  const config = ConfigSchema.parse({
    ...base,
    routing: { unannotated: 'eventual' },
    domains: {
      ledger_entries: 'strict',
      'public.orders': 'near_rt',
      'sales.Leads': 'eventual',
      users: 'EVENTUAL',
    },
  })
  const tiers = new TierResolver(config)

  it('looks tiers up by name, case-insensitively', () => {
    assert.equal(tiers.byName('near_rt')?.maxLagMs, 500)
    assert.equal(tiers.byName('NEAR_RT')?.name, 'near_rt')
    assert.equal(tiers.byName('strict')?.strict, true)
    assert.equal(tiers.byName('nope'), undefined)
    assert.deepEqual(tiers.names, ['strict', 'near_rt', 'eventual'])
  })
  it('resolves routing.unannotated to a tier', () => {
    assert.equal(typeof tiers.unannotated === 'object' && tiers.unannotated.name, 'eventual')
  })
  const rows: [string[], string | null, string | null][] = [
    [['users'], 'eventual', 'users'],
    [['public.users'], 'eventual', 'users'],
    [['orders'], 'near_rt', 'public.orders'],
    [['public.orders'], 'near_rt', 'public.orders'],
    [['sales.leads'], 'eventual', 'sales.Leads'],
    [['leads'], null, null],
    [['users', 'orders', 'ledger_entries'], 'strict', 'ledger_entries'],
    [['users', 'orders'], 'near_rt', 'public.orders'],
    [['other'], null, null],
    [['orders', 'other'], null, null],
    [['pg_catalog.pg_class', 'information_schema.tables', 'orders'], 'near_rt', 'public.orders'],
    [[], null, null],
  ]
  for (const [tables, tier, table] of rows) {
    it(`strictest domain of [${tables.join(', ')}] is ${tier ?? 'none'}`, () => {
      const m = tiers.strictestDomain(tables)
      assert.equal(m?.tier.name ?? null, tier)
      assert.equal(m?.table ?? null, table)
    })
  }
})
