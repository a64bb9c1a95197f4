// md5 client authentication: a random 4-byte salt, then a constant-time check of the salted hash.

import { randomBytes, timingSafeEqual } from 'node:crypto'
import { AUTHENTICATION_OK, authenticationMD5Password, decodePasswordMessage } from '../../protocol/index.js'
import { type AuthStep, authFailure, PROTOCOL_VIOLATION, passwordFailed } from './auth-step.js'
import type { ClientAuthenticator } from './client-authenticator.js'
import { md5SaltedResponse } from './md5-password.js'

/**
 * Checks `md5` + md5(md5(password + user) + salt) against the stored hash. A null hash (unknown user)
 * still sends a challenge and then fails like a wrong password.
 * @example const auth = new Md5Authenticator('app', md5PasswordHash('app', 'secret'))
 */
export class Md5Authenticator implements ClientAuthenticator {
  readonly #user: string
  readonly #storedHash: string | null
  #salt: Buffer | null = null

  constructor(user: string, storedHash: string | null) {
    this.#user = user
    this.#storedHash = storedHash
  }

  start(): AuthStep {
    this.#salt = randomBytes(4)
    return { send: [authenticationMD5Password(this.#salt)] }
  }

  receive(body: Buffer): AuthStep {
    if (!this.#salt) return authFailure('password message before the md5 challenge', PROTOCOL_VIOLATION)
    let answer: string
    try {
      answer = decodePasswordMessage(body)
    } catch {
      return authFailure('malformed password message', PROTOCOL_VIOLATION)
    }
    const salt = this.#salt
    this.#salt = null
    if (this.#storedHash === null) return passwordFailed(this.#user, 'user not in proxy.auth.users')
    const expected = Buffer.from(md5SaltedResponse(this.#storedHash, salt))
    const given = Buffer.from(answer)
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      return passwordFailed(this.#user, 'wrong password (md5)')
    return { send: [AUTHENTICATION_OK], done: true, ok: true }
  }
}
