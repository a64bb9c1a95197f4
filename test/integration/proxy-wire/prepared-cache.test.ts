// proxy.prepared_statement_cache_size through the proxy against a real primary: with one server
// connection and a bound of 3, clients that prepare more named statements than that can still run every
// one of them afterwards (freshet re-creates what it evicted), with the right answers, and the server
// connection never holds more than 3 prepared statements (pg_prepared_statements on that very backend).
// The KNOWN FAILING block shows where that breaks: an eviction placed after a failed statement of a
// pipelined batch.

import assert from 'node:assert/strict'
import type { EventEmitter } from 'node:events'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { type ProxyFixture, startProxyFixture } from '../../support/proxy-fixture.js'

const BOUND = 3
// an unannotated read: routing.unannotated primary, so it runs on the primary's only server connection
const PREPARED_ON_SERVER =
  'SELECT count(*)::int AS n, array_agg(name ORDER BY name) AS names, pg_backend_pid() AS pid FROM pg_prepared_statements'

/** One named statement step of a pipelined batch: Parse (when `text` is given), Bind, Describe, Execute. */
interface Step {
  name: string
  text?: string
  value: number
}

/**
 * A pg Submittable sending several named-statement steps and one Sync: one extended batch that uses more
 * statements than the cache bound, as pipelining clients (pgx Batch, JDBC batches) send.
 */
class NamedBatch {
  readonly rows: (string | null)[][] = []
  error: (Error & { code?: string }) | null = null
  readonly done: Promise<void>
  #resolve!: () => void

  constructor(readonly steps: readonly Step[]) {
    this.done = new Promise((resolve) => {
      this.#resolve = resolve
    })
  }

  submit(connection: {
    parse(q: { text: string; name: string; types: number[] }): void
    bind(c: { portal: string; statement: string; values: unknown[] }): void
    describe(m: { type: string; name: string }): void
    execute(c: { portal: string; rows: number }): void
    sync(): void
  }): void {
    for (const step of this.steps) {
      if (step.text !== undefined) connection.parse({ text: step.text, name: step.name, types: [] })
      connection.bind({ portal: '', statement: step.name, values: [String(step.value)] })
      connection.describe({ type: 'P', name: '' })
      connection.execute({ portal: '', rows: 0 })
    }
    connection.sync()
  }

  handleRowDescription(): void {}

  handleDataRow(msg: { fields: (string | null)[] }): void {
    this.rows.push(msg.fields)
  }

  handleCommandComplete(): void {}

  handleEmptyQuery(): void {}

  handleError(err: Error & { code?: string }): void {
    // pg stops routing this batch's messages to it after an ErrorResponse (ReadyForQuery included)
    this.error ??= err
    this.#resolve()
  }

  handleReadyForQuery(): void {
    this.#resolve()
  }
}

/** The proxy with a cache bound of 3 and one server connection on the primary. */
function startFixture(): Promise<ProxyFixture> {
  return startProxyFixture(
    {
      proxy: {
        listen: '127.0.0.1:0',
        auth: { type: 'scram-sha-256', users: { app: { password: 'app' } } },
        shutdown_timeout_ms: 2000,
        prepared_statement_cache_size: BOUND,
      },
      pools: {
        // one server connection on the primary: every client's statements meet on it
        primary: { min_idle: 0, max_active: 1, connection_timeout_ms: 5000 },
        replicas: { min_idle: 0, max_active: 2, connection_timeout_ms: 5000 },
        slow_start_ms: 0,
      },
    },
    1,
  )
}

/** What the primary's server connection holds, seen through `c` (an unannotated read: the primary). */
async function onServer(c: pg.Client): Promise<{ n: number; pid: number; names: string[] }> {
  const res = await c.query<{ n: number; names: string[] | null; pid: number }>(PREPARED_ON_SERVER)
  const row = res.rows[0]!
  return { n: row.n, pid: row.pid, names: row.names ?? [] }
}

