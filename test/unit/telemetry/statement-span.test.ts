// OpenTelemetry statement spans through @opentelemetry/api, recorded by the real SDK (in-memory exporter):
// attributes, which parent wins (hint, active span, scope traceparent), error status with SQLSTATE.

import assert from 'node:assert/strict'
import { after, before, beforeEach, describe, it } from 'node:test'
import { context, SpanStatusCode, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import { NoEligibleNodeError } from '../../../src/core/errors.js'
import type { Decision } from '../../../src/core/route/decision.js'
import {
  parseTraceparent,
  startStatementSpan,
  withStatementSpan,
} from '../../../src/telemetry/statement-span.js'

const HINT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const HINT_SPAN = '00f067aa0ba902b7'
const HINT = `00-${HINT_TRACE}-${HINT_SPAN}-01`
const SCOPE_TRACE = '0af7651916cd43dd8448eb211c80319c'
const SCOPE = `00-${SCOPE_TRACE}-b7ad6b7169203331-01`

const decision = {
  target: 'replica_1',
  role: 'replica',
  tier: 'near_rt',
  tierSource: 'hint',
  reason: 'replica',
  lagMs: 120,
  minLsn: null,
} as Decision

describe('statement spans', () => {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const last = (): ReadableSpan => exporter.getFinishedSpans().at(-1)!

  before(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
    trace.setGlobalTracerProvider(provider)
  })
  beforeEach(() => exporter.reset())
  after(() => {
    trace.disable()
    context.disable()
  })

  it('parses traceparent and refuses malformed ones', () => {
    assert.deepEqual(parseTraceparent(HINT), {
      traceId: HINT_TRACE,
      spanId: HINT_SPAN,
      traceFlags: 1,
      isRemote: true,
    })
    assert.equal(parseTraceparent(`00-${'0'.repeat(32)}-${HINT_SPAN}-01`), null)
    assert.equal(parseTraceparent(`ff-${HINT_TRACE}-${HINT_SPAN}-01`), null, 'version ff is invalid')
    assert.equal(parseTraceparent('garbage'), null)
  })

  it('records the decision as attributes of a client span named after the statement class', async () => {
    const value = await withStatementSpan(
      decision,
      { kind: 'read', fingerprint: 'abc123', hints: {} },
      async () => 42,
    )
    assert.equal(value, 42)
    const span = last()
    assert.equal(span.name, 'freshet read')
    assert.deepEqual(span.attributes, {
      'db.system': 'postgresql',
      'db.system.name': 'postgresql',
      'freshet.reason': 'replica',
      'freshet.target': 'replica_1',
      'freshet.role': 'replica',
      'freshet.tier': 'near_rt',
      'freshet.tier_source': 'hint',
      'freshet.lag_ms': 120,
      'freshet.statement_class': 'read',
      'freshet.fingerprint': 'abc123',
    })
    assert.equal(span.parentSpanContext, undefined, 'no caller: a root span')
  })

  it('parent: the statement hint beats the active span, which beats the scope traceparent', async () => {
    const app = trace.getTracer('app')
    await app.startActiveSpan('request', async (request) => {
      await withStatementSpan(decision, { kind: 'read', hints: { traceparent: HINT } }, async () => {}, SCOPE)
      assert.equal(last().spanContext().traceId, HINT_TRACE)
      assert.equal(last().parentSpanContext?.spanId, HINT_SPAN)

      await withStatementSpan(decision, { kind: 'read', hints: {} }, async () => {}, SCOPE)
      assert.equal(last().spanContext().traceId, request.spanContext().traceId)
      assert.equal(last().parentSpanContext?.spanId, request.spanContext().spanId)
      request.end()
    })
    await withStatementSpan(decision, { kind: 'read', hints: {} }, async () => {}, SCOPE)
    assert.equal(last().spanContext().traceId, SCOPE_TRACE, 'no active span: the scope traceparent')
    await withStatementSpan(decision, { kind: 'read', hints: { traceparent: 'broken' } }, async () => {})
    assert.equal(last().parentSpanContext, undefined, 'a malformed hint is ignored')
  })

  it('the span is active inside fn, so spans below it nest', async () => {
    await withStatementSpan(decision, { kind: 'read', hints: {} }, async (outer) => {
      trace.getTracer('pg').startSpan('pg.query').end()
      assert.equal(last().parentSpanContext?.spanId, outer.spanContext().spanId)
    })
  })

  it('errors mark the span failed, with the SQLSTATE of a PostgreSQL or freshet error', async () => {
    const pgError = Object.assign(new Error('relation "x" does not exist'), { code: '42P01' })
    await assert.rejects(
      withStatementSpan(decision, { kind: 'read', hints: {} }, async () => {
        throw pgError
      }),
    )
    assert.equal(last().status.code, SpanStatusCode.ERROR)
    assert.equal(last().attributes['db.response.status_code'], '42P01')
    assert.equal(last().events[0]?.name, 'exception')

    await assert.rejects(
      withStatementSpan(decision, { kind: 'read', hints: {} }, async () => {
        throw new NoEligibleNodeError('FRESHET_NO_ELIGIBLE_NODE', 'no replica within near_rt')
      }),
    )
    assert.equal(last().attributes['db.response.status_code'], 'ZF001')
  })

  it('startStatementSpan (the proxy) is not active and takes its parent from the hint only', () => {
    const span = startStatementSpan(decision, { kind: 'write', hints: { traceparent: HINT } })
    assert.equal(trace.getActiveSpan(), undefined)
    span.end()
    assert.equal(last().name, 'freshet write')
    assert.equal(last().spanContext().traceId, HINT_TRACE)
  })
})
