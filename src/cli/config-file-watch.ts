// The proxy's config file: watched for changes and SIGHUP (counted in freshet_config_reloads_total), and
// re-read on request; one place for `freshet proxy` with one cluster or with shards.

import { ConfigWatcher, type ReloadSource, type WatchedEngine } from '../backend/config-watcher.js'
import { ConfigError } from '../core/errors.js'
import type { FreshetMetrics } from '../telemetry/metrics.js'

/** `freshet_config_reloads_total`'s source label: a reload asked for in code re-reads the file too. */
const reloadLabel = (source: ReloadSource): 'file' | 'sighup' => (source === 'sighup' ? 'sighup' : 'file')

/**
 * Watches `path` for `engine` (file changes and SIGHUP), counting each outcome; `stop()` ends both.
 * @example
 * const { watcher, stop } = watchConfigFile('freshet.yaml', engine, metrics)
 */
export function watchConfigFile(
  path: string,
  engine: WatchedEngine,
  metrics: FreshetMetrics,
  debounceMs?: number,
): { watcher: ConfigWatcher; stop: () => void } {
  const watcher = new ConfigWatcher(path, engine, debounceMs !== undefined ? { debounceMs } : {})
  watcher.on('reloaded', (_config, source) => metrics.configReload(reloadLabel(source), 'applied'))
  watcher.on('refused', (result, source) => metrics.configReload(reloadLabel(source), result.status))
  watcher.start()
  const stopSighup = watcher.onSighup()
  return {
    watcher,
    stop: () => {
      stopSighup()
      watcher.close()
    },
  }
}

/** Re-reads the config file and applies it; throws ConfigError when it is refused (invalid or not newer). */
export async function reloadFile(watcher: ConfigWatcher): Promise<void> {
  const result = await watcher.reload('manual')
  if (result.status === 'invalid' || result.status === 'version') {
    throw new ConfigError(result.issues, {
      source: watcher.path,
      ...(result.status === 'version' ? { code: 'FRESHET_CONFIG_VERSION' as const } : {}),
    })
  }
}
