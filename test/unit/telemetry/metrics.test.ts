// Metrics: decisions counted with the expected labels, gauges read on scrape, explain uncounted, and
// every metric the ops files (alerts, Grafana) use exists in the registry.

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { before, describe, it } from 'node:test'
import { parse as parseYaml } from 'yaml'
import { Classifier } from '../../../src/core/classify/classifier.js'
import { validateConfig } from '../../../src/core/config/parse-config.js'
import { IDLE_SESSION } from '../../../src/core/route/routing-context.js'
import { ShardMap } from '../../../src/core/shard/shard-map.js'
import { RoutingEngine } from '../../../src/routing/routing-engine.js'
import { ShardedRouting } from '../../../src/routing/sharded-routing.js'
import { FreshetMetrics, METRIC_NAMES } from '../../../src/telemetry/metrics.js'

function engineFor(): RoutingEngine {
  return new RoutingEngine(
    validateConfig({
      version: 7,
      cluster: {
        primary: { name: 'primary', url: 'postgres://127.0.0.1:1/x' },
        replicas: [{ name: 'replica_1', url: 'postgres://127.0.0.1:2/x' }],
      },
      routing: { unannotated: 'primary' },
    }),
  )
}

/** Metric names used in PromQL expressions: identifiers followed by `{`, `[`, `)` or an operator, minus functions. */
function metricNamesIn(expr: string): string[] {
  const noRanges = expr.replace(/\[[^\]]*\]/g, '')
  const words = noRanges.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? []
  const notMetrics = new Set([
    'sum',
    'rate',
    'increase',
    'max',
    'min',
    'avg',
    'by',
    'without',
    'histogram_quantile',
    'le',
    'on',
    'and',
    'or',
    'unless',
    'humanizeDuration',
    'count',
    'irate',
    'offset',
    'bool',
  ])
  // label names inside {...} and by (...) lists are not metric names
  const stripped = noRanges.replace(/\{[^}]*\}/g, '{}').replace(/\b(by|without)\s*\([^)]*\)/g, '')
  const inStripped = new Set(stripped.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? [])
  return words.filter((w) => inStripped.has(w) && !notMetrics.has(w))
}

