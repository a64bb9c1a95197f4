// Recent routing decisions, sampled by telemetry.log_sampling_rate into a ring buffer (admin API) and
// into the structured log: statement fingerprints, never statement text or parameters.

import type { Logger } from 'pino'
import type { Classification } from '../core/classify/classification.js'
import type { Decision } from '../core/route/decision.js'
import type { TelemetrySource } from './telemetry-source.js'

/** One sampled decision as `GET /api/v1/decisions` returns it. */
export interface DecisionRecord {
  readonly at: string
  /** Short hash of the normalised statement (literals and comments folded); never its text. */
  readonly fingerprint: string | null
  readonly kind: string
  readonly target: string | null
  readonly role: string | null
  readonly tier: string | null
  readonly tier_source: string | null
  readonly reason: string
  readonly lag_ms: number | null
  /** Upper bound on the target's staleness at dispatch (ms): 0 for the primary, null when unknown. */
  readonly staleness_bound_ms: number | null
  readonly class_reason: string
  readonly decide_us: number
  readonly error: string | null
  /**
   * Sharded configs: the shard that served it (`@aggregate`: the aggregate node) and where the shard came
   * from. The key itself is left out: it is a statement value, and the log never holds those.
   */
  readonly shard?: { readonly shard: string; readonly source: string }
  /** Shadow mode: where the statement would have gone (it ran on the primary). */
  readonly would_be?: { readonly target: string; readonly reason: string; readonly lag_ms: number | null }
}

/**
 * A fixed-size ring of sampled decisions.
 * @example
 * const log = new DecisionLog({ capacity: 500 })
 * log.attach(pool.engine, logger)
 * log.recent(20)
 */
export class DecisionLog {
  readonly #ring: (DecisionRecord | undefined)[]
  #next = 0
  #size = 0
  #muted = 0
  #detach: (() => void) | null = null
  readonly #random: () => number
  readonly #onRecord: ((record: DecisionRecord) => void) | null

  /** `onRecord` also receives every record stored (a proxy worker passes them to the admin process). */
  constructor(
    options: { capacity?: number; random?: () => number; onRecord?: (record: DecisionRecord) => void } = {},
  ) {
    this.#ring = new Array(Math.max(1, options.capacity ?? 1000))
    this.#random = options.random ?? Math.random
    this.#onRecord = options.onRecord ?? null
  }

  get capacity(): number {
    return this.#ring.length
  }

  /** Samples the engine's decisions at its current `telemetry.log_sampling_rate`; returns a detach function. */
  attach(engine: TelemetrySource, logger?: Logger): () => void {
    this.#detach?.()
    const onDecision = (d: Decision, c: Classification) => {
      if (this.#muted > 0) return
      const rate = engine.config.telemetry.log_sampling_rate
      if (rate <= 0 || (rate < 1 && this.#random() >= rate)) return
      const record = this.record(d, c)
      if (logger) {
        // Failed decisions are worth a warning; the rest is debug detail.
        if (d.target === null) logger.warn({ decision: record }, 'routing decision failed')
        else logger.debug({ decision: record }, 'routing decision')
      }
    }
    engine.on('decision', onDecision)
    this.#detach = () => {
      engine.off('decision', onDecision)
      this.#detach = null
    }
    return this.#detach
  }

  /** Stores one decision (unsampled) and returns what was stored. */
  record(d: Decision, c: Classification): DecisionRecord {
    const rec: DecisionRecord = {
      at: this.#isoNow(),
      fingerprint: c.fingerprint ?? null,
      kind: c.kind,
      target: d.target,
      role: d.role,
      tier: d.tier,
      tier_source: d.tierSource,
      reason: d.reason,
      lag_ms: d.lagMs,
      staleness_bound_ms: d.stalenessBoundMs,
      class_reason: d.classReason,
      decide_us: Math.round(d.decideNs / 100) / 10,
      error: d.error,
      ...(d.shard ? { shard: { shard: d.shard.shard, source: d.shard.source } } : {}),
      ...(d.wouldBe
        ? { would_be: { target: d.wouldBe.target, reason: d.wouldBe.reason, lag_ms: d.wouldBe.lagMs } }
        : {}),
    }
    this.store(rec)
    this.#onRecord?.(rec)
    return rec
  }

  // Date#toISOString costs more than the rest of a record: under load many records share a millisecond.
  #isoMs = -1
  #iso = ''
  #isoNow(): string {
    const now = Date.now()
    if (now !== this.#isoMs) {
      this.#isoMs = now
      this.#iso = new Date(now).toISOString()
    }
    return this.#iso
  }

  /** Stores a record made elsewhere (a proxy worker's sampled decision). */
  store(rec: DecisionRecord): void {
    this.#ring[this.#next] = rec
    this.#next = (this.#next + 1) % this.#ring.length
    if (this.#size < this.#ring.length) this.#size++
  }

  /** The newest `limit` records, newest first. */
  recent(limit = 100): DecisionRecord[] {
    const n = Math.min(Math.max(0, Math.floor(limit)), this.#size)
    const out: DecisionRecord[] = []
    for (let i = 1; i <= n; i++) {
      const rec = this.#ring[(this.#next - i + this.#ring.length) % this.#ring.length]
      if (rec) out.push(rec)
    }
    return out
  }

  /** Runs `fn` without sampling the decisions it makes. */
  uncounted<T>(fn: () => T): T {
    this.#muted++
    try {
      return fn()
    } finally {
      this.#muted--
    }
  }
}
