// The server side of client authentication: the interface every method implements.

import type { AuthStep } from './auth-step.js'

/**
 * Authenticates one client, independent of sockets: `start()` gives the first request to send, then
 * every 'p' message body the client sends goes to `receive()` until a step says `done`.
 *
 * @example
 * const auth = createClientAuthenticator('scram-sha-256', user, credentials.get(user) ?? null)
 * let step = auth.start()
 * // write step.send; on each client 'p' message: step = auth.receive(body); write step.send
 * // when step.done: step.ok ? continue with ParameterStatus... : send ErrorResponse(step.sqlState, step.error)
 */
export interface ClientAuthenticator {
  start(): AuthStep
  receive(body: Buffer): AuthStep
}

/** The proxy's client authentication methods (config `proxy.auth.type`). */
export type ClientAuthMethod = 'scram-sha-256' | 'md5' | 'trust'
