// freshet's own settings answered by the proxy itself, never sent to a server: `SET freshet.freshness`
// (and RESET, SET LOCAL) as a simple Query or as an extended-protocol batch about that one statement.

import type { Classification } from '../core/classify/classification.js'
import {
  BIND_COMPLETE,
  commandComplete,
  FrontendCode,
  NO_DATA,
  noticeResponse,
  PARSE_COMPLETE,
  readyForQuery,
} from '../protocol/index.js'
import { localOutsideTransaction, onlyFreshetSettings, type SessionState } from '../session/session-state.js'
import type { Job } from './extended-batch.js'

/** What PostgreSQL answers to SET LOCAL outside a transaction block (before its SET), and then ignores it. */
const SET_LOCAL_WARNING = noticeResponse({
  severity: 'WARNING',
  code: '25P01',
  message: 'SET LOCAL can only be used in transaction blocks',
})

/** ParameterDescription with no parameters. */
const NO_PARAMETERS = Buffer.from([0x74, 0, 0, 0, 6, 0, 0])

/**
 * freshet's answer to a job that only sets freshet's own settings (the session consumes them), or
 * null: the job goes to a server.
 *
 * @example
 * answerOwnSettings(job, classify("SET freshet.freshness = 'eventual'"), state, 'I') // CommandComplete SET, ReadyForQuery
 */
export function answerOwnSettings(job: Job, c: Classification, state: SessionState): Buffer | null {
  if (job.kind === 'extended') return c.settings === undefined ? null : answerSettingsBatch(job, c, state)
  if (job.kind !== 'simple') return null
  const tag = state.consumeSettings(c)
  if (tag === null) return null
  const done = Buffer.concat([commandComplete(tag), readyForQuery(state.txStatus)])
  return localOutsideTransaction(c, state.inTransaction) ? Buffer.concat([SET_LOCAL_WARNING, done]) : done
}

/**
 * `SET freshet.freshness = ...` over the extended protocol (postgres.js, JDBC and others send every
 * statement that way): answered by freshet like the simple-protocol form, never sent to the server.
 * Only a batch about that one statement qualifies (Parse, Bind, Describe, Execute of the portal it
 * binds, Sync, Flush); anything else in it and the batch goes to the server as it is (null).
 */
function answerSettingsBatch(job: Job, c: Classification, state: SessionState): Buffer | null {
  const items = job.items!
  let bound = false
  for (const item of items) {
    switch (item.code) {
      case FrontendCode.Parse:
      case FrontendCode.Bind:
        if (item.text !== job.sql) return null
        if (item.code === FrontendCode.Bind) bound = true
        break
      case FrontendCode.Describe:
        if (item.statementTarget ? item.text !== job.sql : !bound) return null
        break
      case FrontendCode.Execute:
        if (!bound) return null
        break
      case FrontendCode.Sync:
      case FrontendCode.Flush:
        break
      default:
        return null
    }
  }
  if (!onlyFreshetSettings(c)) return null
  const out: Buffer[] = []
  for (const item of items) {
    switch (item.code) {
      case FrontendCode.Parse:
        out.push(PARSE_COMPLETE)
        break
      case FrontendCode.Bind:
        out.push(BIND_COMPLETE)
        break
      case FrontendCode.Describe:
        if (item.statementTarget) out.push(NO_PARAMETERS)
        out.push(NO_DATA)
        break
      case FrontendCode.Execute:
        if (localOutsideTransaction(c, state.inTransaction)) out.push(SET_LOCAL_WARNING)
        out.push(commandComplete(state.consumeSettings(c)!))
        break
      case FrontendCode.Sync:
        out.push(readyForQuery(state.txStatus))
        break
    }
  }
  return Buffer.concat(out)
}
