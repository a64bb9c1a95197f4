// A lone BEGIN sent through the extended protocol (Parse "BEGIN" / Bind / Describe / Execute / Sync, as
// JDBC, pgx and node-postgres with named statements send it) answered by freshet on a sharded config,
// message for message as PostgreSQL answers that batch, so it can be held like a simple-query BEGIN.

import type { Classification } from '../core/classify/classification.js'
import {
  BIND_COMPLETE,
  commandComplete,
  decodeBind,
  decodeDescribe,
  decodeExecute,
  decodeParse,
  FrontendCode,
  NO_DATA,
  PARSE_COMPLETE,
  parameterDescription,
  readyForQuery,
} from '../protocol/index.js'
import type { Job } from './extended-batch.js'

// every message: 1 byte code, then int32 length that counts itself but not the code
const HEADER_LENGTH = 5
const NO_PARAMETERS = parameterDescription([])

/** A Parse that declares no parameter types (a BEGIN with declared ones fails at a Bind without values). */
function noParamTypes(parse: Buffer | null): boolean {
  return parse !== null && decodeParse(parse.subarray(HEADER_LENGTH)).paramTypes.length === 0
}

/**
 * Bind of the unnamed portal with no values, at most one parameter format (0 text or 1 binary: one
 * format applies to all, so the server accepts it with none) and at most one result format (a
 * statement without rows never applies it): what the server accepts for BEGIN. Layout after the
 * names: int16 format count, formats, int16 value count, values, int16 result format count, formats.
 */
function plainBind(whole: Buffer): boolean {
  const body = whole.subarray(HEADER_LENGTH)
  const head = decodeBind(body)
  if (head.portal !== '') return false
  const rest = body.subarray(head.restStart)
  if (rest.length < 2) return false
  const formats = rest.readInt16BE(0)
  if (formats < 0 || formats > 1 || rest.length < 6 + 2 * formats) return false
  if (formats === 1 && rest.readInt16BE(2) !== 0 && rest.readInt16BE(2) !== 1) return false
  const at = 2 + 2 * formats
  if (rest.readInt16BE(at) !== 0) return false
  const results = rest.readInt16BE(at + 2)
  return results >= 0 && results <= 1 && rest.length === at + 4 + 2 * results
}

/**
 * The bytes PostgreSQL answers for `job` when it is a lone BEGIN batch (Parses of the BEGIN, one Bind
 * of it, Describes of that statement or portal, one Execute, Sync), or null for anything else (the
 * caller keeps its usual path). `c`: the job's one classification, a one-statement BEGIN.
 * @example
 * loneBeginAnswer(job, c) // ParseComplete BindComplete NoData CommandComplete(BEGIN) ReadyForQuery(T)
 */
export function loneBeginAnswer(job: Job, c: Classification): Buffer | null {
  const items = job.items
  if (job.kind !== 'extended' || items === null || job.syncs !== 1 || job.texts !== null) return null
  if (c.kind !== 'transaction' || c.statementCount !== 1 || c.transaction?.action !== 'begin') return null
  const out: Buffer[] = []
  let bound = false
  let executed = false
  for (const [i, item] of items.entries()) {
    const last = i === items.length - 1
    switch (item.code) {
      case FrontendCode.Parse:
        if (bound || item.text === null || !noParamTypes(item.stmt?.parse ?? item.unnamed)) return null
        out.push(PARSE_COMPLETE)
        break
      case FrontendCode.Bind:
        if (bound || item.text === null || !noParamTypes(item.stmt?.parse ?? item.unnamed)) return null
        if (!plainBind(item.whole)) return null
        bound = true
        out.push(BIND_COMPLETE)
        break
      case FrontendCode.Describe: {
        const target = decodeDescribe(item.whole.subarray(HEADER_LENGTH))
        if (target.kind === 'P') {
          if (!bound || executed || target.name !== '') return null
          out.push(NO_DATA)
        } else {
          if (item.text === null || !noParamTypes(item.stmt?.parse ?? item.unnamed)) return null
          out.push(NO_PARAMETERS, NO_DATA)
        }
        break
      }
      case FrontendCode.Execute:
        if (!bound || executed || decodeExecute(item.whole.subarray(HEADER_LENGTH)).portal !== '') return null
        executed = true
        out.push(commandComplete('BEGIN'))
        break
      case FrontendCode.Sync:
        if (!last || !executed) return null
        out.push(readyForQuery('T'))
        break
      default:
        return null
    }
  }
  return executed ? Buffer.concat(out) : null
}
