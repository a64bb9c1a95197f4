// Where a proxy job goes: its statements classified once at dispatch (the one that routes it, and for
// pins and transactions the statements it runs, carried on the job to its ReadyForQuery).

import type { Classification } from '../core/classify/classification.js'
import { FrontendCode } from '../protocol/index.js'
import type { RoutingEngine } from '../routing/routing-engine.js'
import { statementsForPins } from '../session/split-statements.js'
import type { Job } from './extended-batch.js'

const NO_STATEMENTS: readonly Classification[] = Object.freeze([])

/**
 * Classifies the job's statements, once each: sets `job.classification` (for a batch of several, the
 * statement that routes it, `job.sql`) and `job.statements` (see Job). Returns the reads a batch of
 * several routes by, or null: the first statement of a batch that needs the primary routes it, else
 * all its reads do (the engine decides their strictest).
 * @example
 * const reads = classifyJob(engine, job)
 * engine.decide(reads ?? job.classification!, state.view(), state.context(), { wait: true })
 */
export function classifyJob(engine: Pick<RoutingEngine, 'classify'>, job: Job): Classification[] | null {
  if (job.classified) return job.reads
  let c = job.sql === null ? null : engine.classify(job.sql)
  let reads: Classification[] | null = null
  const texts = job.texts
  if (texts !== null) {
    const byText = new Map<string, Classification>()
    let routing: Classification | null = null
    reads = []
    for (const text of texts) {
      const s = engine.classify(text)
      byText.set(text, s)
      if (routing !== null) continue
      if (s.requiresPrimary) {
        routing = s
        job.sql = text
      } else reads.push(s)
    }
    if (routing !== null) {
      c = routing
      reads = null
    }
    const statements: Classification[] = []
    for (const item of job.items!) {
      if (item.code === FrontendCode.Bind && item.text !== null) statements.push(byText.get(item.text)!)
    }
    job.statements = statements
  } else if (c !== null && job.kind === 'simple') {
    const split = statementsForPins(c, job.sql, engine, NO_STATEMENTS)
    job.statements = split === NO_STATEMENTS ? null : split
  }
  job.classification = c
  job.classified = true
  job.reads = reads
  return reads
}

/**
 * The statements a job ran, in order, for pins and transactions: `job.statements` when dispatch set
 * them, else its one classification in `one` (reused by the caller: valid until the next call).
 */
export function statementsOf(job: Job, one: Classification[]): readonly Classification[] {
  const c = job.classification
  if (c === null) return NO_STATEMENTS
  if (job.statements !== null) return job.statements
  one[0] = c
  return one
}
