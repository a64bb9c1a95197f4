// With causal consistency on, the proxy fetches a read-your-writes token after each autocommit write
// (sent in the same write as the statement or its extended batch, answered after its ReadyForQuery). The client's next write
// must not wait for that answer: it goes out behind the fetch on the same connection. A read must
// wait: only the token tells which replica may serve it. A relay in front of the primary holds the
// server's answer to one token fetch and records what the proxy sends while it is held.

import assert from 'node:assert/strict'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import postgres from 'postgres'
import { parseConfig } from '../../../src/core/config/parse-config.js'
import { ProxyServer } from '../../../src/proxy/proxy-server.js'
import { RoutingEngine } from '../../../src/routing/routing-engine.js'
import { type LocalCluster, startCluster } from '../../cluster/index.js'
import { configFor } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'

// the proxy's token fetch, as a Query message's text with its terminator (the lag probe's differs)
const FETCH = 'SELECT pg_current_wal_lsn()::text'
const READY_FOR_QUERY = 0x5a // 'Z'
const QUERY = 0x51 // 'Q'

/** What the proxy sent while the relay held a token fetch's answer. */
interface Hold {
  /** Query texts the proxy sent on that connection while its fetch's answer was held. */
  sentWhileHeld: string[]
  released: Promise<'sent behind' | 'limit'>
}

interface Armed {
  releaseOn: string
  limitMs: number
  hold: Hold
  resolve: (how: 'sent behind' | 'limit') => void
}

/**
 * A TCP relay to the primary. Once armed, on the first connection that sends the token fetch, it
 * forwards the server's messages up to the statement's ReadyForQuery and holds the rest (the fetch's
 * answer) until the proxy sends a Query containing `releaseOn` on that connection, or the limit passes.
 */
class FetchHoldRelay {
  readonly server: Server
  #armed: Armed | null = null

  constructor(target: number) {
    this.server = createServer((proxySide) => {
      const serverSide = connect({ port: target, host: '127.0.0.1' })
      this.#relay(proxySide, serverSide)
    })
  }

  listen(): Promise<number> {
    return new Promise((resolve) =>
      this.server.listen(0, '127.0.0.1', () => resolve((this.server.address() as { port: number }).port)),
    )
  }

  /**
   * Holds the answer of the next token fetch; released when a Query containing `releaseOn` comes, or
   * after `limitMs` (so a proxy that waits for the answer fails the assertions rather than hanging).
   */
  arm(releaseOn: string, limitMs: number): Hold {
    let resolve!: (how: 'sent behind' | 'limit') => void
    const hold: Hold = {
      sentWhileHeld: [],
      released: new Promise((r) => {
        resolve = r
      }),
    }
    this.#armed = { releaseOn, limitMs, hold, resolve }
    return hold
  }

