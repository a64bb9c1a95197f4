// SCRAM-SHA-256 client authentication (RFC 5802/7677) as PostgreSQL does it, without channel binding.

import { randomBytes, timingSafeEqual } from 'node:crypto'
import {
  AUTHENTICATION_OK,
  authenticationSASL,
  authenticationSASLContinue,
  authenticationSASLFinal,
  decodeSASLInitialResponse,
} from '../../protocol/index.js'
import {
  type AuthStep,
  authFailure,
  INVALID_AUTHORIZATION,
  PROTOCOL_VIOLATION,
  passwordFailed,
} from './auth-step.js'
import type { ClientAuthenticator } from './client-authenticator.js'
import { DEFAULT_SCRAM_ITERATIONS, hmac, type ScramSecret, sha256, xor } from './scram-secret.js'

export const SCRAM_SHA_256 = 'SCRAM-SHA-256'
// PostgreSQL's SCRAM_RAW_NONCE_LEN
const NONCE_BYTES = 18
// RFC 5802 printable: %x21-2B / %x2D-7E, i.e. visible ASCII but ','
const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]+$/
// per-process key for mock salts: an unknown user gets the same salt every time, unguessable from outside
const MOCK_KEY = randomBytes(32)

/** A verifier no proof can match, for unknown users (PostgreSQL's mock authentication). */
function mockSecret(user: string): ScramSecret {
  return {
    iterations: DEFAULT_SCRAM_ITERATIONS,
    salt: sha256(Buffer.concat([MOCK_KEY, Buffer.from(user)])).subarray(0, 16),
    storedKey: randomBytes(32),
    serverKey: randomBytes(32),
  }
}

/**
 * The server side of SCRAM-SHA-256: AuthenticationSASL, then SASLContinue with the salt and iterations,
 * then a constant-time check of the client proof and SASLFinal plus AuthenticationOk. Only the 'n,,' and
 * 'y,,' GS2 headers are accepted (no channel binding, SCRAM-SHA-256-PLUS is not offered); the user name
 * inside the SCRAM message is ignored, as PostgreSQL ignores it, in favour of the startup user.
 *
 * @example
 * const auth = new ScramAuthenticator('app', scramSecretFromPassword('secret'))
 * auth.start()          // { send: [AuthenticationSASL] }
 * auth.receive(body)    // SASLInitialResponse -> { send: [AuthenticationSASLContinue] }
 * auth.receive(body)    // SASLResponse -> { send: [SASLFinal, AuthenticationOk], done: true, ok: true }
 */
export class ScramAuthenticator implements ClientAuthenticator {
  readonly #user: string
  readonly #secret: ScramSecret
  readonly #mock: boolean
  #state: 'new' | 'started' | 'continued' | 'done' = 'new'
  #gs2Header = ''
  #clientFirstBare = ''
  #serverFirst = ''
  #nonce = ''

  /** `secret` null: an unknown user, who goes through the whole exchange and then fails. */
  constructor(user: string, secret: ScramSecret | null) {
    this.#user = user
    this.#mock = secret === null
    this.#secret = secret ?? mockSecret(user)
  }

  start(): AuthStep {
    this.#state = 'started'
    return { send: [authenticationSASL([SCRAM_SHA_256])] }
  }

  receive(body: Buffer): AuthStep {
    if (this.#state === 'started') return this.#first(body)
    if (this.#state === 'continued') return this.#final(body)
    this.#state = 'done'
    return authFailure('unexpected SASL message', PROTOCOL_VIOLATION)
  }

  #malformed(what: string): AuthStep {
    this.#state = 'done'
    return authFailure(`malformed SCRAM message: ${what}`, PROTOCOL_VIOLATION)
  }

  #first(body: Buffer): AuthStep {
    let mechanism: string
    let data: Buffer | null
    try {
      ;({ mechanism, data } = decodeSASLInitialResponse(body))
    } catch {
      return this.#malformed('bad SASLInitialResponse')
    }
    if (mechanism !== SCRAM_SHA_256) {
      this.#state = 'done'
      return authFailure('client selected an invalid SASL authentication mechanism', PROTOCOL_VIOLATION)
    }
    if (data === null) return this.#malformed('no client-first-message')
    const text = data.toString('utf8')
    // gs2-header: cbind flag ('n' no support, 'y' supported but not offered, 'p=' in use), authzid, ','
    if (text.startsWith('p=')) {
      this.#state = 'done'
      return authFailure('channel binding is not supported', INVALID_AUTHORIZATION)
    }
    if (!text.startsWith('n,') && !text.startsWith('y,')) return this.#malformed('bad GS2 header')
    if (text[2] !== ',') {
      this.#state = 'done'
      return authFailure('client uses authorization identity, but it is not supported', PROTOCOL_VIOLATION)
    }
    // client-first-message-bare: n=<user>,r=<nonce> with no extensions (PostgreSQL refuses 'm=' and extras)
    const bare = text.slice(3)
    const parts = bare.split(',')
    if (parts.length !== 2 || !parts[0]!.startsWith('n=') || !parts[1]!.startsWith('r=')) {
      return this.#malformed('bad client-first-message')
    }
    const clientNonce = parts[1]!.slice(2)
    if (!PRINTABLE.test(clientNonce)) return this.#malformed('bad client nonce')
    this.#gs2Header = text.slice(0, 3)
    this.#clientFirstBare = bare
    this.#nonce = clientNonce + randomBytes(NONCE_BYTES).toString('base64')
    this.#serverFirst = `r=${this.#nonce},s=${this.#secret.salt.toString('base64')},i=${this.#secret.iterations}`
    this.#state = 'continued'
    return { send: [authenticationSASLContinue(this.#serverFirst)] }
  }

  #final(body: Buffer): AuthStep {
    this.#state = 'done'
    // client-final-message: c=<base64 gs2 header>,r=<nonce>[,extensions],p=<base64 proof>
    const text = body.toString('utf8')
    const proofAt = text.lastIndexOf(',p=')
    if (proofAt < 0) return this.#malformed('no proof')
    const withoutProof = text.slice(0, proofAt)
    const attrs = withoutProof.split(',')
    if (attrs[0] !== `c=${Buffer.from(this.#gs2Header).toString('base64')}`) {
      return this.#malformed('unexpected channel binding data')
    }
    if (attrs[1] !== `r=${this.#nonce}`) return this.#malformed('nonce mismatch')
    const proofText = text.slice(proofAt + 3)
    const proof = Buffer.from(proofText, 'base64')
    if (proof.length !== 32 || proof.toString('base64') !== proofText) return this.#malformed('bad proof')
    const authMessage = `${this.#clientFirstBare},${this.#serverFirst},${withoutProof}`
    // ClientKey = proof XOR HMAC(StoredKey, AuthMessage); the client knew the password iff H(ClientKey) = StoredKey
    const clientKey = xor(proof, hmac(this.#secret.storedKey, authMessage))
    const matches = timingSafeEqual(sha256(clientKey), this.#secret.storedKey)
    if (this.#mock) return passwordFailed(this.#user, 'user not in proxy.auth.users')
    if (!matches) return passwordFailed(this.#user, 'wrong password (SCRAM proof does not match)')
    const serverSignature = hmac(this.#secret.serverKey, authMessage).toString('base64')
    return {
      send: [authenticationSASLFinal(`v=${serverSignature}`), AUTHENTICATION_OK],
      done: true,
      ok: true,
    }
  }
}
