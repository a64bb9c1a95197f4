// Config lifecycle: reloads the config file when it changes (directory watch, debounced) or on SIGHUP;
// a new config is validated fully and applied atomically, an invalid or older one is refused and logged,
// and one equal to the running config is left alone. `freshet proxy` runs one (src/cli/proxy.ts).

import { EventEmitter } from 'node:events'
import { type FSWatcher, watch } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { basename, dirname, resolve } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { parseConfig } from '../core/config/parse-config.js'
import type { FreshetConfig } from '../core/config/schema.js'
import { ConfigError } from '../core/errors.js'
import type { EngineEvents } from '../telemetry/telemetry-source.js'

/** What the watcher needs of a routing engine: its config, reload() and its 'log' event. */
export type WatchedEngine = Pick<EventEmitter<EngineEvents>, 'emit'> & {
  readonly config: FreshetConfig
  reload(next: FreshetConfig): void
}

/** Where a reload came from. */
export type ReloadSource = 'file' | 'sighup' | 'manual'

/** The outcome of one reload attempt; `unchanged`: the file holds the running config (nothing done). */
export type ReloadResult =
  | { readonly status: 'applied'; readonly version: number }
  | { readonly status: 'unchanged'; readonly version: number }
  | {
      readonly status: 'invalid' | 'version'
      readonly issues: readonly { path: string; message: string }[]
      readonly runningVersion: number
    }

export interface ConfigWatcherEvents {
  reloaded: [config: FreshetConfig, source: ReloadSource]
  refused: [result: Extract<ReloadResult, { status: 'invalid' | 'version' }>, source: ReloadSource]
}

export interface ConfigWatcherOptions {
  /** Quiet time after the last file event before reading (editors write in several steps). */
  debounceMs?: number
  env?: NodeJS.ProcessEnv
}

/**
 * Watches one config file and reloads an engine from it.
 * @example
 * const watcher = new ConfigWatcher('freshet.yaml', engine)
 * watcher.start()
 * const stopSighup = watcher.onSighup()
 */
export class ConfigWatcher extends EventEmitter<ConfigWatcherEvents> {
  readonly path: string
  readonly #engine: WatchedEngine
  readonly #debounceMs: number
  readonly #env: NodeJS.ProcessEnv
  #watcher: FSWatcher | null = null
  #timer: NodeJS.Timeout | null = null
  /** Reloads run one at a time, in order. */
  #chain: Promise<unknown> = Promise.resolve()
  /** Text of the last file applied or refused, so repeated events for one save do not log twice. */
  #lastText: string | null = null

  constructor(path: string, engine: WatchedEngine, options: ConfigWatcherOptions = {}) {
    super()
    this.path = resolve(path)
    this.#engine = engine
    this.#debounceMs = options.debounceMs ?? 200
    this.#env = options.env ?? process.env
  }

  /**
   * Starts watching. The directory is watched, not the file: editors and config management replace
   * the file (write a temp file, rename), which ends a watch on the old inode.
   */
  start(): void {
    if (this.#watcher) return
    const name = basename(this.path)
    try {
      this.#watcher = watch(dirname(this.path), { persistent: false }, (_event, file) => {
        if (file !== null && file !== name) return
        if (this.#timer) clearTimeout(this.#timer)
        this.#timer = setTimeout(() => {
          this.#timer = null
          void this.reload('file')
        }, this.#debounceMs)
        this.#timer.unref()
      })
    } catch (err) {
      // e.g. out of inotify watches: keep running, SIGHUP still reloads
      this.#log('error', `config watch failed (reload with SIGHUP): ${(err as Error).message}`)
      return
    }
    this.#watcher.on('error', (err) => this.#log('error', `config watch failed: ${err.message}`))
  }

  /** Reloads on SIGHUP (the proxy CLI calls this); returns a function that removes the handler. */
  onSighup(): () => void {
    const handler = () => void this.reload('sighup')
    process.on('SIGHUP', handler)
    return () => process.off('SIGHUP', handler)
  }

  /** Reads, validates and applies the file now. Never throws: the result says what happened. */
  reload(source: ReloadSource = 'manual'): Promise<ReloadResult> {
    const run = this.#chain.then(() => this.#reload(source))
    this.#chain = run.catch(() => {})
    return run
  }

  close(): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = null
    this.#watcher?.close()
    this.#watcher = null
  }

  async #reload(source: ReloadSource): Promise<ReloadResult> {
    const running = this.#engine.config.version
    let text: string
    try {
      text = await readFile(this.path, 'utf8')
    } catch (err) {
      // A rename in progress: the next event (or SIGHUP) brings the new file.
      return this.#refuse(
        'invalid',
        [{ path: '', message: `cannot read ${this.path}: ${(err as Error).message}` }],
        source,
      )
    }
    if (source === 'file' && text === this.#lastText) return { status: 'unchanged', version: running }
    this.#lastText = text
    let next: FreshetConfig
    try {
      next = parseConfig(text, { env: this.#env, source: this.path })
      // The config running already (the file the process started from, or one a file event applied
      // before this SIGHUP): nothing to do, and not a refusal of an "older" version.
      if (next.version === running && isDeepStrictEqual(next, this.#engine.config)) {
        if (source !== 'file') {
          this.#log(
            'info',
            `config from ${this.path} unchanged; still running version ${running} (${source})`,
            {
              version: running,
              source,
            },
          )
        }
        return { status: 'unchanged', version: running }
      }
      this.#engine.reload(next)
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      return this.#refuse(err.code === 'FRESHET_CONFIG_VERSION' ? 'version' : 'invalid', err.issues, source)
    }
    this.#log('info', `config version ${next.version} applied from ${this.path} (${source})`, {
      version: next.version,
      source,
    })
    this.emit('reloaded', next, source)
    return { status: 'applied', version: next.version }
  }

  #refuse(
    status: 'invalid' | 'version',
    issues: readonly { path: string; message: string }[],
    source: ReloadSource,
  ): ReloadResult {
    const result = { status, issues, runningVersion: this.#engine.config.version } as const
    const where = issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')
    this.#log(
      'error',
      `config from ${this.path} refused (${status}); still running version ${result.runningVersion}: ${where}`,
      { source, issues: issues.map((i) => ({ ...i })) },
    )
    this.emit('refused', result, source)
    return result
  }

  #log(level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>): void {
    // The engine's 'log' event is where both faces collect logs (pino in the admin side, pool.on('log')).
    this.#engine.emit('log', level, message, fields)
  }
}