  #relay(proxySide: Socket, serverSide: Socket): void {
    // the armed hold, once this connection has sent the fetch
    let mine: Armed | null = null
    let fetchSent = false // the fetch went out: hold the server's answers after the next ReadyForQuery
    let holding = false
    let held: Buffer[] = []
    let partial = Buffer.alloc(0)
    const release = (how: 'sent behind' | 'limit') => {
      if (!holding) return
      holding = false
      for (const b of held) proxySide.write(b)
      held = []
      mine!.resolve(how)
      mine = null
    }
    proxySide.on('data', (chunk: Buffer) => {
      serverSide.write(chunk)
      const text = chunk.toString('latin1')
      if (mine === null && this.#armed !== null && text.includes(`${FETCH}\0`)) {
        mine = this.#armed
        this.#armed = null
        fetchSent = true
      } else if (mine !== null && holding) {
        for (const q of queries(chunk)) mine.hold.sentWhileHeld.push(q)
        if (text.includes(mine.releaseOn)) release('sent behind')
      }
    })
    serverSide.on('data', (chunk: Buffer) => {
      if (holding) {
        held.push(chunk)
        return
      }
      if (!fetchSent) {
        proxySide.write(chunk)
        return
      }
      // frame the server's messages: forward through the statement's ReadyForQuery, hold the rest
      const bytes = Buffer.concat([partial, chunk])
      let at = 0
      while (at + 5 <= bytes.length) {
        const end = at + 1 + bytes.readInt32BE(at + 1)
        if (end > bytes.length) break
        const code = bytes[at]
        at = end
        if (code === READY_FOR_QUERY) {
          proxySide.write(bytes.subarray(0, at))
          held = [bytes.subarray(at)]
          partial = Buffer.alloc(0)
          fetchSent = false
          holding = true
          const hold = mine!
          setTimeout(() => {
            if (mine === hold) release('limit')
          }, hold.limitMs).unref()
          return
        }
      }
      // no ReadyForQuery yet: forward the whole messages, keep a partial one
      proxySide.write(bytes.subarray(0, at))
      partial = Buffer.from(bytes.subarray(at))
    })
    const end = () => {
      proxySide.destroy()
      serverSide.destroy()
    }
    proxySide.on('error', end).on('close', end)
    serverSide.on('error', end).on('close', end)
  }
}

/** The Query messages' texts in a chunk the proxy sent (simple protocol). */
function queries(chunk: Buffer): string[] {
  const out: string[] = []
  let at = 0
  while (at + 5 <= chunk.length) {
    const end = at + 1 + chunk.readInt32BE(at + 1)
    if (chunk[at] === QUERY) out.push(chunk.toString('utf8', at + 5, Math.min(end, chunk.length) - 1))
    at = end
  }
  return out
}