describe('metrics', () => {
  before(() => Classifier.loadParser())

  it('counts decisions by tier, target and reason; unannotated reads; latency; staleness', async () => {
    const engine = engineFor()
    const metrics = new FreshetMetrics()
    metrics.attachEngine(engine, () => ({
      primary: { total: 3, idle: 2, waiting: 0, active: 1 },
      replica_1: { total: 1, idle: 1, waiting: 4, active: 0 },
    }))
    engine.decide(engine.classify('SELECT 1'), IDLE_SESSION, {})
    engine.decide(engine.classify('INSERT INTO t VALUES (1)'), IDLE_SESSION, {})
    engine.decide(engine.classify('/* FRESHNESS: NEAR_RT */ SELECT 1'), IDLE_SESSION, {})
    metrics.uncounted(() => engine.decide(engine.classify('UPDATE t SET a = 1'), IDLE_SESSION, {}))
    const text = await metrics.metrics()
    assert.match(
      text,
      /routing_decisions_total\{tier="none",target="primary",reason="unannotated_primary"\} 1/,
    )
    assert.match(text, /routing_decisions_total\{tier="none",target="primary",reason="write"\} 1/)
    // no replica has a reading: near_rt falls back to the primary
    assert.match(
      text,
      /routing_decisions_total\{tier="near_rt",target="primary",reason="fallback_primary"\} 1/,
    )
    assert.match(text, /routing_fallback_total\{tier="near_rt"\} 1/)
    assert.match(text, /^unannotated_reads_total 1$/m)
    assert.match(text, /^routing_decision_latency_seconds_count 3$/m)
    assert.match(text, /routing_decision_latency_seconds_bucket\{le="0.000001"\}/)
    assert.match(text, /read_staleness_seconds_count\{tier="near_rt"\} 1/)
    assert.match(text, /^config_version 7$/m)
    assert.match(text, /pool_connections\{host="primary",state="active"\} 1/)
    assert.match(text, /pool_connections\{host="replica_1",state="idle"\} 1/)
    assert.match(text, /pool_waiting\{host="replica_1"\} 4/)
    assert.match(text, /circuit_breaker_open\{host="replica_1"\} 0/)
    assert.match(text, /replica_eligible\{host="replica_1",tier="eventual"\} 0/)
    assert.doesNotMatch(text, /reason="write"\} 2/, 'uncounted decisions stay out')
    assert.match(text, /^replica_lag_seconds\{host="primary"\} 0$/m)
  })

  it('read_staleness_seconds records the staleness bound of each read; the offload ratio is the replica share', async () => {
    const engine = engineFor()
    const metrics = new FreshetMetrics()
    metrics.attachEngine(engine)
    const c = engine.classify('/* FRESHNESS: NEAR_RT */ SELECT 1')
    const base = engine.decide(c, IDLE_SESSION, {}, { dryRun: true }).decision
    const onReplica = { ...base, target: 'replica_1', role: 'replica' as const, reason: 'replica' as const }
    // lagMs (the last reading) is small; the bound at dispatch is what a user can rely on
    engine.emit('decision', { ...onReplica, lagMs: 5, stalenessBoundMs: 180 }, c)
    engine.emit('decision', { ...onReplica, lagMs: 5, stalenessBoundMs: 320 }, c)
    engine.emit('decision', { ...onReplica, lagMs: 5, stalenessBoundMs: 600 }, c) // e.g. ROUTE_TO
    engine.emit('decision', { ...base, stalenessBoundMs: 0 }, c) // the fallback to the primary
    const text = await metrics.metrics()
    assert.match(text, /read_staleness_seconds_sum\{tier="near_rt"\} 1\.1$/m)
    assert.match(text, /read_staleness_seconds_bucket\{le="0.25",tier="near_rt"\} 2$/m)
    assert.match(text, /consistency_violations_total\{tier="near_rt"\} 1$/m)
    assert.match(text, /routing_reads_total\{tier="near_rt",role="replica"\} 3$/m)
    assert.match(text, /routing_reads_total\{tier="near_rt",role="primary"\} 1$/m)
    assert.match(text, /replica_offload_ratio\{tier="near_rt"\} 0\.75$/m)
    assert.deepEqual(metrics.offload(), { near_rt: { reads: 4, replica: 3 } })
  })

  it('exposes proxy counters and controls changes', async () => {
    const engine = engineFor()
    const metrics = new FreshetMetrics()
    metrics.attachEngine(engine)
    metrics.backendError('replica_1')
    metrics.backendFailover()
    metrics.observeProxyRoutingLatency(0.00002)
    engine.setControls({ disable_replica_pools: true })
    engine.setControls({ disable_replica_pools: true })
    const text = await metrics.metrics()
    assert.match(text, /proxy_backend_errors_total\{backend="replica_1"\} 1/)
    assert.match(text, /^proxy_backend_failover_total 1$/m)
    assert.match(text, /^proxy_routing_latency_seconds_count 1$/m)
    assert.match(text, /freshet_controls_changes_total\{control="disable_replica_pools"\} 1/)
  })

  it('sharded: decisions by shard and source, cross-shard statements by table (refused too), the map version', async () => {
    const node = (name: string, port: number) => ({ name, url: `postgres://127.0.0.1:${port}/x` })
    const routing = new ShardedRouting(
      validateConfig({
        shards: [
          { name: 'shard_0', primary: node('s0_primary', 1) },
          { name: 'shard_1', primary: node('s1_primary', 2) },
        ],
        sharding: {
          tables: { orders: { key: 'customer_id' } },
          map: [
            { partition_key_range: '0-511', target_backend: 'shard_0' },
            { partition_key_range: '512-1023', target_backend: 'shard_1' },
          ],
          aggregate: node('federated', 3),
        },
      }),
    )
    const metrics = new FreshetMetrics()
    metrics.attachEngine(routing)
    const decide = (sql: string, params?: unknown[]) =>
      routing.decide(routing.classify(sql), IDLE_SESSION, {}, { sql, key: params ? { params } : {} })
    decide('/*+ ROUTE_TO: shard_1 */ SELECT 1')
    decide('/*+ ROUTE_TO: shard_1 */ SELECT 2')
    const keyed = decide('SELECT * FROM orders WHERE customer_id = $1', [7])
    decide('SELECT count(*) FROM orders')
    assert.throws(() => decide('DELETE FROM orders'))
    // a dry run (explain) counts nothing
    routing.decide(
      routing.classify('SELECT count(*) FROM orders'),
      IDLE_SESSION,
      {},
      {
        sql: 'SELECT count(*) FROM orders',
        dryRun: true,
      },
    )
    const { map } = ShardMap.build(
      { method: 'hash', buckets: 1024, keyType: 'integer' },
      [{ partition_key_range: '0-1023', target_backend: 'shard_0' }],
      routing.shardNames,
    )
    routing.setMap(map!, 5)
    const text = await metrics.metrics()
    assert.match(text, /shard_decisions_total\{shard="shard_1",source="route_to"\} 2/)
    assert.match(
      text,
      new RegExp(`shard_decisions_total\\{shard="${keyed.shard.shard}",source="statement"\\} 1`),
    )
    assert.match(text, /shard_decisions_total\{shard="@aggregate",source="cross_shard"\} 1/)
    assert.match(text, /cross_shard_statements_total\{table="orders"\} 2/)
    assert.match(text, /^routing_map_version 5$/m)
    // an unsharded engine has no map: 0
    const plain = new FreshetMetrics()
    plain.attachEngine(engineFor())
    assert.match(await plain.metrics(), /^routing_map_version 0$/m)
  })

  it('every metric name the ops files use exists in the registry', async () => {
    const metrics = new FreshetMetrics()
    const registered = new Set(
      (await metrics.registry.getMetricsAsJSON()).flatMap((m) =>
        String(m.type) === 'histogram'
          ? [m.name, `${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`]
          : [m.name],
      ),
    )
    for (const name of METRIC_NAMES) assert.ok(registered.has(name), `${name} registered`)
    const exprs: string[] = []
    const alerts = parseYaml(readFileSync('ops/prometheus-alerts.yaml', 'utf8')) as {
      groups: { rules: { alert: string; expr: string }[] }[]
    }
    for (const g of alerts.groups) for (const r of g.rules) exprs.push(r.expr)
    const grafana = JSON.parse(readFileSync('ops/grafana-dashboard.json', 'utf8')) as {
      panels: { targets: { expr: string }[] }[]
    }
    for (const p of grafana.panels) for (const t of p.targets) exprs.push(t.expr)
    assert.ok(exprs.length > 20)
    const used = new Set(exprs.flatMap(metricNamesIn))
    for (const name of used)
      assert.ok(registered.has(name), `ops files use ${name}, which freshet does not export`)
    for (const must of [
      'replica_lag_seconds',
      'routing_fallback_total',
      'circuit_breaker_open',
      'consistency_violations_total',
    ]) {
      assert.ok(used.has(must), `alerts cover ${must}`)
    }
  })
})
