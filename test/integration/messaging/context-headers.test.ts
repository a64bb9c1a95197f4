// freshet/messaging without a broker: what injectContext writes and withMessageContext reads back.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { context, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base'
import { currentContext, freshness, readYourWrites, withPrimary, withScope } from '../../../src/index.js'
import { injectContext, withMessageContext } from '../../../src/library/messaging/index.js'

const TRACE = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'

describe('freshet/messaging headers', () => {
  it('injects the scope tier, the later token and traceparent; nothing outside a scope', () => {
    assert.deepEqual(injectContext(), {})
    const headers = withScope(
      () =>
        freshness('near_rt', () =>
          readYourWrites('0/10', () => {
            currentContext()!.writes.tokens.record('0/2A') // as after a write in this scope
            return injectContext({ 'content-type': 'application/json' })
          }),
        ),
      { traceparent: TRACE },
    )
    assert.deepEqual(headers, {
      'content-type': 'application/json',
      'x-db-route-hint': 'near_rt',
      'x-primary-lsn': '0/2A',
      traceparent: TRACE,
    })
    assert.equal(withPrimary(() => injectContext())['x-db-route-hint'], 'primary')
    // Outside any scope the pool's own token (writes made outside scopes) is used.
    assert.deepEqual(injectContext({}, { pool: { lastWriteToken: () => '1/0' } }), { 'x-primary-lsn': '1/0' })
  })

  it('runs the handler in the scope the headers describe, in any key case and value shape', async () => {
    const seen = await withMessageContext(
      { 'X-DB-Route-Hint': Buffer.from('EVENTUAL'), 'X-Primary-LSN': ['0/3000148'], TraceParent: TRACE },
      async () => {
        await Promise.resolve()
        return currentContext()
      },
    )
    assert.equal(seen?.tier, 'eventual')
    assert.equal(seen?.minLsn, '0/3000148')
    assert.equal(seen?.traceparent, TRACE)
    assert.equal(seen?.writes.tokens.token, undefined, 'a fresh scope: its own writes start empty')
    assert.equal(seen?.writes.tokens.lastWriteAt, undefined)
    assert.equal(seen?.writes.tables, undefined)

    // NATS-style headers: a get(name) map that answers '' for a missing key.
    const nats = new Map([['x-db-route-hint', 'primary']])
    const viaGet = withMessageContext({ get: (k: string) => nats.get(k) ?? '' }, () => currentContext())
    assert.equal(viaGet?.primary, true)
    assert.equal(viaGet?.minLsn, undefined)
  })

  it('ignores bad values with a debug message, never throws', () => {
    const debug: string[] = []
    const store = withMessageContext(
      { 'x-db-route-hint': 'turbo', 'x-primary-lsn': 'yesterday', traceparent: 'nope' },
      () => currentContext(),
      { tiers: ['strict', 'near_rt', 'eventual'], debug: (m) => debug.push(m) },
    )
    assert.equal(store?.tier, undefined)
    assert.equal(store?.minLsn, undefined)
    assert.equal(store?.traceparent, undefined)
    assert.equal(debug.length, 3)
    assert.equal(
      withMessageContext(null, () => currentContext()?.tier),
      undefined,
    )
    // Hints can be switched off for untrusted producers; tokens still apply.
    const noHints = withMessageContext(
      { 'x-db-route-hint': 'eventual', 'x-primary-lsn': '0/1' },
      () => currentContext(),
      {
        hints: false,
      },
    )
    assert.equal(noHints?.tier, undefined)
    assert.equal(noHints?.minLsn, '0/1')
  })

  it("injects the producer's active OpenTelemetry span as traceparent, over the one the scope received", async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
    trace.setGlobalTracerProvider(new BasicTracerProvider())
    try {
      await trace.getTracer('producer').startActiveSpan('publish', async (span) => {
        const headers = withScope(() => injectContext(), { traceparent: TRACE })
        const { traceId, spanId } = span.spanContext()
        assert.equal(headers.traceparent, `00-${traceId}-${spanId}-01`)
        span.end()
      })
      // no active span: the scope's own
      assert.equal(withScope(() => injectContext(), { traceparent: TRACE }).traceparent, TRACE)
    } finally {
      trace.disable()
      context.disable()
    }
  })
})
