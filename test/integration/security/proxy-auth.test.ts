// Client authentication through the real proxy on a real cluster: SCRAM, md5 and trust modes, stored SCRAM
// verifiers, no user enumeration, hostile SASL messages, TLS to clients, and no password in logs, errors,
// the admin config or metrics. TLS with psql sslmode=require over the CLI is in proxy-wire/cli-reload-tls.

import assert from 'node:assert/strict'
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect as netConnect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { TLSSocket } from 'node:tls'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import pg from 'pg'
import postgres from 'postgres'
import { parseConfig } from '../../../src/core/config/parse-config.js'
import {
  decodeAuthentication,
  decodeErrorFields,
  type ErrorFields,
  passwordMessage,
  query as queryMessage,
  SSL_REQUEST,
  saslInitialResponse,
  saslResponse,
  startupMessage,
} from '../../../src/protocol/index.js'
import {
  formatScramSecret,
  md5PasswordHash,
  ScramClient,
  scramSecretFromPassword,
} from '../../../src/proxy/auth/index.js'
import { ProxyServer } from '../../../src/proxy/proxy-server.js'
import { RoutingEngine } from '../../../src/routing/routing-engine.js'
import { attachEngineLogs, createLogger } from '../../../src/telemetry/logger.js'
import { type LocalCluster, startCluster } from '../../cluster/index.js'
import { configFor } from '../../support/cluster-config.js'
import { eventually } from '../../support/eventually.js'
import { runCommand } from '../../support/proxy-fixture.js'

const run = promisify(execFile)
const CLI = fileURLToPath(new URL('../../support/run-cli.ts', import.meta.url))

// Distinctive secrets: `app` (SCRAM in PostgreSQL), `app_md5` (md5 in PostgreSQL), `vault` (trusted by
// PostgreSQL, configured in freshet only as a SCRAM verifier), a wrong password and the admin token.
const APP_PW = 'Scr4m-S3cret-Pq9z'
const MD5_PW = 'Md5u-S3cret-Hv3k'
const VAULT_PW = 'Va5lt-S3cret-Tn6w'
const WRONG_PW = 'Wr0ng-S3cret-Yb1m'
const TOKEN = 'Adm1n-T0ken-Rc8d'
const APP_MD5_HASH = md5PasswordHash('app_md5', MD5_PW)
const VAULT_VERIFIER = formatScramSecret(scramSecretFromPassword(VAULT_PW))
const PASSWORDS = [APP_PW, MD5_PW, VAULT_PW, WRONG_PW]
// password-equivalent forms count as secrets too
const SECRETS = [...PASSWORDS, TOKEN, APP_MD5_HASH, md5PasswordHash('app', APP_PW), VAULT_VERIFIER]

function leaks(text: string): string[] {
  return SECRETS.filter((s) => text.includes(s) || text.includes(encodeURIComponent(s)))
}

const USERS = {
  app: { password: APP_PW },
  app_md5: { password: MD5_PW },
  vault: { password: VAULT_VERIFIER },
}

/** What a client saw when its login was refused. */
interface Refusal {
  code: string | undefined
  message: string
}

// ---- a raw protocol client, for what real clients never send ------------------------------------------

interface BackendMessage {
  code: string
  body: Buffer
}

/** A socket to the proxy that splits what comes back into backend messages. */
class RawClient {
  readonly socket: Socket
  readonly #queue: BackendMessage[] = []
  #waiter: (() => void) | null = null
  #buf = Buffer.alloc(0)
  #closed = false

