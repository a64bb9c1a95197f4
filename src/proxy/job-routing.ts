// Where a proxy job goes: its statements classified once at dispatch, then one decision for the job
// (a batch of several reads routes by its strictest), waiting for a replica to replay the session's
// read-your-writes token when it must; and the statements a job ran, for pins and transactions.

import type { Classification } from '../core/classify/classification.js'
import type { FreshetConfig } from '../core/config/schema.js'
import { parseLsn } from '../core/lsn.js'
import type { Decision } from '../core/route/decision.js'
import type { RoutingContext, SessionView } from '../core/route/routing-context.js'
import { FrontendCode } from '../protocol/index.js'
import type { RoutingEngine } from '../routing/routing-engine.js'
import type { SessionState } from '../session/session-state.js'
import { splitStatements } from '../session/split-statements.js'
import type { Job } from './extended-batch.js'

const NO_STATEMENTS: readonly Classification[] = Object.freeze([])

/** A decision and the classification it was made from. */
export interface Picked {
  readonly classification: Classification
  readonly decision: Decision
}

/**
 * The decision for a batch of reads (none needs the primary by its class). Each distinct statement is
 * decided as a dry run; a decision for the primary wins (an unannotated read under
 * `routing.unannotated: primary`, a strict tier, a volatile function, a token no replica has...),
 * then an error decision (that statement could not run alone either), else the read whose tier has
 * the smallest `max_lag_ms`, made to honour the latest MIN_LSN of the batch. Only the one chosen is
 * decided for real (without emitting: the caller emits once it is final).
 */
function strictestRead(
  engine: RoutingEngine,
  reads: readonly Classification[],
  view: SessionView,
  context: RoutingContext,
  tiers: FreshetConfig['routing']['tiers'],
  started: bigint,
): Picked {
  const primary = engine.tracker.primary
  let best: Picked | null = null
  let bestBound = 0
  let failed: Picked | null = null
  let latest: bigint | null = null
  let latestText: string | null = null
  // candidates are compared on dry runs (no round-robin step, fallback token or breaker trial);
  // only the one chosen is decided for real
  const real = (c: Classification) => ({
    classification: c,
    decision: engine.decide(c, view, context, started, false),
  })
  for (const c of reads) {
    const d = engine.decide(c, view, context, started, false, true)
    if (d.target === primary) return real(c)
    if (d.target === null) {
      failed ??= { classification: c, decision: d }
      continue
    }
    // ROUTE_TO: replica / a route_replica rule: any replica, the loosest bound
    const bound = d.tier === null ? Number.POSITIVE_INFINITY : (tiers[d.tier]?.max_lag_ms ?? 0)
    if (best === null || bound < bestBound) {
      best = { classification: c, decision: d }
      bestBound = bound
    }
    const lsn = d.minLsn === null ? null : parseLsn(d.minLsn)
    if (lsn !== null && (latest === null || lsn > latest)) {
      latest = lsn
      latestText = d.minLsn
    }
  }
  if (failed !== null || best === null) return real(failed!.classification)
  if (latest === null || (best.decision.minLsn !== null && parseLsn(best.decision.minLsn) === latest))
    return real(best.classification)
  // the strictest read, decided again with the batch's latest token as its MIN_LSN
  const c = best.classification
  const classification: Classification = Object.freeze({
    ...c,
    hints: Object.freeze({ ...c.hints, minLsn: latestText! }),
  })
  return { classification, decision: engine.decide(classification, view, context, started, false) }
}

/**
 * Classifies the job's statements and sets `job.classification` (and for a batch of several, the
 * statement that routes it, `job.sql`). Returns the reads a batch of several routes by, or null: the
 * first statement of a batch that needs the primary routes it, else all its reads do.
 */
export function classifyJob(engine: RoutingEngine, job: Job): Classification[] | null {
  let c = job.sql === null ? null : engine.classify(job.sql)
  let reads: Classification[] | null = null
  if (job.texts !== null) {
    reads = []
    for (const text of job.texts) {
      const s = engine.classify(text)
      if (s.requiresPrimary) {
        job.sql = text
        c = s
        reads = null
        break
      }
      reads.push(s)
    }
  }
  job.classification = c
  return reads
}

/**
 * The decision for a classified job outside a held connection (emitted once, as 'decision'), or a
 * promise of it when it waits for a replica to replay the session's token. `live`: whether the
 * client is still there when the wait ends (a batch's decision is not emitted for a client gone).
 */
export function decideJob(
  engine: RoutingEngine,
  config: FreshetConfig,
  state: SessionState,
  job: Job,
  reads: readonly Classification[] | null,
  live: () => boolean,
): Picked | Promise<Picked> {
  const c = job.classification!
  if (reads !== null) return decideReads(engine, config, state, reads, live)
  const context = state.context()
  if (context.minLsn !== undefined && config.consistency.max_wait_for_sync_ms > 0) {
    return engine
      .routeAwait(job.sql!, state.view(), context)
      .then(({ decision }) => ({ classification: c, decision }))
  }
  return { classification: c, decision: engine.decide(c, state.view(), context) }
}

/**
 * A batch of several reads, routed by the strictest (see strictestRead). Waits for a replica to
 * replay the session's token as a single read does, then decides again.
 */
function decideReads(
  engine: RoutingEngine,
  config: FreshetConfig,
  state: SessionState,
  reads: readonly Classification[],
  live: () => boolean,
): Picked | Promise<Picked> {
  const started = process.hrtime.bigint()
  const tiers = config.routing.tiers
  const picked = strictestRead(engine, reads, state.view(), state.context(), tiers, started)
  const maxWait = config.consistency.max_wait_for_sync_ms
  const lsn = picked.decision.minLsn
  if (
    picked.decision.reason === 'read_your_writes' &&
    lsn !== null &&
    state.context().minLsn !== undefined &&
    maxWait > 0 &&
    !config.routing.shadow
  ) {
    return engine.waitForReplay(lsn, maxWait).then((reached) => {
      if (!live()) return picked
      const final = reached
        ? strictestRead(engine, reads, state.view(), state.context(), tiers, started)
        : picked
      engine.emit('decision', final.decision, final.classification)
      return final
    })
  }
  engine.emit('decision', picked.decision, picked.classification)
  return picked
}

/**
 * The statements a job ran, in order, for pins and transactions: its classification; for a
 * multi-statement string that pins or releases anything, one per statement (the string's own
 * classification keeps only its first pin and its last release); for a batch of several statements,
 * one per Bind. A one-statement answer is `one`, reused: valid until the next call.
 */
export function statementsOf(
  engine: RoutingEngine,
  job: Job,
  one: Classification[],
): readonly Classification[] {
  const c = job.classification
  if (c === null) return NO_STATEMENTS
  if (job.kind === 'simple' && c.statementCount > 1 && (c.pin !== undefined || c.unpin !== undefined)) {
    const split = splitStatements(job.sql!, (sql) => engine.classify(sql))
    if (split !== null) return split
  } else if (job.texts !== null) {
    const out: Classification[] = []
    for (const item of job.items!) {
      if (item.code === FrontendCode.Bind && item.text !== null) out.push(engine.classify(item.text))
    }
    return out
  }
  one[0] = c
  return one
}
