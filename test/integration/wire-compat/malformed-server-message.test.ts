// A server message freshet cannot handle (a RowDescription whose field count runs past its length, a
// length field below the minimum) ends that one client's session: a FATAL naming freshet, the client
// closed, the server connection closed rather than reused, the proxy and its other clients unaffected.
// Before, the failure went down the "lost connection" path: the client could wait forever (nothing
// answered its statement when the session had moved on) or went on on a connection in unknown state.
// The bad bytes come from a relay between the proxy and the real primary that rewrites one message.
// The same relay resets the connection under a batch ended by Flush: that client is closed (08006),
// where before nothing answered it.

import assert from 'node:assert/strict'
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type pg from 'pg'
import { bind, decodeErrorFields, execute, FLUSH, parse, SYNC } from '../../../src/protocol/index.js'
import { eventually } from '../../support/eventually.js'
import { type CompatFixture, startCompatFixture, watchedClient } from './compat-fixture.js'
import { RawClient } from './raw-client.js'

// every message: 1 byte code, then int32 length that counts itself but not the code
const HEADER_LENGTH = 5

/** Rewrites one whole server message (code byte, length, body) on its way to the proxy, or null to keep it. */
type Rewrite = (message: Buffer) => Buffer | null

/**
 * A loopback relay to a node that frames what the node sends and passes each message through
 * `rewrite` (what the client sends goes as is). Only the tests' messages are touched: the rewrites
 * look for a marker in the message.
 */
class RewritingRelay {
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  /** Applied to each message until it rewrites one, then disarmed. */
  rewrite: Rewrite = () => null
  /** Messages rewritten so far. */
  rewritten = 0

