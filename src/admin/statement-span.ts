// OpenTelemetry spans around statement execution, through @opentelemetry/api only: with no SDK
// installed they cost a no-op; with one, each statement is a client span carrying the decision.

import {
  type Context,
  context,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  trace,
} from '@opentelemetry/api'
import type { Classification } from '../core/classify/classification.js'
import type { Decision } from '../core/route/decision.js'

const TRACER_NAME = 'freshet'
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/**
 * Parses a W3C `traceparent` (`00-<trace id>-<parent id>-<flags>`) into a remote span context, or null
 * when it is malformed or all zeros.
 */
export function parseTraceparent(value: string): SpanContext | null {
  const m = TRACEPARENT.exec(value.trim().toLowerCase())
  if (!m || m[1] === 'ff') return null
  const traceId = m[2]!
  const spanId = m[3]!
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return null
  return {
    traceId,
    spanId,
    traceFlags: Number.parseInt(m[4]!, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  }
}

/** The span attributes of a decision (OpenTelemetry database semantic conventions plus freshet's own). */
export function decisionAttributes(decision: Decision): Record<string, string | number> {
  const attrs: Record<string, string | number> = {
    'db.system': 'postgresql',
    'freshet.reason': decision.reason,
  }
  if (decision.target !== null) attrs['freshet.target'] = decision.target
  if (decision.tier !== null) attrs['freshet.tier'] = decision.tier
  if (decision.lagMs !== null) attrs['freshet.lag_ms'] = decision.lagMs
  return attrs
}

/**
 * Runs `fn` inside a client span named after the statement class. The parent is the caller's trace from
 * a sqlcommenter `traceparent` hint when present, else the active span. Errors mark the span failed.
 * @example
 * const res = await withStatementSpan(decision, classification, () => client.query(sql, values))
 */
export function withStatementSpan<T>(
  decision: Decision,
  classification: Pick<Classification, 'kind' | 'hints' | 'fingerprint'>,
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  const tracer = trace.getTracer(TRACER_NAME)
  const parent = parentContext(classification.hints.traceparent)
  const attributes = decisionAttributes(decision)
  if (classification.fingerprint) attributes['freshet.fingerprint'] = classification.fingerprint
  return tracer.startActiveSpan(
    `freshet ${classification.kind}`,
    { kind: SpanKind.CLIENT, attributes },
    parent,
    async (span) => {
      try {
        return await fn(span)
      } catch (err) {
        span.recordException(err as Error)
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message })
        throw err
      } finally {
        span.end()
      }
    },
  )
}

function parentContext(traceparent: string | undefined): Context {
  const active = context.active()
  if (!traceparent) return active
  const remote = parseTraceparent(traceparent)
  return remote ? trace.setSpanContext(active, remote) : active
}
