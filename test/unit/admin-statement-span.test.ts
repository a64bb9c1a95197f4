// OpenTelemetry statement spans through @opentelemetry/api with a recording test tracer: attributes,
// parent from a sqlcommenter traceparent, error status.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type Context, type Span, type SpanOptions, type Tracer, trace } from '@opentelemetry/api'
import { parseTraceparent, withStatementSpan } from '../../src/admin/statement-span.js'
import type { Decision } from '../../src/core/route/decision.js'

interface Recorded {
  name: string
  options: SpanOptions
  parent: { traceId: string; spanId: string } | undefined
  ended: boolean
  status?: { code: number }
}

function recordingTracer(spans: Recorded[]): Tracer {
  const start = (name: string, options: SpanOptions = {}, ctx?: Context): Span => {
    const parent = ctx ? trace.getSpanContext(ctx) : undefined
    const rec: Recorded = { name, options, parent, ended: false }
    spans.push(rec)
    const span = trace.wrapSpanContext({ traceId: '1'.repeat(32), spanId: '2'.repeat(16), traceFlags: 1 })
    return Object.assign(Object.create(span), {
      end: () => {
        rec.ended = true
      },
      setStatus: (s: { code: number }) => {
        rec.status = s
        return span
      },
      recordException: () => {},
    }) as Span
  }
  return {
    startSpan: start,
    startActiveSpan: ((name: string, options: SpanOptions, ctx: Context, fn: (s: Span) => unknown) =>
      fn(start(name, options, ctx))) as Tracer['startActiveSpan'],
  }
}

const decision = {
  target: 'replica_1',
  role: 'replica',
  tier: 'near_rt',
  reason: 'replica',
  lagMs: 120,
} as Decision

describe('statement spans', () => {
  it('parses traceparent and refuses malformed ones', () => {
    const sc = parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')
    assert.deepEqual(sc, {
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      traceFlags: 1,
      isRemote: true,
    })
    assert.equal(parseTraceparent('00-00000000000000000000000000000000-00f067aa0ba902b7-01'), null)
    assert.equal(parseTraceparent('garbage'), null)
  })

  it('records decision attributes, a traceparent parent, and errors', async () => {
    const spans: Recorded[] = []
    const tracer = recordingTracer(spans)
    trace.setGlobalTracerProvider({ getTracer: () => tracer })
    try {
      const value = await withStatementSpan(
        decision,
        {
          kind: 'read',
          fingerprint: 'abc123',
          hints: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
        },
        async () => 42,
      )
      assert.equal(value, 42)
      assert.equal(spans[0]!.name, 'freshet read')
      assert.deepEqual(spans[0]!.options.attributes, {
        'db.system': 'postgresql',
        'freshet.reason': 'replica',
        'freshet.target': 'replica_1',
        'freshet.tier': 'near_rt',
        'freshet.lag_ms': 120,
        'freshet.fingerprint': 'abc123',
      })
      assert.equal(spans[0]!.parent?.traceId, '4bf92f3577b34da6a3ce929d0e0e4736')
      assert.equal(spans[0]!.parent?.spanId, '00f067aa0ba902b7')
      assert.ok(spans[0]!.ended)

      await assert.rejects(
        withStatementSpan(decision, { kind: 'write', hints: {} }, async () => {
          throw new Error('boom')
        }),
        /boom/,
      )
      assert.equal(spans[1]!.parent, undefined, 'no traceparent, no active span: a root span')
      assert.equal(spans[1]!.status?.code, 2)
      assert.ok(spans[1]!.ended)
    } finally {
      trace.disable()
    }
  })
})
