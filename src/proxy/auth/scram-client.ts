// The client side of SCRAM-SHA-256, for the proxy logging in to PostgreSQL: no sockets, just strings.

import { randomBytes, timingSafeEqual } from 'node:crypto'
import { hmac, scramKeys, sha256, xor } from './scram-secret.js'

/** Upper bound on the server's iteration count, as pg's `scramMaxIterations` default. */
export const DEFAULT_MAX_SCRAM_ITERATIONS = 100_000
const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]+$/
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/

// PBKDF2 is the slow part and a role's salt and iterations do not change between logins: every pooled
// connection to the same server reuses the keys. Keyed by a hash so the map holds no password text.
const keyCache = new Map<string, ReturnType<typeof scramKeys>>()
const KEY_CACHE_SIZE = 64

function cachedKeys(password: string, salt: Buffer, iterations: number): ReturnType<typeof scramKeys> {
  const id = `${iterations}:${salt.toString('base64')}:${sha256(password).toString('base64')}`
  let keys = keyCache.get(id)
  if (!keys) {
    keys = scramKeys(password, salt, iterations)
    if (keyCache.size >= KEY_CACHE_SIZE) keyCache.delete(keyCache.keys().next().value!)
    keyCache.set(id, keys)
  }
  return keys
}

function attributes(message: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const part of message.split(',')) {
    if (part.length < 2 || part[1] !== '=') throw new Error('SCRAM: invalid attribute in server message')
    out.set(part[0]!, part.slice(2))
  }
  return out
}

/**
 * One SCRAM-SHA-256 login without channel binding (GS2 header 'n,,'). Methods throw an Error whose
 * message never contains the password.
 * @example
 * const scram = new ScramClient(password)
 * send(saslInitialResponse('SCRAM-SHA-256', scram.clientFirst()))
 * send(saslResponse(scram.clientFinal(serverFirst)))
 * if (!scram.verifyServerFinal(serverFinal)) fail()
 */
export class ScramClient {
  readonly #password: string
  readonly #maxIterations: number
  readonly #clientNonce = randomBytes(18).toString('base64')
  #serverSignature: Buffer | null = null

  constructor(password: string, options: { maxIterations?: number } = {}) {
    if (password === '') throw new Error('SCRAM: the password is empty')
    this.#password = password
    this.#maxIterations = options.maxIterations ?? DEFAULT_MAX_SCRAM_ITERATIONS
  }

  /** client-first-message: 'n,,n=*,r=<nonce>' (PostgreSQL takes the user from the startup packet). */
  clientFirst(): string {
    return `n,,${this.#bare()}`
  }

  #bare(): string {
    return `n=*,r=${this.#clientNonce}`
  }

  /** Answers the server-first-message 'r=<nonce>,s=<salt>,i=<iterations>' with the client-final-message. */
  clientFinal(serverFirst: string): string {
    const attrs = attributes(serverFirst)
    const nonce = attrs.get('r') ?? ''
    const saltText = attrs.get('s') ?? ''
    const iterationText = attrs.get('i') ?? ''
    if (!PRINTABLE.test(nonce)) throw new Error('SCRAM: invalid server nonce')
    if (!nonce.startsWith(this.#clientNonce) || nonce.length === this.#clientNonce.length) {
      throw new Error('SCRAM: server nonce does not extend the client nonce')
    }
    if (!BASE64.test(saltText)) throw new Error('SCRAM: invalid salt')
    if (!/^[1-9][0-9]*$/.test(iterationText)) throw new Error('SCRAM: invalid iteration count')
    const iterations = Number(iterationText)
    if (this.#maxIterations !== 0 && iterations > this.#maxIterations) {
      throw new Error(`SCRAM: iteration count ${iterations} exceeds the limit of ${this.#maxIterations}`)
    }
    const keys = cachedKeys(this.#password, Buffer.from(saltText, 'base64'), iterations)
    const withoutProof = `c=biws,r=${nonce}` // biws = base64('n,,')
    const authMessage = `${this.#bare()},${serverFirst},${withoutProof}`
    const proof = xor(keys.clientKey, hmac(keys.storedKey, authMessage))
    this.#serverSignature = hmac(keys.serverKey, authMessage)
    return `${withoutProof},p=${proof.toString('base64')}`
  }

  /** True when the server-final-message 'v=<signature>' proves the server knew the verifier. */
  verifyServerFinal(serverFinal: string): boolean {
    if (!this.#serverSignature) throw new Error('SCRAM: server-final-message before server-first-message')
    const attrs = attributes(serverFinal)
    if (attrs.has('e')) throw new Error(`SCRAM: server error ${attrs.get('e')}`)
    const given = Buffer.from(attrs.get('v') ?? '', 'base64')
    return given.length === this.#serverSignature.length && timingSafeEqual(given, this.#serverSignature)
  }
}
