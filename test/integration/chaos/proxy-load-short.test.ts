// The short load run: 500 clients through the proxy over 10 server connections per node for 20 s, with
// a client dropped abruptly every 200 ms (idle, inside a transaction, during a statement). Nothing may
// fail on the other clients, nothing may be left open afterwards, the heap must not grow.
// The long run is `npm run test:load` (docs/reliability.md, "Load").

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { formatLoadReport, HEAP_GROWTH_LIMIT, runProxyLoad } from '../../load/proxy-load.js'

describe('proxy load (short)', () => {
  it('serves 500 clients with abrupt disconnects: no errors, no leaked server connection or transaction, stable heap', {
    timeout: 120_000,
  }, async () => {
    const report = await runProxyLoad({ durationMs: 20_000, clients: 500 })
    const text = formatLoadReport(report)
    console.log(text)

    assert.equal(report.unexpectedErrors.total, 0, text)
    // the run did something: traffic of every kind, drops of every kind
    for (const [kind, n] of Object.entries(report.ops)) assert.ok(n > 100, `too few ${kind}\n${text}`)
    for (const [kind, n] of Object.entries(report.disconnects)) {
      assert.ok(n >= 5, `too few abrupt disconnects ${kind}\n${text}`)
    }
    // dropped clients' sessions closed; after every client ended: pool idle, no backend busy or in a
    // transaction, every server backend still counted by the pool
    assert.deepEqual(report.leaks, [], text)
    // no row of an abandoned transaction committed; acknowledged writes all there, once
    assert.deepEqual(report.integrity, [], text)
    for (const [node, n] of Object.entries(report.maxServerConnections)) {
      assert.ok(n <= report.maxActive, `${node}: ${n} server connections > max_active\n${text}`)
      assert.ok(n > 0, `${node} served nothing\n${text}`)
    }
    assert.ok(
      !report.heap.exceeded,
      `heap grew over ${HEAP_GROWTH_LIMIT.fraction * 100} % and ${HEAP_GROWTH_LIMIT.bytes / 1024 / 1024} MB\n${text}`,
    )
  })
})
