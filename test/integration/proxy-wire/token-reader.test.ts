// With causal consistency on, the proxy reads a read-your-writes token after a write commits, on one
// connection of its own per primary that every client session shares (src/proxy/wal-positions.ts), and
// only when it can matter (src/proxy/session-tokens.ts): at once for a client whose reads go to
// replicas, else when such a read comes. The write's client is answered at once; its next write does
// not wait for the token, a read it may send to a replica does. One token read serves every write that
// ended before it was sent. A relay in
// front of the primary holds the server's answers on that connection, counts the token reads and
// records every statement the proxy sends while they are held.

import assert from 'node:assert/strict'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { after, afterEach, before, describe, it } from 'node:test'
import pg from 'pg'
import postgres from 'postgres'
import { parseConfig } from '../../../src/core/config/parse-config.js'
import type { Decision } from '../../../src/core/route/decision.js'
import { ProxyServer } from '../../../src/proxy/proxy-server.js'
import { READ_TIMEOUT_MS } from '../../../src/proxy/wal-positions.js'
import { RoutingEngine } from '../../../src/routing/routing-engine.js'
import { type LocalCluster, startCluster } from '../../cluster/index.js'
import { configFor } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'

// the token read, as a Query message's text (the lag probe's differs)
const TOKEN_READ = 'SELECT pg_current_wal_lsn()::text\0'
// the proxy's token reader logs in with this application_name (proxy-server.ts)
const READER_NAME = 'freshet read-your-writes tokens'
const QUERY = 0x51 // 'Q'
const PARSE = 0x50 // 'P'

/**
 * A TCP relay to the primary. Counts the token reads the proxy sends; while `hold` is on, keeps the
 * server's answers on the token reader's connection and records the statements the proxy sends on
 * any other connection meanwhile.
 */
class TokenHoldRelay {
  readonly server: Server
  tokenReads = 0
  /** The tests' statement texts (Query and Parse) sent on other connections while a hold was on. */
  readonly sentWhileHeld: string[] = []
  #holding = false
  #held: Buffer[] = []
  #reader: { proxySide: Socket; serverSide: Socket } | null = null

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

  hold(): void {
    this.sentWhileHeld.length = 0
    this.#holding = true
  }