  private constructor(socket: Socket) {
    this.socket = socket
    socket.on('data', (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d])
      while (this.#buf.length >= 5) {
        const len = this.#buf.readInt32BE(1)
        if (this.#buf.length < 1 + len) break
        this.#queue.push({
          code: String.fromCharCode(this.#buf[0]!),
          body: this.#buf.subarray(5, 1 + len),
        })
        this.#buf = this.#buf.subarray(1 + len)
      }
      this.#wake()
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      this.#closed = true
      this.#wake()
    })
  }

  static async open(port: number): Promise<RawClient> {
    const socket = netConnect({ host: '127.0.0.1', port })
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
    return new RawClient(socket)
  }

  #wake(): void {
    const w = this.#waiter
    this.#waiter = null
    w?.()
  }

  /** The next backend message, or null once the proxy closed the connection. */
  async next(): Promise<BackendMessage | null> {
    for (;;) {
      const m = this.#queue.shift()
      if (m) return m
      if (this.#closed) return null
      await new Promise<void>((r) => {
        this.#waiter = r
      })
    }
  }

  write(b: Buffer): void {
    this.socket.write(b)
  }

  /** Reads to the end: the ErrorResponse it got (if any), and whether an AuthenticationOk ever came. */
  async outcome(): Promise<{ error: ErrorFields | null; authenticated: boolean }> {
    let error: ErrorFields | null = null
    let authenticated = false
    for (;;) {
      const m = await this.next()
      if (!m) return { error, authenticated }
      if (m.code === 'E') error = decodeErrorFields(m.body)
      if (m.code === 'R' && decodeAuthentication(m.body).kind === 'ok') authenticated = true
    }
  }

  close(): void {
    this.socket.destroy()
  }
}

/** Starts a SCRAM login as `user`: the mechanisms offered, then the server-first-message. */
async function scramFirst(
  port: number,
  user: string,
): Promise<{ raw: RawClient; mechanisms: string[]; serverFirst: string; clientNonce: string }> {
  const raw = await RawClient.open(port)
  raw.write(startupMessage({ user, database: 'freshet' }))
  const offer = await raw.next()
  assert.equal(offer?.code, 'R')
  const sasl = decodeAuthentication(offer!.body)
  assert.equal(sasl.kind, 'sasl', `expected AuthenticationSASL for ${user}, got ${sasl.kind}`)
  const clientNonce = randomBytes(18).toString('base64')
  raw.write(saslInitialResponse('SCRAM-SHA-256', `n,,n=,r=${clientNonce}`))
  const cont = await raw.next()
  assert.equal(cont?.code, 'R', `no SASLContinue for ${user}`)
  const step = decodeAuthentication(cont!.body)
  assert.equal(step.kind, 'sasl-continue')
  return {
    raw,
    mechanisms: (sasl as { mechanisms: string[] }).mechanisms,
    serverFirst: (step as { data: Buffer }).data.toString('utf8'),
    clientNonce,
  }
}

function attrs(message: string): Record<string, string> {
  return Object.fromEntries(message.split(',').map((p) => [p.slice(0, 1), p.slice(2)]))
}

// ---- the suite ----------------------------------------------------------------------------------------

