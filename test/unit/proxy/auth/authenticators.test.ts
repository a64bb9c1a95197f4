// Client authentication (SCRAM-SHA-256, md5, trust) against our own and pg's clients, and server login.

import assert from 'node:assert/strict'
import { createHash, createHmac } from 'node:crypto'
import { createRequire } from 'node:module'
import { describe, it } from 'node:test'
import {
  AUTHENTICATION_OK,
  authenticationSASL,
  authenticationSASLContinue,
  authenticationSASLFinal,
  BackendCode,
  FrameReader,
  FrontendCode,
  saslInitialResponse,
  saslResponse,
} from '../../../../src/protocol/index.js'
import {
  type AuthStep,
  type ClientAuthenticator,
  createClientAuthenticator,
  formatScramSecret,
  hmac,
  Md5Authenticator,
  md5PasswordHash,
  md5SaltedResponse,
  parseScramSecret,
  prepareCredential,
  ScramAuthenticator,
  ServerLogin,
  scramKeys,
  scramSecretFromPassword,
  xor,
} from '../../../../src/proxy/auth/index.js'

const require = createRequire(import.meta.url)
const pgSasl = require('pg/lib/crypto/sasl.js') as {
  startSession(mechanisms: string[], stream?: unknown): { response: string; message: string }
  continueSession(session: object, password: string, serverData: string): Promise<void>
  finalizeSession(session: object, serverData: string): void
}

const PASSWORD = 'correct horse battery staple'
const WRONG = 'Tr0ub4dor&3'

/** The single message in `whole`, checked against the expected code. */
function body(whole: Buffer, code: number): Buffer {
  const out: Buffer[] = []
  new FrameReader().feed(whole, (c, b) => {
    assert.equal(c, code)
    out.push(b)
  })
  assert.equal(out.length, 1)
  return out[0]!
}

/** Runs a whole exchange between a client authenticator (server side) and a ServerLogin (client side). */
function exchange(server: ClientAuthenticator, login: ServerLogin): { server: AuthStep; client: AuthStep } {
  let serverStep = server.start()
  let clientStep: AuthStep = {}
  for (let round = 0; round < 10; round++) {
    const toClient = serverStep.send ?? []
    for (const m of toClient) {
      clientStep = login.receive(body(m, BackendCode.Authentication))
      if (clientStep.done) break
    }
    if (serverStep.done || clientStep.done) return { server: serverStep, client: clientStep }
    const toServer = clientStep.send ?? []
    assert.equal(toServer.length, 1)
    serverStep = server.receive(body(toServer[0]!, FrontendCode.Password))
  }
  throw new Error('exchange did not finish')
}

function assertNoPassword(step: AuthStep): void {
  for (const pw of [PASSWORD, WRONG]) assert.ok(!step.error?.includes(pw), 'error text leaks a password')
}

