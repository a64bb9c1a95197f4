// Turns config text (YAML or JSON) into a validated FreshetConfig: ${ENV} substitution, schema
// validation with every error's key path, and the monotonic version rule. Pure: no file I/O.

import { parse as parseYaml, YAMLParseError } from 'yaml'
import type { z } from 'zod'
import { ConfigError } from '../errors.js'
import { ConfigSchema, type FreshetConfig } from './schema.js'

export interface ConfigIssue {
  /** Dotted key path, e.g. `routing.tiers.near_rt.max_lag_ms` or `cluster.replicas[1].url`. */
  readonly path: string
  readonly message: string
}

/** Renders a zod path as `a.b[2].c`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = ''
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`
    else out += out === '' ? String(key) : `.${String(key)}`
  }
  return out
}

function zodIssues(error: z.ZodError): ConfigIssue[] {
  return error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      const base = formatPath(issue.path)
      return {
        // an empty key (`: x` in YAML) is shown as "" rather than vanishing into the root path
        path: issue.keys
          .map((k) => (k === '' ? '""' : k))
          .map((k) => (base ? `${base}.${k}` : k))
          .join(', '),
        message:
          'unknown key (check the spelling against docs/configuration.md or schema/freshet.schema.json)',
      }
    }
    return { path: formatPath(issue.path), message: issue.message }
  })
}

/**
 * Replaces `${NAME}` (and `${NAME:-default}`) in every string of a parsed document. A missing variable
 * without a default is an issue at that key path, never a silent empty string.
 */
export function substituteEnv(
  value: unknown,
  env: Readonly<Record<string, string | undefined>>,
  issues: ConfigIssue[],
  path: PropertyKey[] = [],
): unknown {
  if (typeof value === 'string') {
    if (!value.includes('${')) return value
    return value.replace(
      /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
      (_m, name: string, dflt?: string) => {
        const v = env[name]
        if (v !== undefined) return v
        if (dflt !== undefined) return dflt
        issues.push({ path: formatPath(path), message: `environment variable \${${name}} is not set` })
        return ''
      },
    )
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, issues, [...path, i]))
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = substituteEnv(v, env, issues, [...path, k])
    return out
  }
  return value
}

/** Validates an already-parsed document (object) and returns the config with defaults, or throws ConfigError. */
export function validateConfig(
  document: unknown,
  options: { env?: Readonly<Record<string, string | undefined>>; source?: string } = {},
): FreshetConfig {
  const issues: ConfigIssue[] = []
  const substituted = substituteEnv(document, options.env ?? {}, issues)
  const result = ConfigSchema.safeParse(substituted)
  if (!result.success) issues.push(...zodIssues(result.error))
  if (issues.length > 0 || !result.success) {
    throw new ConfigError(issues, options.source ? { source: options.source } : {})
  }
  return deepFreeze(result.data)
}

/**
 * Parses YAML or JSON text (JSON is YAML) into a document (a mapping), without validating it: what
 * is stored or restored before validation (a fleet proposal, PUT /api/v1/config). Throws ConfigError.
 * @example
 * const document = parseConfigText(readFileSync('freshet.yaml', 'utf8'), { source: 'freshet.yaml' })
 */
export function parseConfigText(text: string, options: { source?: string } = {}): Record<string, unknown> {
  let document: unknown
  try {
    // logLevel 'error': the yaml package would otherwise print warnings (unresolved tags, ambiguous
    // anchors) to stderr through process.emitWarning, quoting the offending config line, secrets included.
    // prettyErrors off: a pretty error quotes the offending line, which may hold a password.
    document = parseYaml(text, { prettyErrors: false, logLevel: 'error' })
  } catch (err) {
    const offset = err instanceof YAMLParseError ? err.pos[0] : -1
    const line = offset >= 0 ? text.slice(0, offset).split('\n').length : 0
    const at = line > 0 ? ` at line ${line}` : ''
    // The message without a code frame describes the problem; the line number says where.
    const what = (err as Error).message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')
    throw new ConfigError([{ path: '', message: `not valid YAML/JSON${at}: ${what}` }], {
      ...(options.source ? { source: options.source } : {}),
      cause: err,
    })
  }
  if (document === null || typeof document !== 'object' || Array.isArray(document)) {
    throw new ConfigError(
      [{ path: '', message: 'the config must be a mapping (YAML) or an object (JSON)' }],
      {
        ...(options.source ? { source: options.source } : {}),
      },
    )
  }
  return document as Record<string, unknown>
}

/**
 * Parses YAML or JSON text (JSON is YAML) and validates it.
 * @example
 * const config = parseConfig(readFileSync('freshet.yaml', 'utf8'), { env: process.env, source: 'freshet.yaml' })
 */
export function parseConfig(
  text: string,
  options: { env?: Readonly<Record<string, string | undefined>>; source?: string } = {},
): FreshetConfig {
  return validateConfig(parseConfigText(text, options), options)
}

/** Refuses a new config whose version does not increase (CONTRACT section 4). */
export function assertNewerVersion(current: FreshetConfig, next: FreshetConfig): void {
  if (next.version <= current.version) {
    throw new ConfigError(
      [
        {
          path: 'version',
          message: `must be greater than the running version ${current.version} (got ${next.version})`,
        },
      ],
      { code: 'FRESHET_CONFIG_VERSION' },
    )
  }
}

/**
 * A config that was validated elsewhere and copied here as plain data (a proxy worker gets it over
 * IPC): frozen again, not validated again (environment references were substituted already).
 */
export function revivedConfig(plain: unknown): FreshetConfig {
  return deepFreeze(plain as FreshetConfig)
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}
