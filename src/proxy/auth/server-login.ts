// The proxy logging in to a PostgreSQL server: answers its Authentication requests, without sockets.

import {
  decodeAuthentication,
  ProtocolError,
  passwordMessage,
  saslInitialResponse,
  saslResponse,
} from '../../protocol/index.js'
import { type AuthStep, authFailure, INVALID_AUTHORIZATION, PROTOCOL_VIOLATION } from './auth-step.js'
import { md5PasswordHash, md5SaltedResponse } from './md5-password.js'
import { SCRAM_SHA_256 } from './scram-authenticator.js'
import { ScramClient } from './scram-client.js'

export interface ServerLoginOptions {
  user: string
  /** Needed unless the server trusts us. */
  password?: string
  /** Refuse SCRAM iteration counts above this (0 = no limit). Default 100000. */
  maxScramIterations?: number
}

/**
 * Answers each Authentication ('R') message a server sends during startup: cleartext password, md5,
 * SCRAM-SHA-256 (verifying the server's signature), or AuthenticationOk. An ErrorResponse from the
 * server (a wrong password) is the caller's to handle: it is not an 'R' message.
 *
 * @example
 * const login = new ServerLogin({ user: 'app', password })
 * // for each 'R' message from the server:
 * const step = login.receive(body)
 * for (const m of step.send ?? []) socket.write(m)
 * if (step.done && !step.ok) fail(step.error)   // step.done && step.ok: wait for ReadyForQuery
 */
export class ServerLogin {
  readonly #user: string
  readonly #password: string | undefined
  readonly #maxIterations: number | undefined
  #scram: ScramClient | null = null
  #scramVerified = false

  constructor(options: ServerLoginOptions) {
    this.#user = options.user
    this.#password = options.password
    this.#maxIterations = options.maxScramIterations
  }

  /** Handles the body of one 'R' message. */
  receive(body: Buffer): AuthStep {
    try {
      return this.#receive(body)
    } catch (err) {
      if (err instanceof ProtocolError) return authFailure(err.message, PROTOCOL_VIOLATION)
      // ScramClient errors: their messages name the problem, never the password
      return authFailure(`server login failed: ${(err as Error).message}`, PROTOCOL_VIOLATION)
    }
  }

  #needPassword(method: string): string {
    if (this.#password === undefined || this.#password === '') {
      throw new Error(`the server asks for ${method} authentication and no password is configured`)
    }
    return this.#password
  }

  #receive(body: Buffer): AuthStep {
    const request = decodeAuthentication(body)
    switch (request.kind) {
      case 'ok':
        if (this.#scram && !this.#scramVerified) {
          return authFailure('server sent AuthenticationOk before completing SCRAM', PROTOCOL_VIOLATION)
        }
        return { done: true, ok: true }
      case 'cleartext':
        return { send: [passwordMessage(this.#needPassword('password'))] }
      case 'md5': {
        const hash = md5PasswordHash(this.#user, this.#needPassword('md5'))
        return { send: [passwordMessage(md5SaltedResponse(hash, request.salt))] }
      }
      case 'sasl': {
        if (!request.mechanisms.includes(SCRAM_SHA_256)) {
          return authFailure(
            `the server offers only ${request.mechanisms.join(', ')}; freshet speaks ${SCRAM_SHA_256} without channel binding`,
            INVALID_AUTHORIZATION,
          )
        }
        this.#scram = new ScramClient(
          this.#needPassword('SCRAM'),
          this.#maxIterations === undefined ? {} : { maxIterations: this.#maxIterations },
        )
        return { send: [saslInitialResponse(SCRAM_SHA_256, this.#scram.clientFirst())] }
      }
      case 'sasl-continue':
        if (!this.#scram) return authFailure('unexpected SASLContinue', PROTOCOL_VIOLATION)
        return { send: [saslResponse(this.#scram.clientFinal(request.data.toString('utf8')))] }
      case 'sasl-final':
        if (!this.#scram) return authFailure('unexpected SASLFinal', PROTOCOL_VIOLATION)
        if (!this.#scram.verifyServerFinal(request.data.toString('utf8'))) {
          return authFailure(
            'the server signature does not match: not the server we meant',
            INVALID_AUTHORIZATION,
          )
        }
        this.#scramVerified = true
        return {}
      default:
        return authFailure(
          `the server asks for an unsupported authentication method (${request.code})`,
          INVALID_AUTHORIZATION,
        )
    }
  }
}
