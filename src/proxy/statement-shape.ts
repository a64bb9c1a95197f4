// What a Describe of a prepared statement tells (its parameter types and its result row type), read
// from ParameterDescription and RowDescription, compared the way PostgreSQL compares a cached plan's
// result type when it re-plans, and PostgreSQL's own error for a change.

import { type ErrorFields, errorResponse, ProtocolError } from '../protocol/index.js'

/**
 * A statement's parameter types and result row type as the server described it. `columns` holds, per
 * result column, its type OID then its type modifier; null for a statement that returns no rows
 * (NoData).
 */
export interface StatementShape {
  readonly params: readonly number[]
  readonly columns: Int32Array | null
}

/** ParameterDescription body: int16 count (unsigned: up to 65,535), then an int32 type OID per parameter. */
export function decodeParameterTypes(body: Buffer): number[] {
  if (body.length < 2 || body.length !== 2 + 4 * body.readUInt16BE(0))
    throw new ProtocolError(
      'malformed ParameterDescription from the server: its count does not match its length',
    )
  const n = body.readUInt16BE(0)
  const out = new Array<number>(n)
  for (let i = 0; i < n; i++) out[i] = body.readUInt32BE(2 + 4 * i)
  return out
}

const MALFORMED_ROW_DESCRIPTION =
  'malformed RowDescription from the server: its field count runs past its length'

/**
 * RowDescription body: int16 count, then per column a cstring name, int32 table OID, int16 column
 * number, int32 type OID, int16 type length, int32 type modifier, int16 format code.
 */
export function decodeColumnTypes(body: Buffer): Int32Array {
  if (body.length < 2) throw new ProtocolError(MALFORMED_ROW_DESCRIPTION)
  const n = body.readUInt16BE(0)
  const out = new Int32Array(2 * n)
  let at = 2
  for (let i = 0; i < n; i++) {
    const nul = body.indexOf(0, at) // the name's end
    // a field is its name, then 18 bytes: a count that runs past the message is malformed, not garbage
    if (nul < 0 || nul + 19 > body.length) throw new ProtocolError(MALFORMED_ROW_DESCRIPTION)
    at = nul + 1
    out[2 * i] = body.readInt32BE(at + 6) // after table OID (4) and column number (2)
    out[2 * i + 1] = body.readInt32BE(at + 12) // after the type OID (4) and length (2)
    at += 18
  }
  return out
}

/**
 * Whether two descriptions give the same result row type: as PostgreSQL's equalRowTypes, the same
 * number of columns with the same type and type modifier each; names, tables and column numbers may
 * differ (a table dropped and created again with the same column types is the same row type).
 *
 * @example
 * sameRowType({ params: [], columns: Int32Array.of(23, -1) }, { params: [], columns: Int32Array.of(1007, -1) }) // false
 */
export function sameRowType(a: StatementShape, b: StatementShape): boolean {
  const x = a.columns
  const y = b.columns
  if (x === null || y === null) return x === y
  if (x.length !== y.length) return false
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false
  return true
}

/**
 * PostgreSQL's error for a prepared statement whose result type changed since it was prepared
 * (plancache.c, RevalidateCachedQuery; postgres.js re-prepares when it sees that routine). The line
 * number (L) PostgreSQL adds is left out: it differs between server versions. `like`: an error of the
 * same server, whose localized severity is reused.
 */
export function resultTypeChanged(like: ErrorFields | null): Buffer {
  return errorResponse({
    severity: 'ERROR',
    ...(like?.severityLocal !== undefined ? { severityLocal: like.severityLocal } : {}),
    code: '0A000',
    message: 'cached plan must not change result type',
    file: 'plancache.c',
    routine: 'RevalidateCachedQuery',
  })
}

/**
 * PostgreSQL's refusal of a Parse whose statement name the client already has (prepare.c), in place
 * of the refusal of freshet's failing Bind; `like` as for {@link resultTypeChanged}.
 */
export function statementExists(name: string, like: ErrorFields | null): Buffer {
  return errorResponse({
    severity: 'ERROR',
    ...(like?.severityLocal !== undefined ? { severityLocal: like.severityLocal } : {}),
    code: '42P05',
    message: `prepared statement "${name}" already exists`,
    file: 'prepare.c',
    routine: 'StorePreparedStatement',
  })
}
