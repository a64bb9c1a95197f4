// SASLprep (RFC 4013) as PostgreSQL and libpq apply it to SCRAM passwords, in the lenient form pg uses.

const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/g
// RFC 3454 table B.1: zero-width joiners and variation selectors combine with their neighbours
// biome-ignore lint/suspicious/noMisleadingCharacterClass: the RFC table lists these code points one by one
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B\u180C\u180D\u200C\u200D\u2060\uFE00-\uFE0F\uFEFF]/g

/**
 * Normalizes a password before PBKDF2: non-ASCII spaces to U+0020, table B.1 removed, then NFKC. The
 * prohibited-character and bidi checks are skipped, as in libpq and pg: PostgreSQL then uses the raw
 * password, and these steps are what change the bytes.
 * @example saslprep('I\u00ADX') // 'IX'
 */
export function saslprep(password: string): string {
  return password.replace(NON_ASCII_SPACE, ' ').replace(MAPPED_TO_NOTHING, '').normalize('NFKC')
}
