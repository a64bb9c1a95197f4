// PostgreSQL's md5 password scheme: the stored hash and the salted answer to an md5 challenge.

import { createHash } from 'node:crypto'

const MD5_HASH_PATTERN = /^md5[0-9a-f]{32}$/

function md5Hex(data: Buffer | string): string {
  return createHash('md5').update(data).digest('hex')
}

/**
 * The stored form: `md5` + md5(password + user), as in pg_authid.
 * @example md5PasswordHash('app', 'secret') // 'md5...' (35 characters)
 */
export function md5PasswordHash(user: string, password: string): string {
  return `md5${md5Hex(password + user)}`
}

/** True when `text` is a stored md5 hash rather than a password (PostgreSQL decides the same way). */
export function isMd5PasswordHash(text: string): boolean {
  return MD5_HASH_PATTERN.test(text)
}

/**
 * The answer to AuthenticationMD5Password: `md5` + md5(hex of md5(password + user) + salt), computed
 * from the stored hash so the server side never needs the password.
 */
export function md5SaltedResponse(storedHash: string, salt: Buffer): string {
  return `md5${md5Hex(Buffer.concat([Buffer.from(storedHash.slice(3), 'latin1'), salt]))}`
}
