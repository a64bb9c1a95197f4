// SCRAM-SHA-256 verifiers: parse PostgreSQL's stored form, derive one from a password, and the key math.

import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto'
import { saslprep } from './saslprep.js'

/** What a server needs to check a SCRAM-SHA-256 proof, as PostgreSQL stores it in pg_authid. */
export interface ScramSecret {
  iterations: number
  salt: Buffer
  storedKey: Buffer
  serverKey: Buffer
}

/** PostgreSQL's default scram_iterations. */
export const DEFAULT_SCRAM_ITERATIONS = 4096
// PostgreSQL's SCRAM_DEFAULT_SALT_LEN
const SALT_LENGTH = 16

const SECRET_PATTERN =
  /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2}):([A-Za-z0-9+/]+={0,2})$/

/** HMAC-SHA-256. */
export function hmac(key: Buffer, data: string | Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest()
}

/** SHA-256. */
export function sha256(data: Buffer | string): Buffer {
  return createHash('sha256').update(data).digest()
}

/** Byte-wise XOR of two equal-length buffers. */
export function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length)
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!
  return out
}

/**
 * The RFC 5802 keys for a password: SaltedPassword = PBKDF2-HMAC-SHA-256(SASLprep(password), salt, i),
 * ClientKey = HMAC(SaltedPassword, "Client Key"), StoredKey = H(ClientKey), ServerKey = HMAC(SaltedPassword,
 * "Server Key"). Synchronous: PBKDF2 at 4096 iterations takes a few milliseconds, so callers cache.
 */
export function scramKeys(
  password: string,
  salt: Buffer,
  iterations: number,
): { clientKey: Buffer; storedKey: Buffer; serverKey: Buffer } {
  const salted = pbkdf2Sync(saslprep(password), salt, iterations, 32, 'sha256')
  const clientKey = hmac(salted, 'Client Key')
  return { clientKey, storedKey: sha256(clientKey), serverKey: hmac(salted, 'Server Key') }
}

/**
 * Parses `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64 parts), the form of
 * pg_authid.rolpassword. Returns null when the string is not in that form.
 * @example parseScramSecret(row.rolpassword)?.iterations // 4096
 */
export function parseScramSecret(text: string): ScramSecret | null {
  const m = SECRET_PATTERN.exec(text)
  if (!m) return null
  const iterations = Number(m[1])
  const storedKey = Buffer.from(m[3]!, 'base64')
  const serverKey = Buffer.from(m[4]!, 'base64')
  if (
    !Number.isSafeInteger(iterations) ||
    iterations < 1 ||
    storedKey.length !== 32 ||
    serverKey.length !== 32
  ) {
    return null
  }
  return { iterations, salt: Buffer.from(m[2]!, 'base64'), storedKey, serverKey }
}

/**
 * Derives a verifier from a plaintext password, with a random 16-byte salt unless one is given.
 * Do it once per user when the config loads, not per login.
 * @example const secret = scramSecretFromPassword(config.proxy.auth.users.app.password)
 */
export function scramSecretFromPassword(
  password: string,
  options: { iterations?: number; salt?: Buffer } = {},
): ScramSecret {
  const iterations = options.iterations ?? DEFAULT_SCRAM_ITERATIONS
  const salt = options.salt ?? randomBytes(SALT_LENGTH)
  const { storedKey, serverKey } = scramKeys(password, salt, iterations)
  return { iterations, salt, storedKey, serverKey }
}

/** The pg_authid form of a verifier, e.g. for `ALTER ROLE ... PASSWORD '<this>'`. */
export function formatScramSecret(secret: ScramSecret): string {
  const b64 = (b: Buffer) => b.toString('base64')
  return `SCRAM-SHA-256$${secret.iterations}:${b64(secret.salt)}$${b64(secret.storedKey)}:${b64(secret.serverKey)}`
}
