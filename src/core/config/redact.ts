// Removes secrets from a config before it is logged or served (passwords in URLs, user passwords,
// tokens), and puts them back into a config sent back with the placeholders (PUT /api/v1/config).

import type { FreshetConfig } from './schema.js'

export const REDACTED = '***'

/** `scheme://user:secret@` anywhere in a text (a log message may quote a URL). */
const USERINFO = /([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*):[^@\s]*@/gi
/** `password=`, `sslpassword=`, `token=`, `access_token=`, `api_key=`, `client_secret=` ... in queries and DSNs. */
const SECRET_PARAM = /\b([a-z0-9_]*(?:password|passwd|token|secret|api_?key)=)[^&\s]*/gi

/**
 * `postgres://app:secret@h/db` -> `postgres://app:***@h/db`; also `password=`, `token=`, `api_key=`
 * and `secret=` values in query strings and key/value connection strings.
 */
export function redactUrl(url: string): string {
  return url.replace(USERINFO, `$1:${REDACTED}@`).replace(SECRET_PARAM, `$1${REDACTED}`)
}

/** A deep copy of the config with every secret replaced by `***`. */
export function redactConfig(config: FreshetConfig): unknown {
  const copy = structuredClone(config) as FreshetConfig & Record<string, unknown>
  const nodes = [copy.cluster.primary, ...copy.cluster.replicas]
  for (const node of nodes) node.url = redactUrl(node.url)
  // the discovery endpoint may carry basic-auth credentials or a token parameter
  if (copy.cluster.discovery) copy.cluster.discovery.endpoint = redactUrl(copy.cluster.discovery.endpoint)
  for (const user of Object.values(copy.proxy.auth.users)) user.password = REDACTED
  for (const user of Object.values(copy.proxy.admin.users)) user.password = REDACTED
  if (copy.admin.token !== null) copy.admin.token = REDACTED
  if (copy.fleet?.etcd.password) copy.fleet.etcd.password = REDACTED
  if (copy.fleet) copy.fleet.etcd.endpoints = copy.fleet.etcd.endpoints.map(redactUrl)
  // tls.key is normally a file path; an inline PEM key is a secret
  if (copy.proxy.tls.key?.includes('PRIVATE KEY')) copy.proxy.tls.key = REDACTED
  return copy
}

/** A `***` that redactConfig() put in a URL or connection string: userinfo password or secret parameter. */
const REDACTED_USERINFO = /^([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*):\*\*\*@/i
const REDACTED_PARAM = /\b([a-z0-9_]*(?:password|passwd|token|secret|api_?key))=\*\*\*(?=[&\s]|$)/gi

/** The outcome of {@link restoreRedacted}. */
export type RestoreResult =
  | { readonly ok: true; readonly document: unknown }
  | { readonly ok: false; readonly issues: readonly { path: string; message: string }[] }

/**
 * Puts the running config's secrets back where a document (parsed YAML/JSON, before validation)
 * carries redactConfig()'s placeholders: a value `***`, a URL password `user:***@` or a parameter
 * `password=***`. Each is taken from the running config at the same key path (replicas matched by
 * `name`, not position); a placeholder with no running value there is an issue naming its key path.
 * So a config read from GET /api/v1/config, edited and sent back keeps its secrets instead of setting
 * them to the literal `***`.
 * @example
 * const r = restoreRedacted({ admin: { token: '***' } }, engine.config)
 * if (r.ok) validateConfig(r.document)
 */
export function restoreRedacted(document: unknown, running: FreshetConfig): RestoreResult {
  const issues: { path: string; message: string }[] = []
  const walk = (value: unknown, have: unknown, path: string): unknown => {
    if (typeof value === 'string') {
      if (!hasPlaceholder(value)) return value
      const restored = typeof have === 'string' ? restoreString(value, have) : null
      if (restored === null) {
        issues.push({
          path,
          message: `'${REDACTED}' is the placeholder GET /api/v1/config shows for a secret, and the running config has no value here to keep: send the real value`,
        })
        return value
      }
      if (restored.includes('${')) {
        // validation would substitute ${...} in the running value again and change the secret
        issues.push({
          path,
          message: `the running value holds '\${' and cannot be kept through a PUT: send the real value`,
        })
        return value
      }
      return restored
    }
    if (Array.isArray(value)) {
      const haveList = Array.isArray(have) ? (have as unknown[]) : []
      return value.map((item, i) => {
        const name = nameOf(item)
        // a replica is the same one by name: a reordered or shortened list must not swap passwords
        const match = name === null ? haveList[i] : haveList.find((h) => nameOf(h) === name)
        return walk(item, match, `${path}[${i}]`)
      })
    }
    if (isPlainObject(value)) {
      const haveObject = isPlainObject(have) ? have : {}
      const out: Record<string, unknown> = {}
      for (const [k, v] of Object.entries(value)) {
        out[k] = walk(v, Object.hasOwn(haveObject, k) ? haveObject[k] : undefined, path ? `${path}.${k}` : k)
      }
      return out
    }
    return value
  }
  const restored = walk(document, running, '')
  return issues.length > 0 ? { ok: false, issues } : { ok: true, document: restored }
}

function hasPlaceholder(value: string): boolean {
  if (value === REDACTED) return true
  if (!value.includes(REDACTED)) return false
  REDACTED_PARAM.lastIndex = 0
  return REDACTED_USERINFO.test(value) || REDACTED_PARAM.test(value)
}

/** `next` with its placeholders filled from `running`, or null when `running` lacks one of them. */
function restoreString(next: string, running: string): string | null {
  if (next === REDACTED) return running
  if (redactUrl(running) === next) return running // the untouched value
  let out = next
  const userinfo = REDACTED_USERINFO.exec(next)
  if (userinfo) {
    const password = /^[a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:([^@\s]*)@/i.exec(running)?.[1]
    if (password === undefined) return null
    out = out.replace(REDACTED_USERINFO, (_m, head: string) => `${head}:${password}@`)
  }
  let missing = false
  out = out.replace(REDACTED_PARAM, (m, key: string) => {
    const value = paramValue(running, key)
    if (value === null) {
      missing = true
      return m
    }
    return `${key}=${value}`
  })
  return missing ? null : out
}

/** The value of `key=` in a URL query or key/value connection string (the exact key, any case). */
function paramValue(text: string, key: string): string | null {
  const re = /\b([a-z0-9_]*(?:password|passwd|token|secret|api_?key))=([^&\s]*)/gi
  for (const m of text.matchAll(re)) if (m[1]!.toLowerCase() === key.toLowerCase()) return m[2]!
  return null
}

function nameOf(value: unknown): string | null {
  return isPlainObject(value) && typeof value.name === 'string' ? value.name : null
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value) as unknown
  return proto === Object.prototype || proto === null
}