  constructor(target: () => number) {
    this.#server = createServer((client) => {
      const server = connect({ host: '127.0.0.1', port: target() })
      for (const s of [client, server]) {
        this.#sockets.add(s)
        s.on('error', () => {})
        s.on('close', () => {
          this.#sockets.delete(s)
          client.destroy()
          server.destroy()
        })
      }
      client.pipe(server)
      let pending = Buffer.alloc(0)
      server.on('data', (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk])
        const out: Buffer[] = []
        while (pending.length >= HEADER_LENGTH) {
          const total = 1 + pending.readInt32BE(1)
          if (pending.length < total) break
          const message = pending.subarray(0, total)
          pending = pending.subarray(total)
          const changed = this.rewrite(message)
          if (changed !== null) {
            this.rewritten++
            this.rewrite = () => null // one message per arming
          }
          out.push(changed ?? message)
        }
        if (out.length > 0) client.write(Buffer.concat(out))
      })
    })
  }

  listen(): Promise<number> {
    return new Promise((resolve) =>
      this.#server.listen(0, '127.0.0.1', () => resolve((this.#server.address() as AddressInfo).port)),
    )
  }

  /** Destroys every relayed connection (a network reset: no FATAL, the sockets just go). */
  reset(): void {
    for (const s of this.#sockets) s.destroy()
  }

  async close(): Promise<void> {
    this.reset()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}

/** `rewrite` applied to messages of type `code` that contain `marker`. */
function whenHolds(code: string, marker: string, rewrite: (message: Buffer) => Buffer): Rewrite {
  return (m) => (m[0] === code.charCodeAt(0) && m.includes(marker) ? rewrite(m) : null)
}

/** `rewrite` applied to the first message of type `code` after one that contains `marker`. */
function afterHolds(marker: string, code: string, rewrite: (message: Buffer) => Buffer): Rewrite {
  let seen = false
  return (m) => {
    if (!seen) seen = m.includes(marker)
    else if (m[0] === code.charCodeAt(0)) return rewrite(m)
    return null
  }
}

/** A ReadyForQuery whose transaction status is 'Q', none of I, T, E. */
const badStatus = (m: Buffer): Buffer => {
  const bad = Buffer.from(m)
  bad[HEADER_LENGTH] = 0x51
  return bad
}

/** A RowDescription claiming 32,767 fields (int16 after the header) while it holds one. */
const countPastLength = (m: Buffer): Buffer => {
  const bad = Buffer.from(m)
  bad.writeUInt16BE(0x7fff, HEADER_LENGTH)
  return bad
}

/** A message whose length field says 2, below the 4 every message has. */
const lengthTooSmall = (m: Buffer): Buffer => {
  const bad = Buffer.from(m)
  bad.writeInt32BE(2, 1)
  return bad
}

describe('proxy robustness: a malformed server message closes that one client', () => {
  let f: CompatFixture
  let relay: RewritingRelay
  const clusterPatch: Record<string, unknown> = {}
  /** The proxy's log lines at warn and error. */
  const logged: { level: string; message: string; fields?: Record<string, unknown> }[] = []

  before(async () => {
    f = await startCompatFixture('transaction', {
      patch: {
        cluster: clusterPatch,
        proxy: { auth: { type: 'trust', users: { postgres: { password: 'postgres' } } } },
      },
      setup: async (c) => {
        relay = new RewritingRelay(() => c.primary.port)
        const port = await relay.listen()
        clusterPatch.primary = { name: c.primary.name, url: `postgres://postgres@127.0.0.1:${port}/freshet` }
        clusterPatch.replicas = []
      },
      log: (level, message, fields) => {
        if (level !== 'info') logged.push({ level, message, ...(fields ? { fields } : {}) })
      },
    })
  })

  after(async () => {
    await f?.stop()
    await relay?.close()
  })

  /** A pg client through the proxy, and whether its connection has ended. */
  const client = () => watchedClient(f.urlOf('proxy', 'postgres'))

  /**
   * Runs `bad` in a transaction of a fresh client, after reading the server pid the transaction runs
   * on, while `bystander` (another client of the proxy) keeps working. Checks what the brief promises.
   */
  async function survives(bad: (c: pg.Client) => Promise<unknown>, rewrite: Rewrite): Promise<void> {
    const bystander = await client()
    const victim = await client()
    try {
      await victim.c.query('BEGIN')
      const pid = Number((await victim.c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid)
      const before = relay.rewritten
      const lines = logged.length
      relay.rewrite = rewrite
      const err = (await bad(victim.c).then(
        () => null,
        (e: unknown) => e,
      )) as { code?: string; message?: string; severity?: string } | null
      relay.rewrite = () => null
      assert.equal(relay.rewritten, before + 1, 'the relay rewrote the message')
      assert.ok(err !== null, 'the statement failed')
      assert.equal(err.code, '08P01')
      assert.equal(err.severity, 'FATAL')
      assert.match(
        err.message ?? '',
        /^freshet: closing the connection: handling a message from primary failed/,
      )
      await eventually('the client connection is closed', victim.ended, 5000)
      // logged once, naming the node
      assert.deepEqual(
        logged.slice(lines).map((l) => [l.level, l.message, l.fields?.node]),
        [['error', 'closing client: handling a message from its server failed', 'primary']],
      )

      // that server connection is closed, not back in the pool
      await eventually(
        'the server connection is gone from the primary',
        async () =>
          (await f.cluster.query('primary', `SELECT 1 FROM pg_stat_activity WHERE pid = ${pid}`)).rows
            .length === 0,
        5000,
      )
      // the other client goes on, on other server connections
      for (let i = 0; i < 3; i++) {
        const { rows } = await bystander.c.query('SELECT pg_backend_pid() AS pid')
        assert.notEqual(Number(rows[0].pid), pid)
      }
      assert.equal(bystander.ended(), false)
      // and the proxy takes new clients
      const next = await client()
      assert.deepEqual((await next.c.query('SELECT 41 + 1 AS n')).rows, [{ n: 42 }])
      await next.c.end()
      await eventually('the pool has no connection lent out', () => f.proxy.poolStats().primary?.active === 0)
    } finally {
      await bystander.c.end().catch(() => {})
      await victim.c.end().catch(() => {})
    }
  }

  it("freshet's Describe of a named statement answered by a RowDescription whose field count runs past its length", async () => {
    await survives(
      (c) => c.query({ name: 'bad_rd', text: 'SELECT 1 AS freshet_bad_rd' }),
      whenHolds('T', 'freshet_bad_rd', countPastLength),
    )
  })

  it('a DataRow whose length field is below the minimum (the frame reader refuses it)', async () => {
    await survives(
      (c) => c.query("SELECT 'freshet_bad_len' AS v"),
      whenHolds('D', 'freshet_bad_len', lengthTooSmall),
    )
  })

  it('a ReadyForQuery whose transaction status is none of I, T, E', async () => {
    await survives(
      (c) => c.query("SELECT 'freshet_bad_rfq' AS v"),
      afterHolds('freshet_bad_rfq', 'Z', badStatus),
    )
  })

  it('a Parse ended by Flush (no job running, the batch open) whose answer is malformed: the client is told, not left waiting', async () => {
    const { host, port } = f.addressOf('proxy')
    const raw = await RawClient.open(host, port)
    relay.rewrite = whenHolds('T', 'freshet_bad_flush', countPastLength)
    raw.send(parse('bad_flush', 'SELECT 1 AS freshet_bad_flush'), FLUSH)
    // within RawClient's 10 s: before, nothing came and the client waited for good
    const got = await raw.until((m) => m.type === 'E')
    const fields = decodeErrorFields(got.at(-1)!.body)
    assert.equal(fields.severity, 'FATAL')
    assert.equal(fields.code, '08P01')
    assert.match(fields.message, /^freshet: closing the connection/)
    await assert.rejects(
      raw.until(() => true),
      /closed after/,
    )
    await eventually('the pool has no connection lent out', () => f.proxy.poolStats().primary?.active === 0)
  })

  it('a batch ended by Flush whose server connection is reset before it answers: the client is told, not left waiting', async () => {
    const { host, port } = f.addressOf('proxy')
    const raw = await RawClient.open(host, port)
    raw.send(parse('', 'SELECT pg_sleep(30) /* freshet_flush_reset */'), bind('', ''), execute('', 0), FLUSH)
    await eventually(
      'the statement runs on the primary',
      async () =>
        (
          await f.cluster.query(
            'primary',
            "SELECT 1 FROM pg_stat_activity WHERE query LIKE '%freshet_flush_reset%' AND pid <> pg_backend_pid()",
          )
        ).rows.length > 0,
    )
    relay.reset()
    // before, nothing came: the session forgot the batch, and a later Sync got a bare ReadyForQuery
    const got = await raw.until((m) => m.type === 'E')
    const fields = decodeErrorFields(got.at(-1)!.body)
    assert.equal(fields.severity, 'FATAL')
    assert.equal(fields.code, '08006')
    assert.match(fields.message, /^freshet: lost the connection to primary/)
    raw.send(SYNC)
    await assert.rejects(
      raw.until(() => true),
      /closed after/,
    )
    await eventually('the pool has no connection lent out', () => f.proxy.poolStats().primary?.active === 0)
  })
})
