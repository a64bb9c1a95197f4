// Replica discovery: polls cluster.discovery.endpoint, validates the answer strictly, and replaces or
// extends the static replicas. On failure it keeps the last good list for fallback_cache_ttl_ms, then
// drops what it discovered (it never guesses).

import { EventEmitter } from 'node:events'
import { z } from 'zod'
import { formatPath } from '../core/config/parse-config.js'
import { redactUrl } from '../core/config/redact.js'
import { type FreshetConfig, type NodeConfig, NodeSchema } from '../core/config/schema.js'
import type { EngineEvents } from '../telemetry/telemetry-source.js'

/**
 * What the discovery endpoint must answer (HTTP 200, `application/json`):
 * ```json
 * { "replicas": [ { "name": "replica_3", "url": "postgres://app@10.0.0.7:5432/main", "weight": 100, "zone": "eu-1" } ] }
 * ```
 * `weight` (0..10000, default 100) and `zone` (default null) are optional; unknown keys, duplicate
 * names and the primary's name are refused, and so is the whole answer then.
 */
export const DiscoveryPayloadSchema = z.strictObject({
  replicas: z.array(NodeSchema).max(1000),
})

export type DiscoveryPayload = z.infer<typeof DiscoveryPayloadSchema>

/** Where discovery stands. */
export interface DiscoveryState {
  /**
   * ok: last poll good; stale: failing, last good list kept; expired: failing past the TTL, discovered
   * replicas dropped; failing: never answered well yet; idle: not polled yet.
   */
  readonly status: 'idle' | 'ok' | 'stale' | 'expired' | 'failing' | 'disabled'
  readonly endpoint: string | null
  readonly lastSuccessAt: string | null
  readonly lastError: string | null
  readonly replicas: readonly string[]
}

export interface DiscoveryEvents {
  applied: [replicas: readonly NodeConfig[]]
  failed: [error: string, state: DiscoveryState]
  expired: []
}

const MAX_BODY_BYTES = 1 << 20
const MAX_TIMEOUT_MS = 5000

/** What discovery needs of a routing engine: its config and events, and setReplicas(). */
type DiscoveryEngine = Pick<EventEmitter<EngineEvents>, 'emit' | 'on' | 'off'> & {
  readonly config: FreshetConfig
  setReplicas(replicas: readonly NodeConfig[] | null): void
}

/**
 * Polls the discovery endpoint of the engine's config and feeds the replica list to the engine.
 * @example
 * const discovery = new ReplicaDiscovery(pool.engine)
 * discovery.start()
 * // later: discovery.state().status === 'ok'
 */
export class ReplicaDiscovery extends EventEmitter<DiscoveryEvents> {
  readonly #engine: DiscoveryEngine
  readonly #now: () => number
  readonly #fetch: typeof fetch
  #timer: NodeJS.Timeout | null = null
  #running = false
  #config: FreshetConfig
  #lastGood: readonly NodeConfig[] | null = null
  #lastSuccessAt: number | null = null
  #lastError: string | null = null
  #status: DiscoveryState['status'] = 'idle'
  #inFlight: Promise<DiscoveryState> | null = null
  /** Aborts the request in flight when stop() is called. */
  #abort: AbortController | null = null
  /** Set by stop(): an answer arriving afterwards is not applied (the engine may be stopping too). */
  #stopped = false
  readonly #onConfig: (config: FreshetConfig) => void