/** Sends `steps` as one extended batch through `c`; resolves at its end (error or ReadyForQuery). */
async function runBatch(c: pg.Client, steps: Step[]): Promise<NamedBatch> {
  const batch = new NamedBatch(steps)
  c.query(batch as unknown as pg.QueryConfig)
  await batch.done
  return batch
}

describe('proxy: prepared_statement_cache_size', () => {
  let f: ProxyFixture

  before(async () => {
    f = await startFixture()
  })

  after(async () => {
    await f?.stop()
  })

  async function connect(): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: f.url() })
    await c.connect()
    return c
  }

  /** What the primary's server connection holds, seen through `c`; checks it stays within the bound. */
  async function heldOnServer(c: pg.Client, step: string): Promise<{ pid: number; names: string[] }> {
    const row = await onServer(c)
    assert.ok(
      row.n <= BOUND,
      `after ${step}: the server connection holds ${row.n} prepared statements: ${row.names.join(', ')}`,
    )
    return { pid: row.pid, names: row.names }
  }

  /** Named statement `name` of client number `who`: its answer tells which text ran. */
  function statement(who: number, name: string, k: number, value: number): pg.QueryConfig {
    return {
      name,
      text: `SELECT $1::int * ${k} AS v, '${who}:${name}' AS tag`,
      values: [value],
    }
  }

  async function runAndCheck(
    c: pg.Client,
    who: number,
    name: string,
    k: number,
    value: number,
  ): Promise<void> {
    const res = await c.query(statement(who, name, k, value))
    assert.deepEqual(res.rows, [{ v: value * k, tag: `${who}:${name}` }], `${who}:${name}(${value})`)
  }

  it('one client: twice the bound of named statements all run again, the server holds at most the bound', async () => {
    const c = await connect()
    try {
      const names = ['s1', 's2', 's3', 's4', 's5', 's6']
      const pids = new Set<number>()
      for (const [i, name] of names.entries()) {
        await runAndCheck(c, 1, name, i + 2, 10)
        const held = await heldOnServer(c, `preparing ${name}`)
        pids.add(held.pid)
        // the statements are really prepared on the server under the client's names, up to the bound
        assert.deepEqual(
          held.names,
          names.slice(Math.max(0, i + 1 - BOUND), i + 1),
          `after preparing ${name}`,
        )
      }
      // pg sends only Bind/Execute for a name it prepared before: freshet must re-create evicted ones
      for (const order of [names, [...names].reverse(), ['s1', 's6', 's1', 's2', 's5', 's3']]) {
        for (const name of order) {
          const k = names.indexOf(name) + 2
          await runAndCheck(c, 1, name, k, 7)
          pids.add((await heldOnServer(c, `running ${name} again`)).pid)
        }
      }
      assert.equal(pids.size, 1, `one server connection served everything (backends ${[...pids].join(', ')})`)
      assert.ok(f.proxy.poolStats().primary!.total <= 1)
    } finally {
      await c.end()
    }
  })

  it('two clients with the same names for different texts, interleaved, each get their own statement', async () => {
    const a = await connect()
    const b = await connect()
    try {
      const names = ['q1', 'q2', 'q3', 'q4', 'q5']
      const pids = new Set<number>()
      for (let round = 0; round < 3; round++) {
        for (const [i, name] of names.entries()) {
          await runAndCheck(a, 1, name, i + 2, round + 1)
          await runAndCheck(b, 2, name, i + 20, round + 1)
          pids.add((await heldOnServer(a, `round ${round} ${name}`)).pid)
        }
        // and concurrently, so batches of both clients queue for the one connection
        const chain = async (c: pg.Client, who: number, base: number) => {
          for (const [i, name] of names.entries()) await runAndCheck(c, who, name, i + base, 100 + round)
        }
        await Promise.all([chain(a, 1, 2), chain(b, 2, 20)])
        pids.add((await heldOnServer(b, `concurrent round ${round}`)).pid)
      }
      assert.equal(pids.size, 1, `one server connection served everything (backends ${[...pids].join(', ')})`)
    } finally {
      await Promise.all([a.end(), b.end()])
    }
  })

  it('one pipelined batch over the bound, then a batch binding them all: right answers, exact ParseCompletes', async () => {
    const c = await connect()
    const wire = (c as unknown as { connection: EventEmitter }).connection
    let parseCompletes = 0
    let closeCompletes = 0
    wire.on('parseComplete', () => parseCompletes++)
    wire.on('closeComplete', () => closeCompletes++)
    const text = (k: number) => `SELECT $1::int * ${k} AS v, 'b${k}' AS tag`
    const run = async (steps: Step[]): Promise<(string | null)[][]> => {
      const batch = await runBatch(c, steps)
      if (batch.error) throw batch.error
      return batch.rows
    }
    try {
      const ks = [1, 2, 3, 4, 5]
      const first = await run(ks.map((k) => ({ name: `b${k}`, text: text(k), value: 10 })))
      assert.deepEqual(
        first,
        ks.map((k) => [String(10 * k), `b${k}`]),
      )
      assert.equal(parseCompletes, ks.length, 'one ParseComplete per Parse the client sent')
      await heldOnServer(c, 'the first batch')

      // only Bind/Execute now, every statement (and b1 twice, after the others pushed it out again)
      const again = [1, 2, 3, 4, 5, 1, 5, 3]
      const second = await run(again.map((k) => ({ name: `b${k}`, value: 3 })))
      assert.deepEqual(
        second,
        again.map((k) => [String(3 * k), `b${k}`]),
      )
      assert.equal(parseCompletes, ks.length, 'no ParseComplete for statements freshet re-created')
      assert.equal(closeCompletes, 0, 'no CloseComplete for statements freshet evicted')
      await heldOnServer(c, 'the second batch')
      assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1)
    } finally {
      await c.end()
    }
  })
})

