// User credentials prepared from config and the factory that picks a client authenticator per method
// (apart from the interface, so the implementations can import the interface without a cycle).

import type { ClientAuthenticator, ClientAuthMethod } from './client-authenticator.js'
import { Md5Authenticator } from './md5-authenticator.js'
import { isMd5PasswordHash, md5PasswordHash } from './md5-password.js'
import { ScramAuthenticator } from './scram-authenticator.js'
import { parseScramSecret, type ScramSecret, scramSecretFromPassword } from './scram-secret.js'
import { TrustAuthenticator } from './trust-authenticator.js'

/** What the proxy knows of one user, prepared once from config. Null fields: that method cannot work. */
export interface UserCredential {
  scram: ScramSecret | null
  /** Stored md5 form, `md5` + 32 hex digits. */
  md5: string | null
}

/**
 * Prepares a config `password` once: a plaintext password gives both a SCRAM verifier (random salt)
 * and an md5 hash; a `SCRAM-SHA-256$...` verifier gives SCRAM only; an `md5...` hash gives md5 only,
 * as in PostgreSQL.
 * @example const cred = prepareCredential('app', config.proxy.auth.users.app.password)
 */
export function prepareCredential(user: string, password: string, iterations?: number): UserCredential {
  const scram = parseScramSecret(password)
  if (scram) return { scram, md5: null }
  if (isMd5PasswordHash(password)) return { scram: null, md5: password }
  return {
    scram: scramSecretFromPassword(password, iterations === undefined ? {} : { iterations }),
    md5: md5PasswordHash(user, password),
  }
}

/**
 * The authenticator for a method and user. `credential` null means an unknown user: the exchange still
 * runs and then fails like a wrong password, so clients cannot probe which users exist. With md5 and a
 * user whose only secret is a SCRAM verifier, it runs SCRAM instead, as PostgreSQL does.
 */
export function createClientAuthenticator(
  method: ClientAuthMethod,
  user: string,
  credential: UserCredential | null,
  options: { trustListedOnly?: boolean } = {},
): ClientAuthenticator {
  // Trust admits only users listed in proxy.auth.users (as pgbouncer requires them in auth_file); with
  // no users listed at all it admits any name (a development setup; documented in docs/proxy.md).
  if (method === 'trust')
    return new TrustAuthenticator(options.trustListedOnly && credential === null ? user : null)
  if (method === 'md5') {
    // a SCRAM-only user under md5: PostgreSQL switches to SCRAM, and so do we
    if (credential && credential.md5 === null && credential.scram)
      return new ScramAuthenticator(user, credential.scram)
    return new Md5Authenticator(user, credential?.md5 ?? null)
  }
  return new ScramAuthenticator(user, credential?.scram ?? null)
}
