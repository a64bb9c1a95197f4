// OpenTelemetry spans around statement execution, through @opentelemetry/api only (a peer dependency, so
// the application's SDK and freshet share one API): with no SDK registered they are no-ops; with one,
// each statement is a client span carrying the routing decision.

import {
  type Attributes,
  type Context,
  context,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  type SpanOptions,
  SpanStatusCode,
  TraceFlags,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api'
import type { Classification } from '../core/classify/classification.js'
import { isFreshetError } from '../core/errors.js'
import type { Decision } from '../core/route/decision.js'

const TRACER_NAME = 'freshet'
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/
const ALL_ZEROS = /^0+$/
const CLIENT_SPAN: SpanOptions = Object.freeze({ kind: SpanKind.CLIENT })

type SpanSource = Pick<Classification, 'kind' | 'hints' | 'fingerprint'>

let cached: { provider: TracerProvider; tracer: Tracer } | null = null

/** freshet's tracer, looked up again only when the global provider changes (an SDK registered later). */
function tracer(): Tracer {
  const provider = trace.getTracerProvider()
  if (cached?.provider !== provider) cached = { provider, tracer: provider.getTracer(TRACER_NAME) }
  return cached.tracer
}

/**
 * Parses a W3C `traceparent` (`00-<trace id>-<parent id>-<flags>`) into a remote span context, or null
 * when it is malformed or all zeros.
 */
export function parseTraceparent(value: string): SpanContext | null {
  const m = TRACEPARENT.exec(value.trim().toLowerCase())
  if (!m || m[1] === 'ff') return null
  const traceId = m[2]!
  const spanId = m[3]!
  if (ALL_ZEROS.test(traceId) || ALL_ZEROS.test(spanId)) return null
  return {
    traceId,
    spanId,
    traceFlags: Number.parseInt(m[4]!, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  }
}

/**
 * The span attributes of a decision: OpenTelemetry's database conventions plus freshet's own
 * (`freshet.target`, `freshet.role`, `freshet.tier`, `freshet.reason`, `freshet.lag_ms`, ...).
 */
export function decisionAttributes(decision: Decision): Record<string, string | number> {
  const attrs: Record<string, string | number> = {
    'db.system': 'postgresql',
    'db.system.name': 'postgresql',
    'freshet.reason': decision.reason,
  }
  if (decision.target !== null) attrs['freshet.target'] = decision.target
  if (decision.role !== null) attrs['freshet.role'] = decision.role
  if (decision.tier !== null) attrs['freshet.tier'] = decision.tier
  if (decision.tierSource !== null) attrs['freshet.tier_source'] = decision.tierSource
  if (decision.lagMs !== null) attrs['freshet.lag_ms'] = decision.lagMs
  if (decision.stalenessBoundMs !== null) attrs['freshet.staleness_bound_ms'] = decision.stalenessBoundMs
  if (decision.minLsn !== null) attrs['freshet.min_lsn'] = decision.minLsn
  if (decision.wouldBe) attrs['freshet.would_be_target'] = decision.wouldBe.target
  return attrs
}

function spanAttributes(decision: Decision, classification: SpanSource): Attributes {
  const attrs: Attributes = decisionAttributes(decision)
  attrs['freshet.statement_class'] = classification.kind
  if (classification.fingerprint) attrs['freshet.fingerprint'] = classification.fingerprint
  return attrs
}

/**
 * The context a statement's span starts in. The caller's trace, most specific first: a sqlcommenter
 * `traceparent` hint in the statement, else the active span (an instrumented HTTP server, a user span),
 * else `fallback` (a traceparent that freshet/http or freshet/messaging read into the scope), else none.
 */
export function parentContext(hint: string | undefined, fallback: string | undefined): Context {
  const active = context.active()
  const carried = hint ?? (trace.getSpan(active) === undefined ? fallback : undefined)
  if (carried === undefined) return active
  const remote = parseTraceparent(carried)
  return remote ? trace.setSpanContext(active, remote) : active
}

/**
 * Runs `fn` inside an active client span named after the statement class (`freshet read`, `freshet
 * write`, ...), so instrumentation below (pg's own, if installed) nests under it. Errors, including a
 * decision that cannot be served (ZF001), mark the span failed.
 * @example
 * const res = await withStatementSpan(decision, classification, () => client.query(sql, values))
 */
export function withStatementSpan<T>(
  decision: Decision,
  classification: SpanSource,
  fn: (span: Span) => Promise<T>,
  fallbackTraceparent?: string,
): Promise<T> {
  const parent = parentContext(classification.hints.traceparent, fallbackTraceparent)
  return tracer().startActiveSpan(`freshet ${classification.kind}`, CLIENT_SPAN, parent, async (span) => {
    if (span.isRecording()) span.setAttributes(spanAttributes(decision, classification))
    try {
      return await fn(span)
    } catch (err) {
      failSpan(span, err)
      throw err
    } finally {
      span.end()
    }
  })
}

/**
 * Starts (without activating) a statement span for code that is not inside an async scope, such as the
 * proxy, which ends it when the server answers. Attributes are only built when the span records, so
 * with no SDK this costs one no-op span object.
 */
export function startStatementSpan(decision: Decision, classification: SpanSource): Span {
  const hint = classification.hints.traceparent
  const remote = hint === undefined ? null : parseTraceparent(hint)
  const parent = remote === null ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, remote)
  const span = tracer().startSpan(`freshet ${classification.kind}`, CLIENT_SPAN, parent)
  if (span.isRecording()) span.setAttributes(spanAttributes(decision, classification))
  return span
}

/** Marks a span failed with an error (a PostgreSQL SQLSTATE is kept as `db.response.status_code`). */
export function failSpan(span: Span, err: unknown): void {
  if (!span.isRecording()) return
  const e = err instanceof Error ? err : new Error(String(err))
  const code = isFreshetError(e) ? e.sqlState : (e as { code?: unknown }).code
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code))
    span.setAttribute('db.response.status_code', code)
  span.recordException(e)
  span.setStatus({ code: SpanStatusCode.ERROR, message: e.message })
}