  constructor(engine: DiscoveryEngine, options: { now?: () => number; fetch?: typeof fetch } = {}) {
    super()
    this.#engine = engine
    this.#now = options.now ?? Date.now
    this.#fetch = options.fetch ?? fetch
    this.#config = engine.config
    this.#onConfig = (config) => {
      // setReplicas() emits 'config' with the same object: only a reload is news here.
      if (config === this.#config) return
      const before = this.#config.cluster.discovery
      this.#config = config
      const after = config.cluster.discovery
      if (!after) {
        this.#lastGood = null
        this.#status = 'disabled'
        // back to the static replicas, if discovery had set any (otherwise nothing changed)
        if (before) this.#engine.setReplicas(null)
      } else if (this.#lastGood && before?.endpoint === after.endpoint) {
        this.#apply(this.#lastGood) // mode or static replicas may have changed
      } else if (before?.endpoint !== after.endpoint) {
        this.#lastGood = null
        this.#lastSuccessAt = null
        this.#engine.setReplicas(null)
      }
      if (this.#running) this.#schedule(0)
    }
  }

  /** Starts polling (first poll at once). Does nothing while the config has no discovery section. */
  start(): void {
    if (this.#running) return
    this.#running = true
    this.#stopped = false
    this.#engine.on('config', this.#onConfig)
    // a reload before start() was not heard: catch up with the running config
    if (this.#engine.config !== this.#config) this.#onConfig(this.#engine.config)
    this.#schedule(0)
  }

  /** Stops polling and aborts a request in flight; the replicas discovered so far stay in the engine. */
  stop(): void {
    this.#running = false
    this.#stopped = true
    this.#engine.off('config', this.#onConfig)
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = null
    this.#abort?.abort()
  }

  /** Polls once now and applies the result; resolves with the state afterwards. */
  refresh(): Promise<DiscoveryState> {
    this.#inFlight ??= this.#poll().finally(() => {
      this.#inFlight = null
    })
    return this.#inFlight
  }

  state(): DiscoveryState {
    const d = this.#config.cluster.discovery
    return {
      status: d ? this.#status : 'disabled',
      // served by the admin API: never the endpoint's credentials
      endpoint: d ? redactUrl(d.endpoint) : null,
      lastSuccessAt: this.#lastSuccessAt === null ? null : new Date(this.#lastSuccessAt).toISOString(),
      lastError: this.#lastError === null ? null : redactUrl(this.#lastError),
      replicas: (this.#lastGood ?? []).map((r) => r.name),
    }
  }

  #schedule(ms: number): void {
    if (!this.#running) return
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#timer = null
      void this.refresh().finally(() => {
        const d = this.#config.cluster.discovery
        if (d) this.#schedule(Math.max(100, d.refresh_interval_ms))
      })
    }, ms)
    this.#timer.unref()
  }

