// What one step of an authentication exchange produces: messages to send and whether it is over.

/**
 * The outcome of feeding an authentication state machine one message. The caller writes `send` in
 * order; when `done`, `ok` says whether the peer is authenticated. `error` is a message for the
 * ErrorResponse (it starts with `freshet:` and never contains a password), `sqlState` its code.
 */
export interface AuthStep {
  send?: Buffer[]
  done?: boolean
  ok?: boolean
  error?: string
  sqlState?: string
  /** Why it failed, for the server log only: never sent to the client (no user enumeration). */
  reason?: string
}

/** SQLSTATE invalid_password: a client's password or proof is wrong. */
export const INVALID_PASSWORD = '28P01'
/** SQLSTATE protocol_violation: a malformed or unexpected authentication message. */
export const PROTOCOL_VIOLATION = '08P01'
/** SQLSTATE invalid_authorization_specification: a method the other side cannot do. */
export const INVALID_AUTHORIZATION = '28000'

/** A failed step: done, not ok, with the error. */
export function authFailure(message: string, sqlState: string, reason?: string): AuthStep {
  const error = message.startsWith('freshet:') ? message : `freshet: ${message}`
  return { done: true, ok: false, error, sqlState, reason: reason ?? error }
}

/** The error PostgreSQL itself gives for a wrong password, so clients react the same way. */
export function passwordFailed(user: string, reason: string): AuthStep {
  return authFailure(`password authentication failed for user "${user}"`, INVALID_PASSWORD, reason)
}
