// A throwaway self-signed certificate (its own CA) made with openssl, for the TLS tests.

import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/**
 * Writes a self-signed certificate for `name` (CN and subjectAltName DNS) and its key into `dir`.
 * @example const { cert, key } = await selfSignedCertificate(dir, 'localhost')
 */
export async function selfSignedCertificate(
  dir: string,
  name: string,
  files: { cert: string; key: string } = { cert: `${name}.crt`, key: `${name}.key` },
): Promise<{ cert: string; key: string }> {
  const cert = join(dir, files.cert)
  const key = join(dir, files.key)
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '1',
    '-subj',
    `/CN=${name}`,
    '-addext',
    `subjectAltName=DNS:${name}`,
  ])
  return { cert, key }
}