describe('proxy: a write goes out behind the previous write’s token fetch', { timeout: 120_000 }, () => {
  let cluster: LocalCluster
  let relay: FetchHoldRelay
  let engine: RoutingEngine
  let proxy: ProxyServer
  let client: pg.Client
  let proxyPort: number

  before(async () => {
    cluster = await startCluster({ replicas: 1 })
    await cluster.query('primary', 'CREATE TABLE behind_token (id int)')
    await cluster.query('primary', 'CREATE TABLE behind_pipeline (id int)')
    await cluster.waitForCatchUp()
    relay = new FetchHoldRelay(cluster.primary.port)
    const relayPort = await relay.listen()
    const primaryUrl = new URL(cluster.primary.url())
    primaryUrl.port = String(relayPort)
    const input = configFor(cluster, {
      cluster: {
        primary: { name: cluster.primary.name, url: primaryUrl.toString() },
        replicas: cluster.replicas.map((r) => ({ name: r.name, url: r.url() })),
      },
      proxy: {
        listen: '127.0.0.1:0',
        pool_mode: 'transaction',
        auth: { type: 'scram-sha-256', users: { app: { password: 'app' } } },
      },
      consistency: { causal: true, max_wait_for_sync_ms: 2000 },
    })
    engine = new RoutingEngine(parseConfig(JSON.stringify(input)))
    await engine.start()
    await eventually('the replica has a lag reading', () =>
      engine.snapshot().every((n) => n.role === 'primary' || (n.healthy && n.lag_ms !== null)),
    )
    proxy = new ProxyServer(engine, {})
    const { port } = await proxy.listen()
    proxyPort = port
    client = new pg.Client({ host: '127.0.0.1', port, user: 'app', password: 'app', database: 'freshet' })
    await client.connect()
    client.on('error', () => {}) // the last test ends the session with 57P01, as a drain does
  })
  after(async () => {
    await client?.end().catch(() => {})
    await proxy?.close(1000)
    await engine?.stop()
    relay?.server.close()
    await cluster?.stop()
  })

  it('sends the next autocommit write while the token fetch is still unanswered', async () => {
    const hold = relay.arm('VALUES (2)', 5000)
    await client.query('INSERT INTO behind_token VALUES (1)') // answered: only the fetch is held
    await client.query('INSERT INTO behind_token VALUES (2)')
    assert.equal(await hold.released, 'sent behind', 'the second write waited for the token')
    // the write, and its own token fetch in the same write
    assert.deepEqual(hold.sentWhileHeld, ['INSERT INTO behind_token VALUES (2)', FETCH])
    // read-your-writes still holds for a read the engine may send to the replica
    const r = await client.query('/* FRESHNESS: EVENTUAL */ SELECT count(*)::int AS n FROM behind_token')
    assert.equal(r.rows[0].n, 2)
  })

  it('sends the next write behind the fetch of an extended-protocol write too', async () => {
    const hold = relay.arm('VALUES ($1)', 5000)
    await client.query('INSERT INTO behind_token VALUES ($1)', [10])
    await client.query('INSERT INTO behind_token VALUES ($1)', [20])
    assert.equal(await hold.released, 'sent behind', 'the second write waited for the token')
    // the second batch (Parse/Bind/Describe/Execute/Sync), then its own token fetch in the same write
    assert.deepEqual(hold.sentWhileHeld, [FETCH])
    const r = await client.query('/* FRESHNESS: EVENTUAL */ SELECT count(*)::int AS n FROM behind_token')
    assert.equal(r.rows[0].n, 4)
  })

  it('keeps a pipelining client in order: its writes behind each other, its read after their tokens', async () => {
    // postgres.js sends all of these on its one connection before reading an answer
    const sql = postgres({
      host: '127.0.0.1',
      port: proxyPort,
      user: 'app',
      pass: 'app',
      database: 'freshet',
      max: 1,
      onnotice: () => {},
    })
    try {
      const writes = Array.from({ length: 20 }, (_, i) => sql`INSERT INTO behind_pipeline VALUES (${i})`)
      const read = sql.unsafe(
        '/* FRESHNESS: EVENTUAL */ SELECT count(*)::int AS n, max(id) AS top FROM behind_pipeline',
      )
      const done = await Promise.all([...writes, read])
      for (const w of done.slice(0, 20)) assert.deepEqual([w.command, w.count], ['INSERT', 1])
      assert.deepEqual({ ...(await read)[0] }, { n: 20, top: 19 })
    } finally {
      await sql.end()
    }
    const rows = await cluster.query('primary', 'SELECT count(*)::int AS n FROM behind_pipeline')
    assert.equal(rows.rows[0]?.n, 20)
  })

  it('holds a read until the token is known', async () => {
    const hold = relay.arm('never sent', 500)
    await client.query('INSERT INTO behind_token VALUES (3)')
    let answered = false
    const read = client.query('/* FRESHNESS: EVENTUAL */ SELECT count(*)::int AS n FROM behind_token')
    void read.then(() => {
      answered = true
    })
    // nothing may go out on that connection while the token is unknown: the hold runs to its limit
    assert.equal(await hold.released, 'limit')
    assert.deepEqual(hold.sentWhileHeld, [], 'the read went out before its token was known')
    assert.equal(answered, false, 'the read was answered before its token was known')
    assert.equal((await read).rows[0].n, 5)
  })

  // last: it shuts the proxy down
  it('sends nothing behind the fetch once the proxy drains: the session ends when it is answered', async () => {
    const hold = relay.arm('VALUES (99)', 500)
    await client.query('INSERT INTO behind_token VALUES (98)')
    const closing = proxy.close(5000)
    const late = client.query('INSERT INTO behind_token VALUES (99)').then(
      () => null,
      (err: Error & { code?: string }) => err.code,
    )
    assert.equal(await hold.released, 'limit', 'a write went out behind the fetch while draining')
    assert.deepEqual(hold.sentWhileHeld, [])
    assert.equal(await late, '57P01')
    await closing
    const rows = await cluster.query('primary', 'SELECT count(*)::int AS n FROM behind_token WHERE id = 99')
    assert.equal(rows.rows[0]?.n, 0)
  })
})