describe('prepared_statement_cache_size after an error in a pipelined batch', () => {
  // An eviction Close that freshet puts after a failed statement of the same batch is skipped by
  // PostgreSQL (after an error it ignores everything up to Sync), but freshet forgets the statement as if
  // it had been closed: the server keeps it (over the bound, for good), and when the client runs it again
  // freshet parses it anew under the same name and PostgreSQL answers 42P05 "already exists".
  let f: ProxyFixture

  before(async () => {
    f = await startFixture()
  })

  after(async () => {
    await f?.stop()
  })

  it('every statement still runs, and the server holds at most the bound', async () => {
    const c = new pg.Client({ connectionString: f.url() })
    await c.connect()
    const text = (k: number) => `SELECT 10 / $1::int * ${k} AS v, 'e${k}' AS tag`
    try {
      for (const k of [1, 2, 3]) {
        const res = await c.query({ name: `e${k}`, text: text(k), values: [1] })
        assert.deepEqual(res.rows, [{ v: 10 * k, tag: `e${k}` }])
      }
      assert.deepEqual((await onServer(c)).names, ['e1', 'e2', 'e3'], 'the connection is full')

      // e4 fails at execution (division by zero); e5, after it in the same batch, needs room (evicts e2)
      const batch = await runBatch(c, [
        { name: 'e4', text: text(4), value: 0 },
        { name: 'e5', text: text(5), value: 1 },
      ])
      assert.equal(batch.error?.code, '22012')

      // the client's statements, each run again by name (pg sends Bind/Execute only)
      const problems: string[] = []
      for (const k of [2, 1, 3]) {
        try {
          const res = await c.query({ name: `e${k}`, text: text(k), values: [1] })
          assert.deepEqual(res.rows, [{ v: 10 * k, tag: `e${k}` }])
        } catch (err) {
          problems.push(`e${k}: ${(err as { code?: string }).code} ${(err as Error).message}`)
        }
        const held = await onServer(c)
        if (held.n > BOUND) problems.push(`after e${k}: the server holds ${held.names.join(', ')}`)
      }
      assert.deepEqual(problems, [])
    } finally {
      await c.end()
    }
  })
})