describe('proxy client authentication', { timeout: 300_000 }, () => {
  let cluster: LocalCluster
  let dir: string
  // scram-sha-256 mode: the CLI as a child process, with TLS and the admin API
  let child: ChildProcess
  let cliOutput = ''
  let scramPort: number
  let adminUrl: string
  // md5 and trust mode: in-process engines and proxies on the same cluster, without TLS
  const inProcess: { engine: RoutingEngine; proxy: ProxyServer; detach: () => void }[] = []
  let md5Port: number
  let trustPort: number
  const logged: string[] = []
  // everything clients were told when refused
  const clientErrors: string[] = []

  const sink = new Writable({
    write(chunk, _enc, done) {
      logged.push(String(chunk))
      done()
    },
  })

  async function startInProcess(type: 'md5' | 'trust'): Promise<number> {
    const engine = new RoutingEngine(
      parseConfig(
        JSON.stringify(
          configFor(cluster, {
            proxy: { listen: '127.0.0.1:0', auth: { type, users: USERS }, shutdown_timeout_ms: 1000 },
            telemetry: { log_level: 'debug', log_sampling_rate: 1 },
          }),
        ),
      ),
    )
    await engine.start()
    engine.on('log', (level, message, fields) =>
      logged.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`),
    )
    const detach = attachEngineLogs(engine, createLogger({ log_level: 'debug' }, sink))
    // no log option: the proxy logs through the engine's 'log' events, as under the CLI
    const proxy = new ProxyServer(engine)
    inProcess.push({ engine, proxy, detach })
    return (await proxy.listen()).port
  }

  before(async () => {
    cluster = await startCluster({ replicas: 1 })
    await cluster.query('primary', `ALTER ROLE app PASSWORD '${APP_PW}'`)
    // an md5 hash given as the password is stored as is
    await cluster.query('primary', `ALTER ROLE app_md5 PASSWORD '${APP_MD5_HASH}'`)
    await cluster.query('primary', 'CREATE ROLE vault LOGIN')
    await cluster.waitForCatchUp()
    dir = mkdtempSync(join(tmpdir(), 'freshet-proxy-auth-'))
    const [key, cert] = [join(dir, 'key.pem'), join(dir, 'cert.pem')]
    await run('openssl', [
      ...'req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost'.split(' '),
      ...['-keyout', key, '-out', cert],
    ])
    const config = configFor(cluster, {
      proxy: {
        listen: '127.0.0.1:0',
        auth: { type: 'scram-sha-256', users: USERS },
        tls: { cert, key },
        shutdown_timeout_ms: 1000,
      },
      admin: { listen: '127.0.0.1:0', token: TOKEN },
      telemetry: { log_level: 'debug', log_sampling_rate: 1 },
    })
    writeFileSync(join(dir, 'freshet.yaml'), JSON.stringify(config, null, 2))
    child = spawn(
      process.execPath,
      ['--import', 'tsx', CLI, 'proxy', '--config', join(dir, 'freshet.yaml')],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    const seen = new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => {
        cliOutput += d
        const port = /freshet proxy listening on [^\s]*:(\d+)/.exec(cliOutput)
        const admin = /admin API and dashboard on (http:\/\/\S+?)\/?\s/.exec(cliOutput)
        if (port && admin) {
          scramPort = Number(port[1])
          adminUrl = admin[1]!
          resolve()
        }
      }
      child.stdout!.on('data', onData)
      child.stderr!.on('data', onData)
      child.once('exit', () => reject(new Error(`the CLI exited:\n${cliOutput}`)))
    })
    await seen
    md5Port = await startInProcess('md5')
    trustPort = await startInProcess('trust')
  })

  after(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      await exited
    }
    for (const p of inProcess) {
      await p.proxy.close(500)
      p.detach()
      await p.engine.stop()
    }
    await cluster?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  // ---- client helpers: each refusal is recorded for the leak check ------------------------------------

  const pgClient = (
    port: number,
    user: string,
    password: string | undefined,
    extra: Partial<pg.ClientConfig> = {},
  ) =>
    new pg.Client({
      host: '127.0.0.1',
      port,
      user,
      database: 'freshet',
      ...(password === undefined ? {} : { password }),
      ...extra,
    })

  async function pgLogin(
    port: number,
    user: string,
    password: string | undefined,
    extra: Partial<pg.ClientConfig> = {},
  ): Promise<string> {
    const c = pgClient(port, user, password, extra)
    await c.connect()
    try {
      return (await c.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u
    } finally {
      await c.end()
    }
  }

  /** The error of a login that must fail; recorded for the leak check. */
  async function refused(login: Promise<string>, what: string): Promise<Refusal> {
    const err = await login.then(
      (u) => assert.fail(`${what}: logged in as ${u}`),
      (e: Error & { code?: string }) => e,
    )
    clientErrors.push(`${err.message} ${err.stack}`)
    return { code: err.code, message: err.message }
  }

  const pgRefusal = (port: number, user: string, password: string) =>
    refused(pgLogin(port, user, password), `pg as ${user}`)

  async function pgjsLogin(port: number, user: string, password: string): Promise<string> {
    const sql = postgres({
      host: '127.0.0.1',
      port,
      user,
      pass: password,
      database: 'freshet',
      max: 1,
      ssl: false,
      connect_timeout: 10,
      onnotice: () => {},
    })
    try {
      const rows = await sql<{ u: string }[]>`SELECT current_user AS u`
      return rows[0]!.u
    } finally {
      await sql.end({ timeout: 5 })
    }
  }

  const pgjsRefusal = (port: number, user: string, password: string) =>
    refused(pgjsLogin(port, user, password), `postgres.js as ${user}`)

  async function psql(port: number, user: string, password: string | undefined, sslmode = 'disable') {
    const auth = password === undefined ? user : `${user}:${encodeURIComponent(password)}`
    const r = await runCommand(
      'psql',
      [`postgres://${auth}@127.0.0.1:${port}/freshet?sslmode=${sslmode}`, '-Atc', 'SELECT current_user'],
      { PGCONNECT_TIMEOUT: '10', PGPASSWORD: '' },
    )
    if (r.code !== 0) clientErrors.push(r.stderr)
    return r
  }

  /** The refusal of a wrong password, as PostgreSQL words it, but from freshet. */
  function assertPasswordRefusal(r: Refusal, user: string, client: string): void {
    assert.equal(r.code, '28P01', `${client}: ${r.message}`)
    assert.equal(r.message, `freshet: password authentication failed for user "${user}"`, client)
  }

  // ---- scram-sha-256 ------------------------------------------------------------------------------------

  describe('scram-sha-256 (freshet proxy CLI)', () => {
    it('accepts the right password from pg, postgres.js and psql', async () => {
      assert.equal(await pgLogin(scramPort, 'app', APP_PW), 'app')
      assert.equal(await pgjsLogin(scramPort, 'app', APP_PW), 'app')
      const r = await psql(scramPort, 'app', APP_PW)
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stdout.trim(), 'app')
      // a user whose PostgreSQL role uses md5: SCRAM to freshet, md5 from freshet to the server
      assert.equal(await pgLogin(scramPort, 'app_md5', MD5_PW), 'app_md5')
      assert.equal(await pgjsLogin(scramPort, 'app_md5', MD5_PW), 'app_md5')
    })

    it('refuses a wrong password with 28P01 and a freshet: message, without the password', async () => {
      assertPasswordRefusal(await pgRefusal(scramPort, 'app', WRONG_PW), 'app', 'pg')
      assertPasswordRefusal(await pgjsRefusal(scramPort, 'app', WRONG_PW), 'app', 'postgres.js')
      // another configured user's password is not this user's
      assertPasswordRefusal(await pgRefusal(scramPort, 'app', MD5_PW), 'app', 'pg, other user password')
      const r = await psql(scramPort, 'app', WRONG_PW)
      assert.notEqual(r.code, 0)
      assert.match(r.stderr, /FATAL: {2}freshet: password authentication failed for user "app"/)
    })

    it('refuses an unknown user exactly like a wrong password', async () => {
      assertPasswordRefusal(await pgRefusal(scramPort, 'nobody', WRONG_PW), 'nobody', 'pg')
      assertPasswordRefusal(await pgjsRefusal(scramPort, 'nobody', WRONG_PW), 'nobody', 'postgres.js')
      // a role that exists in PostgreSQL but not in proxy.auth.users, with its PostgreSQL password
      assertPasswordRefusal(await pgRefusal(scramPort, 'app_pw', 'app_pw'), 'app_pw', 'pg, unlisted role')
      // even with a configured user's password
      assertPasswordRefusal(await pgRefusal(scramPort, 'nobody', APP_PW), 'nobody', 'pg, borrowed password')
    })

    it('gives unknown and known users the same SCRAM exchange: one mechanism, a stable 16-byte salt, 4096', async () => {
      const shape = async (user: string) => {
        const first = await scramFirst(scramPort, user)
        const a = attrs(first.serverFirst)
        // a proof that cannot be right: the outcome must be the password failure for both
        first.raw.write(saslResponse(`c=biws,r=${a.r},p=${Buffer.alloc(32, 7).toString('base64')}`))
        const { error, authenticated } = await first.raw.outcome()
        assert.equal(authenticated, false)
        assert.ok(error)
        clientErrors.push(error.message)
        assert.ok(a.r!.startsWith(first.clientNonce), `${user}: the server nonce extends the client's`)
        return {
          mechanisms: first.mechanisms,
          saltBytes: Buffer.from(a.s!, 'base64').length,
          salt: a.s,
          iterations: a.i,
          code: error.code,
          message: error.message.replace(user, 'USER'),
        }
      }
      const known1 = await shape('app')
      const known2 = await shape('app')
      const unknown1 = await shape('nobody')
      const unknown2 = await shape('nobody')
      const other = await shape('somebody_else')
      assert.equal(known1.salt, known2.salt, 'a known user keeps its salt')
      assert.equal(unknown1.salt, unknown2.salt, 'an unknown user must keep its salt too, or it stands out')
      assert.notEqual(unknown1.salt, other.salt, 'unknown users do not share one salt')
      const { salt: _k, ...knownShape } = known1
      const { salt: _u, ...unknownShape } = unknown1
      assert.deepEqual(unknownShape, knownShape)
      assert.deepEqual(knownShape, {
        mechanisms: ['SCRAM-SHA-256'],
        saltBytes: 16,
        iterations: '4096',
        code: '28P01',
        message: 'freshet: password authentication failed for user "USER"',
      })
    })

    it('refuses channel binding and garbage SASL, closing only that client', async () => {
      const other = pgClient(scramPort, 'app', APP_PW)
      await other.connect()
      try {
        const nonce = randomBytes(18).toString('base64')
        const mech = Buffer.from('SCRAM-SHA-256\0')
        const initial: [string, Buffer][] = [
          [
            'SCRAM-SHA-256-PLUS',
            saslInitialResponse('SCRAM-SHA-256-PLUS', `p=tls-server-end-point,,n=,r=${nonce}`),
          ],
          ['p= GS2 header', saslInitialResponse('SCRAM-SHA-256', `p=tls-server-end-point,,n=,r=${nonce}`)],
          ['unknown mechanism', saslInitialResponse('PLAIN', '\0app\0app')],
          ['authzid', saslInitialResponse('SCRAM-SHA-256', `n,a=postgres,n=,r=${nonce}`)],
          [
            'no client-first data',
            Buffer.concat([Buffer.from('p\0\0\0\x16'), mech, Buffer.from([255, 255, 255, 255])]),
          ],
          [
            'length beyond the message',
            Buffer.concat([
              Buffer.from('p\0\0\0\x19'),
              mech,
              Buffer.from([0, 0, 3, 232]),
              Buffer.from('n,,'),
            ]),
          ],
          ['random bytes', passwordMessage(randomBytes(48).toString('latin1'))],
          [
            'mechanism without NUL',
            Buffer.concat([Buffer.from('p\0\0\0\x11'), Buffer.from('SCRAM-SHA-256')]),
          ],
          ['bad nonce', saslInitialResponse('SCRAM-SHA-256', 'n,,n=,r=a,b\x01')],
          ['extensions', saslInitialResponse('SCRAM-SHA-256', `n,,m=ext,n=,r=${nonce}`)],
          ['a query instead of a password', queryMessage('SELECT 1')],
        ]
        for (const [what, message] of initial) {
          const raw = await RawClient.open(scramPort)
          raw.write(startupMessage({ user: 'app', database: 'freshet' }))
          assert.equal((await raw.next())?.code, 'R', what)
          raw.write(message)
          const { error, authenticated } = await raw.outcome()
          assert.equal(authenticated, false, what)
          assert.ok(error, `${what}: closed without an ErrorResponse`)
          clientErrors.push(error.message)
          assert.equal(error.severity, 'FATAL', what)
          assert.ok(
            ['08P01', '28000', '28P01'].includes(error.code),
            `${what}: ${error.code} ${error.message}`,
          )
          assert.match(error.message, /^freshet: /, what)
          assert.equal((await other.query('SELECT 1 AS x')).rows[0].x, 1, `after ${what}`)
        }
        // channel binding data claimed in the final message, a wrong nonce, a forged proof, garbage
        const finals: [string, (r: string) => string][] = [
          [
            'c= with channel binding',
            (r) => `c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws,r=${r},p=${'A'.repeat(43)}=`,
          ],
          ['nonce mismatch', () => `c=biws,r=${nonce}x,p=${Buffer.alloc(32).toString('base64')}`],
          ['no proof', (r) => `c=biws,r=${r}`],
          ['short proof', (r) => `c=biws,r=${r},p=AAAA`],
          ['zero proof', (r) => `c=biws,r=${r},p=${Buffer.alloc(32).toString('base64')}`],
          ['garbage', () => randomBytes(40).toString('latin1')],
        ]
        for (const [what, final] of finals) {
          const first = await scramFirst(scramPort, 'app')
          first.raw.write(saslResponse(final(attrs(first.serverFirst).r!)))
          const { error, authenticated } = await first.raw.outcome()
          assert.equal(authenticated, false, what)
          assert.ok(error, `${what}: closed without an ErrorResponse`)
          clientErrors.push(error.message)
          assert.ok(
            ['08P01', '28000', '28P01'].includes(error.code),
            `${what}: ${error.code} ${error.message}`,
          )
          assert.match(error.message, /^freshet: /, what)
          assert.equal((await other.query('SELECT 1 AS x')).rows[0].x, 1, `after ${what}`)
        }
        // and a well-behaved client still logs in afterwards
        assert.equal(await pgLogin(scramPort, 'app', APP_PW), 'app')
      } finally {
        await other.end()
      }
    })

    it('lets in a client that supports channel binding when it is not offered (y,, header)', async () => {
      // pg with enableChannelBinding picks SCRAM-SHA-256-PLUS only if offered, else sends 'y,,'
      assert.equal(await pgLogin(scramPort, 'app', APP_PW, { enableChannelBinding: true }), 'app')
      assert.equal(
        await pgLogin(scramPort, 'app', APP_PW, {
          enableChannelBinding: true,
          ssl: { rejectUnauthorized: false },
        }),
        'app',
      )
    })

    it('a raw SCRAM login with our own client completes and verifies the server signature', async () => {
      const raw = await RawClient.open(scramPort)
      raw.write(startupMessage({ user: 'app', database: 'freshet' }))
      assert.equal(decodeAuthentication((await raw.next())!.body).kind, 'sasl')
      const client = new ScramClient(APP_PW)
      raw.write(saslInitialResponse('SCRAM-SHA-256', client.clientFirst()))
      const cont = decodeAuthentication((await raw.next())!.body) as { kind: string; data: Buffer }
      assert.equal(cont.kind, 'sasl-continue')
      raw.write(saslResponse(client.clientFinal(cont.data.toString('utf8'))))
      const fin = decodeAuthentication((await raw.next())!.body) as { kind: string; data: Buffer }
      assert.equal(fin.kind, 'sasl-final')
      assert.equal(client.verifyServerFinal(fin.data.toString('utf8')), true)
      assert.equal(decodeAuthentication((await raw.next())!.body).kind, 'ok')
      raw.close()
    })
  })

  // ---- stored verifiers -------------------------------------------------------------------------------

  describe('a user configured only by a SCRAM verifier', () => {
    it('logs in with the password that is not in the config (scram mode: pg, postgres.js, psql)', async () => {
      assert.match(VAULT_VERIFIER, /^SCRAM-SHA-256\$4096:/)
      assert.equal(await pgLogin(scramPort, 'vault', VAULT_PW), 'vault')
      assert.equal(await pgjsLogin(scramPort, 'vault', VAULT_PW), 'vault')
      const r = await psql(scramPort, 'vault', VAULT_PW)
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stdout.trim(), 'vault')
      assertPasswordRefusal(await pgRefusal(scramPort, 'vault', WRONG_PW), 'vault', 'pg')
      // the verifier itself is not a password
      assertPasswordRefusal(await pgRefusal(scramPort, 'vault', VAULT_VERIFIER), 'vault', 'pg, verifier')
    })

    it('gets SCRAM under md5 mode, as in PostgreSQL', async () => {
      const first = await RawClient.open(md5Port)
      first.write(startupMessage({ user: 'vault', database: 'freshet' }))
      const offer = decodeAuthentication((await first.next())!.body)
      first.close()
      assert.equal(offer.kind, 'sasl')
      assert.equal(await pgLogin(md5Port, 'vault', VAULT_PW), 'vault')
      assertPasswordRefusal(await pgRefusal(md5Port, 'vault', WRONG_PW), 'vault', 'pg under md5')
    })
  })

  // ---- md5 ----------------------------------------------------------------------------------------------

  describe('md5 mode', () => {
    it('asks for md5 and accepts the right password from pg, postgres.js and psql', async () => {
      const raw = await RawClient.open(md5Port)
      raw.write(startupMessage({ user: 'app', database: 'freshet' }))
      assert.equal(decodeAuthentication((await raw.next())!.body).kind, 'md5')
      raw.close()
      for (const [user, pw] of [
        ['app', APP_PW],
        ['app_md5', MD5_PW],
      ] as const) {
        assert.equal(await pgLogin(md5Port, user, pw), user)
        assert.equal(await pgjsLogin(md5Port, user, pw), user)
        const r = await psql(md5Port, user, pw)
        assert.equal(r.code, 0, r.stderr)
        assert.equal(r.stdout.trim(), user)
      }
    })

    it('refuses a wrong password and an unknown user the same way (28P01)', async () => {
      assertPasswordRefusal(await pgRefusal(md5Port, 'app', WRONG_PW), 'app', 'pg')
      assertPasswordRefusal(await pgjsRefusal(md5Port, 'app_md5', WRONG_PW), 'app_md5', 'postgres.js')
      assertPasswordRefusal(await pgRefusal(md5Port, 'nobody', WRONG_PW), 'nobody', 'pg, unknown')
      assertPasswordRefusal(await pgjsRefusal(md5Port, 'nobody', APP_PW), 'nobody', 'postgres.js, unknown')
      // the unknown user is challenged like a known one, then refused
      const raw = await RawClient.open(md5Port)
      raw.write(startupMessage({ user: 'nobody', database: 'freshet' }))
      const challenge = decodeAuthentication((await raw.next())!.body)
      assert.equal(challenge.kind, 'md5')
      // the stored hash is password-equivalent in md5, but never a password sent in clear
      raw.write(passwordMessage(APP_MD5_HASH))
      const { error, authenticated } = await raw.outcome()
      assert.equal(authenticated, false)
      assert.equal(error?.code, '28P01')
      const r = await psql(md5Port, 'app', WRONG_PW)
      assert.notEqual(r.code, 0)
      assert.match(r.stderr, /freshet: password authentication failed for user "app"/)
    })
  })

  // ---- trust --------------------------------------------------------------------------------------------

  describe('trust mode', () => {
    it('lets every listed user in without asking for a password', async () => {
      for (const user of ['app', 'app_md5', 'vault']) {
        // no password at all: pg would throw if it were asked for one
        assert.equal(await pgLogin(trustPort, user, undefined), user)
        // a wrong password is never asked for, so never checked
        assert.equal(await pgjsLogin(trustPort, user, WRONG_PW), user)
        const r = await psql(trustPort, user, undefined)
        assert.equal(r.code, 0, r.stderr)
        assert.equal(r.stdout.trim(), user)
      }
      const raw = await RawClient.open(trustPort)
      raw.write(startupMessage({ user: 'app', database: 'freshet' }))
      assert.equal(decodeAuthentication((await raw.next())!.body).kind, 'ok')
      raw.close()
    })

    it('refuses a user not in proxy.auth.users', async () => {
      // `postgres` is trusted by the cluster and is the user of the node URLs, but not a proxy user
      const r = await refused(pgLogin(trustPort, 'postgres', undefined), 'unlisted postgres under trust')
      assert.equal(r.code, '28P01', r.message)
    })
  })

  // ---- TLS ----------------------------------------------------------------------------------------------

  describe('TLS to clients', () => {
    it('with proxy.tls: pg and postgres.js get a TLS socket and SCRAM still decides', async () => {
      const c = pgClient(scramPort, 'app', APP_PW, { ssl: { rejectUnauthorized: false } })
      await c.connect()
      try {
        const stream = (c as unknown as { connection: { stream: Socket } }).connection.stream
        assert.ok(stream instanceof TLSSocket, 'pg is not on a TLS socket')
        assert.equal(stream.encrypted, true)
        assert.equal(stream.getPeerCertificate().subject.CN, 'localhost')
        assert.equal((await c.query('SELECT 1 AS x')).rows[0].x, 1)
      } finally {
        await c.end()
      }
      const sql = postgres({
        host: '127.0.0.1',
        port: scramPort,
        user: 'vault',
        pass: VAULT_PW,
        database: 'freshet',
        max: 1,
        ssl: { rejectUnauthorized: false },
        connect_timeout: 10,
      })
      try {
        assert.equal((await sql<{ u: string }[]>`SELECT current_user AS u`)[0]!.u, 'vault')
      } finally {
        await sql.end({ timeout: 5 })
      }
      const overTls = pgLogin(scramPort, 'app', WRONG_PW, { ssl: { rejectUnauthorized: false } })
      assertPasswordRefusal(await refused(overTls, 'wrong password over TLS'), 'app', 'pg over TLS')
    })

    it('without proxy.tls: SSLRequest gets N, sslmode=require fails, prefer and disable work', async () => {
      const socket = netConnect({ host: '127.0.0.1', port: md5Port })
      try {
        const read = () => new Promise<Buffer>((r) => socket.once('data', r))
        let answer = read()
        socket.write(SSL_REQUEST)
        assert.deepEqual(await answer, Buffer.from('N'))
        // the connection goes on in clear: the startup gets the md5 challenge (R, length 12, code 5)
        answer = read()
        socket.write(startupMessage({ user: 'app', database: 'freshet' }))
        const challenge = await answer
        assert.equal(challenge.subarray(0, 1).toString(), 'R')
        assert.equal(decodeAuthentication(challenge.subarray(5)).kind, 'md5')
      } finally {
        socket.destroy()
      }
      const required = await psql(md5Port, 'app', APP_PW, 'require')
      assert.notEqual(required.code, 0, 'sslmode=require connected to a proxy without TLS')
      assert.match(required.stderr, /server does not support SSL/i)
      for (const mode of ['prefer', 'disable']) {
        const r = await psql(md5Port, 'app', APP_PW, mode)
        assert.equal(r.code, 0, `${mode}: ${r.stderr}`)
        assert.equal(r.stdout.trim(), 'app')
      }
      const withSsl = pgLogin(md5Port, 'app', APP_PW, { ssl: { rejectUnauthorized: false } })
      assert.match(
        (await refused(withSsl, 'pg with ssl, proxy without TLS')).message,
        /does not support SSL/i,
      )
    })
  })

  // ---- no secret anywhere -------------------------------------------------------------------------------

  describe('secrets', () => {
    it('no password in logs (CLI stdout/stderr, engine log events, pino), client errors, config or metrics', async () => {
      // one more failed and one more successful login per mode, so the last lines are about auth
      for (const port of [scramPort, md5Port]) {
        await pgRefusal(port, 'app', WRONG_PW)
        assert.equal(await pgLogin(port, 'app', APP_PW), 'app')
      }
      const bodies: Record<string, string> = {}
      for (const path of ['/api/v1/config', '/metrics']) {
        const res = await fetch(`${adminUrl}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } })
        assert.equal(res.status, 200, path)
        bodies[path] = await res.text()
      }
      // the CLI's log lines arrive through a pipe: a last refusal with a marker user tells us all came
      await pgRefusal(scramPort, 'last_marker', WRONG_PW)
      await eventually('the CLI logged the last failed login', () =>
        cliOutput.includes('"user":"last_marker"'),
      )
      assert.match(cliOutput, /client authentication failed/)
      // an operator can tell why and from where without the password: client address, method, reason
      const line = cliOutput.split('\n').find((l) => l.includes('"user":"last_marker"'))!
      const fields = JSON.parse(line.slice(line.indexOf('{'))) as Record<string, unknown>
      assert.match(String(fields.client), /^127\.0\.0\.1:\d+$/)
      assert.equal(fields.method, 'scram-sha-256')
      assert.match(String(fields.reason), /not in proxy\.auth\.users/)
      assert.match(
        logged.join('\n'),
        /client authentication failed/,
        'the in-process proxies logged no auth failure: the check would prove nothing',
      )
      assert.ok(clientErrors.length > 20, 'few refusals were seen: the check would prove little')
      const texts: Record<string, string> = {
        ...bodies,
        'CLI stdout+stderr': cliOutput,
        'in-process logs': logged.join('\n'),
        'client errors': clientErrors.join('\n'),
      }
      for (const [where, text] of Object.entries(texts)) {
        assert.deepEqual(leaks(text), [], `a secret appears in ${where}`)
      }
      // the config still lists the users, redacted rather than dropped
      const config = JSON.parse(bodies['/api/v1/config']!) as {
        proxy: { auth: { users: Record<string, { password: string }> } }
      }
      assert.deepEqual(Object.keys(config.proxy.auth.users).sort(), ['app', 'app_md5', 'vault'])
      for (const u of Object.values(config.proxy.auth.users)) assert.equal(u.password, '***')
    })
  })
})
