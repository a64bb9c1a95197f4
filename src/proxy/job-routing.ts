// Where a proxy job goes: its statements classified once at dispatch, then one engine decision for
// the job (a batch of several reads by its strictest read); and the statements a job ran, for pins
// and transactions.

import type { Classification } from '../core/classify/classification.js'
import type { FreshetConfig } from '../core/config/schema.js'
import { FrontendCode } from '../protocol/index.js'
import type { Routed, RoutingEngine } from '../routing/routing-engine.js'
import type { SessionState } from '../session/session-state.js'
import { statementsForPins } from '../session/split-statements.js'
import type { Job } from './extended-batch.js'

const NO_STATEMENTS: readonly Classification[] = Object.freeze([])

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
 * The decision for a classified job outside a held connection (the engine emits it), or a promise of
 * it when it waits for a replica to replay the session's read-your-writes token.
 */
export function decideJob(
  engine: RoutingEngine,
  config: FreshetConfig,
  state: SessionState,
  job: Job,
  reads: readonly Classification[] | null,
): Routed | Promise<Routed> {
  const context = state.context()
  // the proxy waits for a replica only for the session's own token (not for a MIN_LSN hint alone)
  const wait = context.minLsn !== undefined && config.consistency.max_wait_for_sync_ms > 0
  return engine.decide(reads ?? job.classification!, state.view(), context, { wait })
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
  one[0] = c
  if (job.kind === 'simple') return statementsForPins(c, job.sql, engine, one)
  if (job.texts !== null) {
    const out: Classification[] = []
    for (const item of job.items!) {
      if (item.code === FrontendCode.Bind && item.text !== null) out.push(engine.classify(item.text))
    }
    return out
  }
  return one
}