  async #poll(): Promise<DiscoveryState> {
    const d = this.#config.cluster.discovery
    if (this.#stopped) return this.state()
    if (!d) {
      this.#status = 'disabled'
      return this.state()
    }
    try {
      const replicas = await this.#fetchReplicas(
        d.endpoint,
        Math.min(MAX_TIMEOUT_MS, Math.max(100, d.refresh_interval_ms)),
      )
      if (this.#stopped) return this.state()
      if (!sameReplicas(this.#lastGood, replicas)) {
        this.#engine.emit(
          'log',
          'info',
          `replica discovery: ${replicas.length} replica(s): ${replicas.map((r) => r.name).join(', ') || '(none)'}`,
          { replicas: replicas.map((r) => r.name) },
        )
      }
      this.#lastGood = replicas
      this.#lastSuccessAt = this.#now()
      this.#lastError = null
      this.#status = 'ok'
      this.#apply(replicas)
      this.emit('applied', replicas)
    } catch (err) {
      if (this.#stopped) return this.state()
      this.#fail(redactUrl((err as Error).message), d.fallback_cache_ttl_ms)
    }
    return this.state()
  }

  #fail(message: string, ttlMs: number): void {
    this.#lastError = message
    const age = this.#lastSuccessAt === null ? Number.POSITIVE_INFINITY : this.#now() - this.#lastSuccessAt
    if (this.#lastGood !== null && age > ttlMs) {
      this.#lastGood = null
      this.#status = 'expired'
      this.#engine.setReplicas(null)
      this.#engine.emit(
        'log',
        'error',
        `replica discovery failing for ${Math.round(age)} ms (over fallback_cache_ttl_ms ${ttlMs}): discovered replicas dropped: ${message}`,
      )
      this.emit('expired')
    } else {
      this.#status = this.#lastGood === null ? (this.#status === 'expired' ? 'expired' : 'failing') : 'stale'
      this.#engine.emit(
        'log',
        'warn',
        `replica discovery failed${this.#lastGood ? ', keeping the last good list' : ''}: ${message}`,
      )
    }
    this.emit('failed', message, this.state())
  }

  /** replace: the discovered list; extend: static replicas plus discovered ones with new names. */
  #apply(discovered: readonly NodeConfig[]): void {
    const cfg = this.#config
    const mode = cfg.cluster.discovery?.mode ?? 'replace'
    const primary = cfg.cluster.primary.name
    let list = discovered.filter((r) => r.name !== primary)
    if (mode === 'extend') {
      const names = new Set(cfg.cluster.replicas.map((r) => r.name))
      list = [...cfg.cluster.replicas, ...list.filter((r) => !names.has(r.name))]
    }
    this.#engine.setReplicas(Object.freeze(list.map((r) => Object.freeze({ ...r }))))
  }

  async #fetchReplicas(endpoint: string, timeoutMs: number): Promise<NodeConfig[]> {
    const abort = new AbortController()
    this.#abort = abort
    let text: string
    try {
      text = await this.#fetchText(endpoint, timeoutMs, abort.signal)
    } finally {
      if (this.#abort === abort) this.#abort = null
    }
    if (text.length > MAX_BODY_BYTES) throw new Error(`answer over ${MAX_BODY_BYTES} bytes`)
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch {
      throw new Error('answer is not JSON')
    }
    const parsed = DiscoveryPayloadSchema.safeParse(body)
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `${formatPath(i.path) || '(root)'}: ${i.message}`)
      throw new Error(`answer refused: ${issues.join('; ')}`)
    }
    const seen = new Set<string>([this.#config.cluster.primary.name])
    for (const [i, r] of parsed.data.replicas.entries()) {
      if (seen.has(r.name))
        throw new Error(`answer refused: replicas[${i}].name: duplicate or primary name '${r.name}'`)
      seen.add(r.name)
    }
    return parsed.data.replicas
  }

  /** The answer's body text; `stop` (stop()) aborts the request and the reading. */
  async #fetchText(endpoint: string, timeoutMs: number, stop: AbortSignal): Promise<string> {
    let res: Response
    try {
      const { url, authorization } = splitCredentials(endpoint)
      res = await this.#fetch(url, {
        signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), stop]),
        headers: { accept: 'application/json', ...(authorization ? { authorization } : {}) },
      })
    } catch (err) {
      const e = err as Error
      throw new Error(
        e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : `request failed: ${e.message}`,
      )
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => {})
      throw new Error(`HTTP ${res.status} from the discovery endpoint`)
    }
    try {
      return await res.text()
    } catch (err) {
      const e = err as Error
      throw new Error(
        e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : `reading failed: ${e.message}`,
      )
    }
  }
}

/**
 * fetch() refuses a URL with credentials (`https://user:pass@host/...`): they go in a Basic
 * Authorization header instead, the URL without them.
 */
function splitCredentials(endpoint: string): { url: string; authorization: string | null } {
  const url = new URL(endpoint)
  if (url.username === '' && url.password === '') return { url: endpoint, authorization: null }
  const user = decodeURIComponent(url.username)
  const password = decodeURIComponent(url.password)
  url.username = ''
  url.password = ''
  return {
    url: url.toString(),
    authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
  }
}

/** Same names, URLs, weights and zones in the same order. */
function sameReplicas(a: readonly NodeConfig[] | null, b: readonly NodeConfig[]): boolean {
  if (a === null || a.length !== b.length) return false
  return a.every(
    (r, i) =>
      r.name === b[i]!.name && r.url === b[i]!.url && r.weight === b[i]!.weight && r.zone === b[i]!.zone,
  )
}
