// Reads a config file from disk and validates it (YAML or JSON, ${ENV} substitution from process.env).

import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { parseConfig } from '../core/config/parse-config.js'
import type { FreshetConfig } from '../core/config/schema.js'
import { ConfigError } from '../core/errors.js'

function unreadable(path: string, err: unknown): ConfigError {
  const code = (err as NodeJS.ErrnoException).code
  const why =
    code === 'ENOENT' ? 'file not found' : code === 'EACCES' ? 'permission denied' : (err as Error).message
  return new ConfigError([{ path: '', message: `cannot read ${path}: ${why}` }], { source: path, cause: err })
}

/** Loads and validates a config file; throws ConfigError naming every bad key path. */
export async function loadConfigFile(
  path: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<FreshetConfig> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw unreadable(path, err)
  }
  return parseConfig(text, { env, source: path })
}

/** Synchronous variant, for `createPool('freshet.yaml')` which must return a pool synchronously. */
export function loadConfigFileSync(path: string, env: NodeJS.ProcessEnv = process.env): FreshetConfig {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw unreadable(path, err)
  }
  return parseConfig(text, { env, source: path })
}
