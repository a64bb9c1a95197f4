// Removes secrets from a config before it is logged or served: passwords in URLs, user passwords, tokens.

import type { FreshetConfig } from './schema.js'

export const REDACTED = '***'

/** `postgres://app:secret@h/db` -> `postgres://app:***@h/db`; also `password=` in key/value strings. */
export function redactUrl(url: string): string {
  return url
    .replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^@]*@/i, `$1:${REDACTED}@`)
    .replace(/(password=)[^&\s]*/gi, `$1${REDACTED}`)
}

/** A deep copy of the config with every secret replaced by `***`. */
export function redactConfig(config: FreshetConfig): unknown {
  const copy = structuredClone(config) as FreshetConfig & Record<string, unknown>
  const nodes = [copy.cluster.primary, ...copy.cluster.replicas]
  for (const node of nodes) node.url = redactUrl(node.url)
  for (const user of Object.values(copy.proxy.auth.users)) user.password = REDACTED
  if (copy.admin.token !== null) copy.admin.token = REDACTED
  // tls.key is normally a file path; an inline PEM key is a secret
  if (copy.proxy.tls.key?.includes('PRIVATE KEY')) copy.proxy.tls.key = REDACTED
  return copy
}
