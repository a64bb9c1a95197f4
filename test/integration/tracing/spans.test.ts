// OpenTelemetry spans from the library and the proxy, recorded by the real SDK (sdk-trace-base with an
// in-memory exporter and the AsyncLocalStorage context manager) against a real primary and replicas:
// routing attributes, parent = the caller's span, sqlcommenter traceparent, errors with their SQLSTATE.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { context, SpanStatusCode, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import pg from 'pg'
import { createPool, type FreshetPool, freshness, withScope } from '../../../src/index.js'
import { configFor, poolReady } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'
import { type ProxyFixture, startProxyFixture } from '../../support/proxy-fixture.js'

const TIERS = {
  tiers: {
    strict: { max_lag_ms: 0 },
    eventual: { max_lag_ms: 60_000, fallback: 'least_lagged' },
    fresh_or_fail: { max_lag_ms: 200, fallback: 'error' },
  },
}
const CALLER_TRACE = '0af7651916cd43dd8448eb211c80319c'
const CALLER_SPAN = 'b7ad6b7169203331'
const TRACEPARENT = `00-${CALLER_TRACE}-${CALLER_SPAN}-01`

describe('OpenTelemetry spans with a registered SDK', () => {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const contextManager = new AsyncLocalStorageContextManager()
  const app = trace.getTracer('app')
  let f: ProxyFixture
  let pool: FreshetPool

  /** freshet's spans finished so far, oldest first. */
  const freshetSpans = (): ReadableSpan[] =>
    exporter.getFinishedSpans().filter((s) => s.instrumentationScope.name === 'freshet')

  /** The one freshet span recorded while `fn` ran. */
  async function spanOf(fn: () => Promise<unknown>): Promise<ReadableSpan> {
    exporter.reset()
    await fn()
    const spans = freshetSpans()
    assert.equal(spans.length, 1, `expected one freshet span, got ${spans.map((s) => s.name).join(', ')}`)
    return spans[0]!
  }

  before(async () => {
    context.setGlobalContextManager(contextManager.enable())
    trace.setGlobalTracerProvider(provider)
    f = await startProxyFixture({ routing: { ...TIERS, unannotated: 'primary' } }, 2, async (cluster) => {
      await cluster.query('primary', 'CREATE TABLE accounts (id int PRIMARY KEY, balance int)')
      await cluster.query('primary', 'INSERT INTO accounts SELECT g, 100 FROM generate_series(1, 10) g')
    })
    pool = createPool(configFor(f.cluster, { routing: TIERS }))
    await poolReady(pool)
  })

  after(async () => {
    await pool?.end()
    await f?.stop()
    trace.disable()
    context.disable()
  })

  describe('library', () => {
    it('a replica read is a child of the caller span, with target, role, tier, reason and lag', async () => {
      let parent: { traceId: string; spanId: string } | undefined
      const span = await spanOf(() =>
        app.startActiveSpan('GET /accounts', async (s) => {
          parent = s.spanContext()
          await freshness('eventual', () => pool.query('SELECT balance FROM accounts WHERE id = $1', [1]))
          s.end()
        }),
      )
      assert.equal(span.name, 'freshet read')
      assert.equal(span.spanContext().traceId, parent!.traceId)
      assert.equal(span.parentSpanContext?.spanId, parent!.spanId)
      const a = span.attributes
      assert.match(String(a['freshet.target']), /^replica_[12]$/)
      assert.equal(a['freshet.role'], 'replica')
      assert.equal(a['freshet.tier'], 'eventual')
      assert.equal(a['freshet.tier_source'], 'context')
      assert.equal(a['freshet.reason'], 'replica')
      assert.equal(typeof a['freshet.lag_ms'], 'number')
      assert.equal(a['db.system'], 'postgresql')
      assert.equal(typeof a['freshet.fingerprint'], 'string')
      assert.equal(span.status.code, SpanStatusCode.UNSET)
    })

    it('a sqlcommenter traceparent in the statement makes the span a child of that remote trace', async () => {
      const span = await spanOf(() =>
        pool.query(`SELECT count(*) FROM accounts /*traceparent='${TRACEPARENT}',freshness='eventual'*/`),
      )
      assert.equal(span.spanContext().traceId, CALLER_TRACE)
      assert.equal(span.parentSpanContext?.spanId, CALLER_SPAN)
      assert.equal(span.parentSpanContext?.isRemote, true)
      assert.equal(span.attributes['freshet.tier'], 'eventual')
      assert.equal(span.attributes['freshet.tier_source'], 'hint')
    })

    it('a traceparent carried in the scope (freshet/http, freshet/messaging) parents spans with no active span', async () => {
      const span = await spanOf(() =>
        withScope(() => pool.query('UPDATE accounts SET balance = balance WHERE id = 2'), {
          traceparent: TRACEPARENT,
        }),
      )
      assert.equal(span.name, 'freshet write')
      assert.equal(span.spanContext().traceId, CALLER_TRACE)
      assert.equal(span.attributes['freshet.target'], 'primary')
      assert.equal(span.attributes['freshet.reason'], 'write')
      assert.equal(span.attributes['freshet.role'], 'primary')
    })

    it('pinned statements of a client transaction each get a span on the pinned node', async () => {
      exporter.reset()
      const client = await pool.connect()
      try {
        await client.query('BEGIN')
        await client.query('SELECT balance FROM accounts WHERE id = 3 FOR UPDATE')
        await client.query('COMMIT')
      } finally {
        client.release()
      }
      const spans = freshetSpans()
      assert.deepEqual(
        spans.map((s) => s.name),
        ['freshet transaction', 'freshet write', 'freshet transaction'], // a locking read is a write,
      )
      for (const s of spans) assert.equal(s.attributes['freshet.target'], 'primary')
      assert.equal(spans[1]!.attributes['freshet.reason'], 'pinned_transaction')
    })

    it('a statement freshet refuses (no replica fresh enough, fallback error) is a failed span with ZF001', async () => {
      await f.cluster.pauseReplay('replica_1')
      await f.cluster.pauseReplay('replica_2')
      try {
        await f.cluster.query('primary', 'UPDATE accounts SET balance = balance + 1 WHERE id = 4')
        await eventually('both replicas lag beyond fresh_or_fail', () =>
          pool.snapshot().every((n) => n.role === 'primary' || (n.staleness_bound_ms ?? 1e9) > 200),
        )
        const span = await spanOf(() =>
          assert.rejects(freshness('fresh_or_fail', () => pool.query('SELECT 1 FROM accounts'))),
        )
        assert.equal(span.status.code, SpanStatusCode.ERROR)
        assert.equal(span.attributes['freshet.reason'], 'fallback_error')
        assert.equal(span.attributes['db.response.status_code'], 'ZF001')
        assert.equal(span.attributes['freshet.target'], undefined)
      } finally {
        await f.cluster.resumeReplay('replica_1')
        await f.cluster.resumeReplay('replica_2')
      }
    })

    it('a PostgreSQL error marks the span failed with its SQLSTATE', async () => {
      const span = await spanOf(() => assert.rejects(pool.query('SELECT * FROM no_such_table')))
      assert.equal(span.status.code, SpanStatusCode.ERROR)
      assert.equal(span.attributes['db.response.status_code'], '42P01')
    })
  })

  describe('proxy', () => {
    it('each statement through the proxy is a span; a sqlcommenter traceparent parents it', async () => {
      const client = new pg.Client({ connectionString: f.url() })
      await client.connect()
      try {
        exporter.reset()
        await client.query(
          `/* FRESHNESS: EVENTUAL */ SELECT balance FROM accounts /*traceparent='${TRACEPARENT}'*/`,
        )
        await client.query('SELECT balance FROM accounts WHERE id = $1', [5]) // extended protocol
        await client.query('UPDATE accounts SET balance = balance WHERE id = 5')
        await assert.rejects(client.query('SELECT * FROM no_such_table'))
      } finally {
        await client.end()
      }
      const spans = freshetSpans()
      assert.equal(spans.length, 4, spans.map((s) => s.name).join(', '))
      const [hinted, extended, write, failed] = spans as [
        ReadableSpan,
        ReadableSpan,
        ReadableSpan,
        ReadableSpan,
      ]
      assert.equal(hinted.spanContext().traceId, CALLER_TRACE)
      assert.equal(hinted.parentSpanContext?.spanId, CALLER_SPAN)
      assert.match(String(hinted.attributes['freshet.target']), /^replica_[12]$/)
      assert.equal(hinted.attributes['freshet.tier'], 'eventual')
      assert.equal(extended.attributes['freshet.reason'], 'unannotated_primary')
      assert.notEqual(extended.spanContext().traceId, CALLER_TRACE)
      assert.equal(write.name, 'freshet write')
      assert.equal(write.attributes['freshet.target'], 'primary')
      assert.equal(failed.status.code, SpanStatusCode.ERROR)
      assert.equal(failed.attributes['db.response.status_code'], '42P01')
      for (const s of spans) assert.ok(s.endTime[0] > 0 || s.endTime[1] > 0, `${s.name} ended`)
    })

    it('a refused statement (fallback error) is a failed span carrying the SQLSTATE the client saw', async () => {
      const client = new pg.Client({ connectionString: f.url() })
      await client.connect()
      await f.cluster.pauseReplay('replica_1')
      await f.cluster.pauseReplay('replica_2')
      try {
        await f.cluster.query('primary', 'UPDATE accounts SET balance = balance + 1 WHERE id = 6')
        await eventually('both replicas lag beyond fresh_or_fail', () =>
          f.engine.snapshot().every((n) => n.role === 'primary' || (n.staleness_bound_ms ?? 1e9) > 200),
        )
        exporter.reset()
        const err = await client.query('/* FRESHNESS: FRESH_OR_FAIL */ SELECT 1').then(
          () => assert.fail('served a read beyond its tier'),
          (e: { code?: string }) => e,
        )
        assert.equal(err.code, 'ZF001')
        const [span] = freshetSpans()
        assert.ok(span, 'no span for the refused statement')
        assert.equal(span.status.code, SpanStatusCode.ERROR)
        assert.equal(span.attributes['db.response.status_code'], 'ZF001')
        assert.equal(span.attributes['freshet.reason'], 'fallback_error')
      } finally {
        await client.end()
        await f.cluster.resumeReplay('replica_1')
        await f.cluster.resumeReplay('replica_2')
      }
    })
  })
})
