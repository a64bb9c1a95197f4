// Trust: a listed client is accepted at once, as with PostgreSQL's `trust` method (and, like pgbouncer,
// only users freshet knows).

import { AUTHENTICATION_OK } from '../../protocol/index.js'
import { type AuthStep, authFailure, PROTOCOL_VIOLATION, passwordFailed } from './auth-step.js'
import type { ClientAuthenticator } from './client-authenticator.js'

/**
 * Accepts without asking: `start()` sends AuthenticationOk and is done.
 * @example new TrustAuthenticator().start() // { send: [AuthenticationOk], done: true, ok: true }
 */
export class TrustAuthenticator implements ClientAuthenticator {
  /** `refuseAs`: a user name to refuse (unknown to freshet), answered like a wrong password. */
  constructor(readonly refuseAs: string | null = null) {}

  start(): AuthStep {
    if (this.refuseAs !== null) return passwordFailed(this.refuseAs, 'trust: user not in proxy.auth.users')
    return { send: [AUTHENTICATION_OK], done: true, ok: true }
  }

  receive(_body: Buffer): AuthStep {
    return authFailure('unexpected password message', PROTOCOL_VIOLATION)
  }
}