  release(): void {
    this.#holding = false
    for (const b of this.#held) this.#reader?.proxySide.write(b)
    this.#held = []
  }

  /** Cuts the token reader's connection (what it held is lost). */
  cutReader(): void {
    this.#holding = false
    this.#held = []
    this.#reader?.proxySide.destroy()
    this.#reader?.serverSide.destroy()
    this.#reader = null
  }

  #relay(proxySide: Socket, serverSide: Socket): void {
    let isReader: boolean | null = null // known from the startup message
    proxySide.on('data', (chunk: Buffer) => {
      serverSide.write(chunk)
      if (isReader === null) {
        isReader = chunk.toString('latin1').includes(READER_NAME)
        if (isReader) this.#reader = { proxySide, serverSide }
        return
      }
      if (isReader) {
        this.tokenReads += chunk.toString('latin1').split(TOKEN_READ).length - 1
        return
      }
      // the test's own statements (the engine's heartbeat and probes go through this relay too)
      if (this.#holding) this.sentWhileHeld.push(...statements(chunk).filter((t) => t.includes('reader_')))
    })
    serverSide.on('data', (chunk: Buffer) => {
      if (isReader && this.#holding) this.#held.push(chunk)
      else proxySide.write(chunk)
    })
    const end = () => {
      proxySide.destroy()
      serverSide.destroy()
    }
    proxySide.on('error', end).on('close', end)
    serverSide.on('error', end).on('close', end)
  }
}

/** The statement texts (Query, and Parse's query) in a chunk the proxy sent. */
function statements(chunk: Buffer): string[] {
  const out: string[] = []
  let at = 0
  while (at + 5 <= chunk.length) {
    const end = at + 1 + chunk.readInt32BE(at + 1)
    if (chunk[at] === QUERY) out.push(chunk.toString('utf8', at + 5, Math.min(end, chunk.length) - 1))
    if (chunk[at] === PARSE) {
      const nameEnd = chunk.indexOf(0, at + 5)
      out.push(chunk.toString('utf8', nameEnd + 1, chunk.indexOf(0, nameEnd + 1)))
    }
    at = end
  }
  return out
}

describe('proxy: read-your-writes tokens read on one shared connection', { timeout: 120_000 }, () => {
  let cluster: LocalCluster
  let relay: TokenHoldRelay
  let engine: RoutingEngine
  let proxy: ProxyServer
  let proxyPort: number
  const clients: pg.Client[] = []
  const decisions: Decision[] = []

  const newClient = async () => {
    const c = new pg.Client({
      host: '127.0.0.1',
      port: proxyPort,
      user: 'app',
      password: 'app',
      database: 'freshet',
    })
    c.on('error', () => {}) // the last test ends the sessions with 57P01, as a drain does
    await c.connect()
    clients.push(c)
    return c
  }
  const count = async (client: pg.Client, table: string) =>
    (await client.query(`/* FRESHNESS: EVENTUAL */ SELECT count(*)::int AS n FROM ${table}`)).rows[0]
      .n as number

  before(async () => {
    cluster = await startCluster({ replicas: 1 })
    for (const t of ['reader_a', 'reader_b', 'reader_pipeline', 'reader_lost'])
      await cluster.query('primary', `CREATE TABLE ${t} (id int)`)
    await cluster.waitForCatchUp()
    relay = new TokenHoldRelay(cluster.primary.port)
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
    engine.on('decision', (d: Decision) => decisions.push(d))
    proxy = new ProxyServer(engine, {})
    proxyPort = (await proxy.listen()).port
  })
  afterEach(() => relay.release()) // a failed case must not leave the next one held
  after(async () => {
    for (const c of clients) await c.end().catch(() => {})
    await proxy?.close(1000)
    await engine?.stop()
    relay?.server.close()
    await cluster?.stop()
  })

  it('reads no token for a client that only writes, or whose reads go to the primary', async () => {
    const client = await newClient()
    const before = relay.tokenReads
    await client.query('INSERT INTO reader_a VALUES (1)')
    await client.query('INSERT INTO reader_a VALUES ($1)', [2]) // extended protocol
    // unannotated: routing.unannotated is primary (the default), where the token does not matter
    const r = await client.query('SELECT count(*)::int AS n FROM reader_a')
    assert.equal(r.rows[0].n, 2)
    assert.equal(relay.tokenReads, before)
    // the first read a replica may serve reads one token, after all those writes, and sees them
    assert.equal(await count(client, 'reader_a'), 2)
    assert.equal(relay.tokenReads, before + 1)
  })

  it('answers writes and sends the next ones while their token is still being read; a read waits', async () => {
    const client = await newClient()
    await count(client, 'reader_a') // its reads go to replicas: its writes' tokens are read at once
    const before = relay.tokenReads
    relay.hold()
    await client.query('INSERT INTO reader_a VALUES (3)')
    await eventually('the write’s token read is sent', () => relay.tokenReads === before + 1)
    await client.query('INSERT INTO reader_a VALUES ($1)', [4])
    // both written and answered while no token was known
    assert.deepEqual(relay.sentWhileHeld, [
      'INSERT INTO reader_a VALUES (3)',
      'INSERT INTO reader_a VALUES ($1)',
    ])
    // a read the token cannot send elsewhere (unannotated: the primary) does not wait for it either
    const primaryRead = await client.query('SELECT count(*)::int AS n FROM reader_a')
    assert.equal(primaryRead.rows[0].n, 4)
    let answered = false
    const read = count(client, 'reader_a').then((n) => {
      answered = true
      return n
    })
    // the read may go to the replica only once its token is known: it is not sent while held
    await new Promise((r) => setTimeout(r, 300))
    assert.equal(answered, false, 'the read was answered before its token was known')
    assert.equal(relay.sentWhileHeld.length, 3, 'the read went out before its token was known')
    relay.release()
    assert.equal(await read, 4)
  })

  it('reads one token for all the writes that ended while one was being read', async () => {
    const first = await newClient()
    const others = await Promise.all(Array.from({ length: 5 }, () => newClient()))
    for (const c of [first, ...others]) await count(c, 'reader_b') // each reads from replicas
    const before = relay.tokenReads
    relay.hold()
    await first.query('INSERT INTO reader_b VALUES (0)')
    await eventually('its token read is sent', () => relay.tokenReads === before + 1)
    // five sessions write while that read is held: each is answered, none sends a read of its own
    await Promise.all(others.map((c, i) => c.query(`INSERT INTO reader_b VALUES (${i + 1})`)))
    assert.equal(relay.tokenReads, before + 1)
    relay.release()
    // one more read, sent after all five ended, covers them all
    assert.ok((await count(first, 'reader_b')) >= 1)
    for (const c of others) assert.equal(await count(c, 'reader_b'), 6)
    assert.equal(relay.tokenReads, before + 2)
  })

  it('keeps a pipelining client in order: its writes at once, its read after their tokens', async () => {
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
      const writes = Array.from({ length: 20 }, (_, i) => sql`INSERT INTO reader_pipeline VALUES (${i})`)
      const read = sql.unsafe(
        '/* FRESHNESS: EVENTUAL */ SELECT count(*)::int AS n, max(id) AS top FROM reader_pipeline',
      )
      const done = await Promise.all([...writes, read])
      for (const w of done.slice(0, 20)) assert.deepEqual([w.command, w.count], ['INSERT', 1])
      assert.deepEqual({ ...(await read)[0] }, { n: 20, top: 19 })
    } finally {
      await sql.end()
    }
  })

  it('sends reads to the primary when a token cannot be read, until a later one is', async () => {
    const client = await newClient()
    await count(client, 'reader_lost') // its reads go to replicas: its writes' tokens are read at once
    await cluster.pauseReplay(cluster.replicas[0]!.name) // the replica would miss the write
    try {
      relay.hold()
      await client.query('INSERT INTO reader_lost VALUES (1)')
      await eventually(
        'its token read is sent',
        () => relay.sentWhileHeld.length === 1 && relay.tokenReads > 0,
      )
      relay.cutReader() // its answer is lost with the connection
      decisions.length = 0
      assert.equal(await count(client, 'reader_lost'), 1, 'a stale read: the replica served it')
      const read = decisions.find((d) => d.tier === 'eventual')
      assert.equal(read?.target, cluster.primary.name)
      assert.equal(read?.reason, 'read_your_writes')
    } finally {
      await cluster.resumeReplay(cluster.replicas[0]!.name)
    }
    // the next write's token (read on a new connection) covers the lost one: replicas serve again
    await client.query('INSERT INTO reader_lost VALUES (2)')
    await eventually('a read goes to the replica again', async () => {
      decisions.length = 0
      const n = await count(client, 'reader_lost')
      return n === 2 && decisions.some((d) => d.tier === 'eventual' && d.target === cluster.replicas[0]!.name)
    })
  })

  it('gives up on a token read that is not answered, and sends the reads that wait to the primary', async () => {
    const client = await newClient()
    await count(client, 'reader_lost')
    await cluster.pauseReplay(cluster.replicas[0]!.name)
    try {
      relay.hold() // never released: the primary "accepts but does not answer" on the reader
      await client.query('INSERT INTO reader_lost VALUES (3)')
      decisions.length = 0
      const started = Date.now()
      assert.equal(await count(client, 'reader_lost'), 3, 'a stale read: the replica served it')
      assert.ok(Date.now() - started >= READ_TIMEOUT_MS - 1000, 'answered before the token read timed out')
      const read = decisions.find((d) => d.tier === 'eventual')
      assert.equal(read?.target, cluster.primary.name)
      assert.equal(read?.reason, 'read_your_writes')
    } finally {
      await cluster.resumeReplay(cluster.replicas[0]!.name)
    }
  })

  // last: it shuts the proxy down
  it('ends a session whose token is still being read when the proxy drains, without waiting for it', async () => {
    const client = await newClient()
    await count(client, 'reader_a')
    relay.hold()
    await client.query('INSERT INTO reader_a VALUES (98)')
    const closing = proxy.close(5000)
    const late = client.query('INSERT INTO reader_a VALUES (99)').then(
      () => null,
      (err: Error & { code?: string }) => err.code,
    )
    assert.equal(await late, '57P01')
    await closing
    relay.release()
    const rows = await cluster.query('primary', 'SELECT count(*)::int AS n FROM reader_a WHERE id = 99')
    assert.equal(rows.rows[0]?.n, 0)
  })
})