describe('SCRAM-SHA-256 server', () => {
  const secret = scramSecretFromPassword(PASSWORD)

  it('accepts our client with the right password, and the client verifies the server', () => {
    const { server, client } = exchange(
      new ScramAuthenticator('app', secret),
      new ServerLogin({ user: 'app', password: PASSWORD }),
    )
    assert.deepEqual([server.done, server.ok], [true, true])
    assert.deepEqual(server.send?.[1], AUTHENTICATION_OK)
    assert.deepEqual([client.done, client.ok], [true, true])
  })

  it('refuses our client with a wrong password: 28P01, no password in the message', () => {
    const { server } = exchange(
      new ScramAuthenticator('app', secret),
      new ServerLogin({ user: 'app', password: WRONG }),
    )
    assert.deepEqual([server.done, server.ok, server.sqlState], [true, false, '28P01'])
    assert.equal(server.error, 'freshet: password authentication failed for user "app"')
    assertNoPassword(server)
  })

  for (const [label, password, ok] of [
    ['right', PASSWORD, true],
    ['wrong', WRONG, false],
  ] as const) {
    it(`works with pg's own SCRAM client (${label} password)`, async () => {
      const auth = new ScramAuthenticator('app', secret)
      const first = auth.start()
      const mechanisms = (() => {
        const b = body(first.send![0]!, BackendCode.Authentication)
        return b.toString('utf8', 4).split('\0').filter(Boolean)
      })()
      const session = pgSasl.startSession(mechanisms)
      const cont = auth.receive(
        body(saslInitialResponse('SCRAM-SHA-256', session.response), FrontendCode.Password),
      )
      const serverFirst = body(cont.send![0]!, BackendCode.Authentication).subarray(4).toString()
      await pgSasl.continueSession(session, password, serverFirst)
      const fin = auth.receive(body(saslResponse(session.response), FrontendCode.Password))
      assert.equal(fin.done, true)
      assert.equal(fin.ok, ok)
      if (ok) {
        const serverFinal = body(fin.send![0]!, BackendCode.Authentication).subarray(4).toString()
        pgSasl.finalizeSession(session, serverFinal) // throws if our server signature is wrong
      } else {
        assert.equal(fin.sqlState, '28P01')
        assertNoPassword(fin)
      }
    })
  }

  it('accepts a stored SCRAM-SHA-256$ verifier string and round-trips its format', () => {
    const text = formatScramSecret(secret)
    assert.match(text, /^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/)
    const parsed = parseScramSecret(text)
    assert.deepEqual(parsed, secret)
    const cred = prepareCredential('app', text)
    assert.equal(cred.md5, null)
    const { server } = exchange(
      createClientAuthenticator('scram-sha-256', 'app', cred),
      new ServerLogin({ user: 'app', password: PASSWORD }),
    )
    assert.equal(server.ok, true)
    assert.equal(parseScramSecret('SCRAM-SHA-256$4096:c2FsdA==$short:short'), null)
    assert.equal(parseScramSecret('plain password'), null)
  })

  it('runs a mock exchange for an unknown user and then fails like a wrong password', () => {
    const { server } = exchange(
      createClientAuthenticator('scram-sha-256', 'nobody', null),
      new ServerLogin({ user: 'nobody', password: PASSWORD }),
    )
    assert.deepEqual([server.ok, server.sqlState], [false, '28P01'])
  })

  it('matches the RFC 7677 test vector (user "user", password "pencil")', () => {
    const clientFirstBare = 'n=user,r=rOprNGfwEbeRWgbNEkqO'
    const serverFirst =
      'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'
    const withoutProof = 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0'
    const keys = scramKeys('pencil', Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'), 4096)
    const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`
    const proof = xor(keys.clientKey, hmac(keys.storedKey, authMessage)).toString('base64')
    assert.equal(proof, 'dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=')
    assert.equal(
      hmac(keys.serverKey, authMessage).toString('base64'),
      '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
    )
  })

  it('refuses other mechanisms, channel binding, authzid, a tampered nonce or proof, without throwing', () => {
    const start = () => {
      const a = new ScramAuthenticator('app', secret)
      a.start()
      return a
    }
    const first = (a: ScramAuthenticator, data: string, mech = 'SCRAM-SHA-256') =>
      a.receive(body(saslInitialResponse(mech, data), FrontendCode.Password))
    assert.equal(first(start(), 'n,,n=*,r=abc', 'SCRAM-SHA-256-PLUS').sqlState, '08P01')
    assert.equal(first(start(), 'p=tls-server-end-point,,n=*,r=abc').ok, false)
    assert.equal(first(start(), 'n,a=admin,n=*,r=abc').ok, false)
    assert.equal(first(start(), 'n,,m=ext,n=*,r=abc').ok, false)
    assert.equal(first(start(), 'n,,n=*,r=ab,c').ok, false)

    const a = start()
    const cont = first(a, 'n,,n=*,r=clientnonce')
    const serverFirst = body(cont.send![0]!, BackendCode.Authentication).subarray(4).toString()
    const nonce = serverFirst.split(',')[0]!.slice(2)
    const final = a.receive(
      body(
        saslResponse(`c=biws,r=${nonce}x,p=${Buffer.alloc(32).toString('base64')}`),
        FrontendCode.Password,
      ),
    )
    assert.deepEqual([final.done, final.ok, final.sqlState], [true, false, '08P01'])

    const b = start()
    const cont2 = first(b, 'n,,n=*,r=clientnonce')
    const nonce2 = body(cont2.send![0]!, BackendCode.Authentication)
      .subarray(4)
      .toString()
      .split(',')[0]!
      .slice(2)
    const zeroProof = b.receive(
      body(
        saslResponse(`c=biws,r=${nonce2},p=${Buffer.alloc(32).toString('base64')}`),
        FrontendCode.Password,
      ),
    )
    assert.deepEqual([zeroProof.ok, zeroProof.sqlState], [false, '28P01'])
    // anything after done is a protocol violation
    assert.equal(b.receive(Buffer.from('x')).ok, false)
  })

  it('never throws on random input at any state (fixed seed)', () => {
    let s = 99
    const rand = () => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0
      return s / 4294967296
    }
    for (let n = 0; n < 500; n++) {
      const a = new ScramAuthenticator('app', secret)
      a.start()
      if (n % 2 === 1)
        a.receive(body(saslInitialResponse('SCRAM-SHA-256', 'n,,n=*,r=abc'), FrontendCode.Password))
      const junk = Buffer.alloc(Math.floor(rand() * 60))
      for (let i = 0; i < junk.length; i++) junk[i] = Math.floor(rand() * 256)
      const step = a.receive(junk)
      assert.equal(step.done, true)
      assert.equal(step.ok, false)
    }
  })
})

describe('md5 and trust', () => {
  it('md5 hash matches the documented formula, computed directly', () => {
    const inner = createHash('md5').update(`${PASSWORD}app`).digest('hex')
    assert.equal(md5PasswordHash('app', PASSWORD), `md5${inner}`)
    const salt = Buffer.from([0xde, 0xad, 0xbe, 0xef])
    const expected = `md5${createHash('md5')
      .update(Buffer.concat([Buffer.from(inner), salt]))
      .digest('hex')}`
    assert.equal(md5SaltedResponse(md5PasswordHash('app', PASSWORD), salt), expected)
    // drive the authenticator with the precomputed answer
    const auth = new Md5Authenticator('app', md5PasswordHash('app', PASSWORD))
    const start = auth.start()
    const challenge = body(start.send![0]!, BackendCode.Authentication)
    const realSalt = challenge.subarray(4, 8)
    const answer = `md5${createHash('md5')
      .update(Buffer.concat([Buffer.from(inner), realSalt]))
      .digest('hex')}`
    const pw = Buffer.concat([Buffer.from('p'), Buffer.alloc(4), Buffer.from(`${answer}\0`)])
    pw.writeUInt32BE(pw.length - 1, 1)
    assert.deepEqual(auth.receive(body(pw, FrontendCode.Password)), {
      send: [AUTHENTICATION_OK],
      done: true,
      ok: true,
    })
  })

  it('md5 server against our client: right and wrong password, unknown user', () => {
    const cred = prepareCredential('app', PASSWORD)
    const good = exchange(
      createClientAuthenticator('md5', 'app', cred),
      new ServerLogin({ user: 'app', password: PASSWORD }),
    )
    assert.equal(good.server.ok, true)
    assert.equal(good.client.ok, true)
    const bad = exchange(
      createClientAuthenticator('md5', 'app', cred),
      new ServerLogin({ user: 'app', password: WRONG }),
    )
    assert.deepEqual([bad.server.ok, bad.server.sqlState], [false, '28P01'])
    assertNoPassword(bad.server)
    const unknown = exchange(
      createClientAuthenticator('md5', 'ghost', null),
      new ServerLogin({ user: 'ghost', password: PASSWORD }),
    )
    assert.equal(unknown.server.ok, false)
    // a stored md5 hash in config works as the password
    const stored = prepareCredential('app', md5PasswordHash('app', PASSWORD))
    assert.equal(stored.scram, null)
    assert.equal(
      exchange(
        createClientAuthenticator('md5', 'app', stored),
        new ServerLogin({ user: 'app', password: PASSWORD }),
      ).server.ok,
      true,
    )
  })

  it('md5 method with a SCRAM-only user runs SCRAM, as PostgreSQL does', () => {
    const cred = prepareCredential('app', formatScramSecret(scramSecretFromPassword(PASSWORD)))
    const auth = createClientAuthenticator('md5', 'app', cred)
    assert.ok(auth instanceof ScramAuthenticator)
  })

  it('trust accepts at once', () => {
    const { server, client } = exchange(
      createClientAuthenticator('trust', 'app', null),
      new ServerLogin({ user: 'app' }),
    )
    assert.deepEqual([server.done, server.ok, client.ok], [true, true, true])
  })

  it('trust refuses a user freshet does not list, like a wrong password, when users are listed', () => {
    const step = createClientAuthenticator('trust', 'postgres', null, { trustListedOnly: true }).start()
    assert.deepEqual([step.done, step.ok, step.sqlState], [true, false, '28P01'])
    assert.equal(step.error, 'freshet: password authentication failed for user "postgres"')
    const listed = createClientAuthenticator('trust', 'app', prepareCredential('app', PASSWORD), {
      trustListedOnly: true,
    }).start()
    assert.deepEqual([listed.done, listed.ok], [true, true])
  })
})

describe('ServerLogin (the proxy logging in to PostgreSQL)', () => {
  it('answers cleartext with the password', () => {
    const login = new ServerLogin({ user: 'app', password: PASSWORD })
    const step = login.receive(Buffer.from([0, 0, 0, 3]))
    assert.equal(body(step.send![0]!, FrontendCode.Password).toString(), `${PASSWORD}\0`)
  })

  it('fails without a password, without SCRAM-SHA-256 on offer, and on a bad server signature', () => {
    const noPw = new ServerLogin({ user: 'app' }).receive(Buffer.from([0, 0, 0, 3]))
    assert.equal(noPw.ok, false)
    const plusOnly = new ServerLogin({ user: 'app', password: PASSWORD }).receive(
      body(authenticationSASL(['SCRAM-SHA-256-PLUS']), BackendCode.Authentication),
    )
    assert.deepEqual([plusOnly.done, plusOnly.ok], [true, false])

    // an impostor server that does not know the verifier
    const login = new ServerLogin({ user: 'app', password: PASSWORD })
    const init = login.receive(body(authenticationSASL(['SCRAM-SHA-256']), BackendCode.Authentication))
    const clientFirst = body(init.send![0]!, FrontendCode.Password).toString(
      'utf8',
      'SCRAM-SHA-256'.length + 5,
    )
    const clientNonce = clientFirst.split('r=')[1]!
    const serverFirst = `r=${clientNonce}impostor,s=${Buffer.from('salt').toString('base64')},i=4096`
    const resp = login.receive(body(authenticationSASLContinue(serverFirst), BackendCode.Authentication))
    assert.equal(resp.send?.length, 1)
    const forged = createHmac('sha256', 'guess').update('x').digest('base64')
    const fin = login.receive(body(authenticationSASLFinal(`v=${forged}`), BackendCode.Authentication))
    assert.deepEqual([fin.done, fin.ok], [true, false])
    assertNoPassword(fin)
  })

  it('refuses AuthenticationOk before SCRAM completes, and a nonce that does not extend its own', () => {
    const login = new ServerLogin({ user: 'app', password: PASSWORD })
    login.receive(body(authenticationSASL(['SCRAM-SHA-256']), BackendCode.Authentication))
    assert.equal(login.receive(body(AUTHENTICATION_OK, BackendCode.Authentication)).ok, false)
    const other = new ServerLogin({ user: 'app', password: PASSWORD })
    other.receive(body(authenticationSASL(['SCRAM-SHA-256']), BackendCode.Authentication))
    const bad = other.receive(
      body(authenticationSASLContinue('r=notmine,s=c2FsdA==,i=4096'), BackendCode.Authentication),
    )
    assert.deepEqual([bad.done, bad.ok], [true, false])
    assert.match(bad.error ?? '', /nonce/)
    const huge = new ServerLogin({ user: 'app', password: PASSWORD })
    const init = huge.receive(body(authenticationSASL(['SCRAM-SHA-256']), BackendCode.Authentication))
    const nonce = body(init.send![0]!, FrontendCode.Password).toString().split('r=')[1]!.replace(/\0$/, '')
    const step = huge.receive(
      body(authenticationSASLContinue(`r=${nonce}x,s=c2FsdA==,i=99999999`), BackendCode.Authentication),
    )
    assert.equal(step.ok, false)
    assert.match(step.error ?? '', /iteration count 99999999 exceeds/)
  })
})
