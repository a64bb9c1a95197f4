// Encoders for the server messages the proxy sends itself: errors, auth requests, session setup and
// small text result sets. Bodiless messages are shared constant Buffers: never write into them.

import type { ErrorFields, TransactionStatus } from './decode-backend.js'
import { AuthCode, BackendCode } from './message-codes.js'
import { MessageWriter } from './message-writer.js'

const writer = new MessageWriter()

function bodiless(code: number): Buffer {
  return writer.begin(code).end().flush()
}

/** ParseComplete ('1'). */
export const PARSE_COMPLETE: Buffer = bodiless(BackendCode.ParseComplete)
/** BindComplete ('2'). */
export const BIND_COMPLETE: Buffer = bodiless(BackendCode.BindComplete)
/** CloseComplete ('3'). */
export const CLOSE_COMPLETE: Buffer = bodiless(BackendCode.CloseComplete)
/** NoData ('n'). */
export const NO_DATA: Buffer = bodiless(BackendCode.NoData)
/** EmptyQueryResponse ('I'). */
export const EMPTY_QUERY_RESPONSE: Buffer = bodiless(BackendCode.EmptyQueryResponse)
/** AuthenticationOk: 'R', int32 8, int32 0. */
export const AUTHENTICATION_OK: Buffer = writer
  .begin(BackendCode.Authentication)
  .int32(AuthCode.Ok)
  .end()
  .flush()
/** AuthenticationCleartextPassword: 'R', int32 8, int32 3. */
export const AUTHENTICATION_CLEARTEXT_PASSWORD: Buffer = writer
  .begin(BackendCode.Authentication)
  .int32(AuthCode.CleartextPassword)
  .end()
  .flush()

const READY: Readonly<Record<TransactionStatus, Buffer>> = {
  I: writer.begin(BackendCode.ReadyForQuery).int8(0x49).end().flush(),
  T: writer.begin(BackendCode.ReadyForQuery).int8(0x54).end().flush(),
  E: writer.begin(BackendCode.ReadyForQuery).int8(0x45).end().flush(),
}

/**
 * ReadyForQuery ('Z'): one status byte. Returns a shared Buffer.
 * @example socket.write(readyForQuery('I'))
 */
export function readyForQuery(status: TransactionStatus): Buffer {
  return READY[status]
}

/** What an ErrorResponse or NoticeResponse carries: severity, SQLSTATE and message, the rest optional. */
export type ErrorInput = Pick<ErrorFields, 'severity' | 'code' | 'message'> & Partial<ErrorFields>

// field type byte for each named field, in the order PostgreSQL sends them
const FIELD_CODES: readonly (readonly [keyof ErrorFields, number])[] = [
  ['code', 0x43], // C
  ['message', 0x4d], // M
  ['detail', 0x44], // D
  ['hint', 0x48], // H
  ['position', 0x50], // P
  ['internalPosition', 0x70], // p
  ['internalQuery', 0x71], // q
  ['where', 0x57], // W
  ['schema', 0x73], // s
  ['table', 0x74], // t
  ['column', 0x63], // c
  ['dataType', 0x64], // d
  ['constraint', 0x6e], // n
  ['file', 0x46], // F
  ['line', 0x4c], // L
  ['routine', 0x52], // R
]

function fieldsMessage(code: number, fields: ErrorInput): Buffer {
  // repeated (byte type, cstring value), then a zero byte; 'S' localized and 'V' fixed severity
  writer.begin(code)
  writer.int8(0x53).cstring(fields.severityLocal ?? fields.severity)
  writer.int8(0x56).cstring(fields.severity)
  for (const [name, type] of FIELD_CODES) {
    const value = fields[name]
    if (value !== undefined) writer.int8(type).cstring(value)
  }
  return writer.int8(0).end().flush()
}

/**
 * ErrorResponse ('E').
 * @example errorResponse({ severity: 'ERROR', code: 'ZF001', message: 'freshet: no replica within near_rt' })
 */
export function errorResponse(fields: ErrorInput): Buffer {
  return fieldsMessage(BackendCode.ErrorResponse, fields)
}

/** NoticeResponse ('N'), same fields as an error (severity NOTICE, WARNING, INFO...). */
export function noticeResponse(fields: ErrorInput): Buffer {
  return fieldsMessage(BackendCode.NoticeResponse, fields)
}

/** AuthenticationMD5Password: 'R', int32 12, int32 5, 4-byte salt. */
export function authenticationMD5Password(salt: Buffer): Buffer {
  if (salt.length !== 4) throw new RangeError('md5 salt must be 4 bytes')
  return writer.begin(BackendCode.Authentication).int32(AuthCode.MD5Password).bytes(salt).end().flush()
}

/** AuthenticationSASL: 'R', int32 10, NUL-terminated mechanism names, then an empty one. */
export function authenticationSASL(mechanisms: readonly string[]): Buffer {
  writer.begin(BackendCode.Authentication).int32(AuthCode.SASL)
  for (const m of mechanisms) writer.cstring(m)
  return writer.int8(0).end().flush()
}

/** AuthenticationSASLContinue: 'R', int32 11, the SASL server-first-message. */
export function authenticationSASLContinue(data: Buffer | string): Buffer {
  return writer.begin(BackendCode.Authentication).int32(AuthCode.SASLContinue).bytes(data).end().flush()
}

/** AuthenticationSASLFinal: 'R', int32 12, the SASL server-final-message. */
export function authenticationSASLFinal(data: Buffer | string): Buffer {
  return writer.begin(BackendCode.Authentication).int32(AuthCode.SASLFinal).bytes(data).end().flush()
}

/** ParameterStatus ('S'): name and value, both NUL-terminated. */
export function parameterStatus(name: string, value: string): Buffer {
  return writer.begin(BackendCode.ParameterStatus).cstring(name).cstring(value).end().flush()
}

/** BackendKeyData ('K'): int32 pid, then the secret key (a 4-byte key may be given as an int32). */
export function backendKeyData(pid: number, secretKey: Buffer | number): Buffer {
  writer.begin(BackendCode.BackendKeyData).int32(pid)
  if (typeof secretKey === 'number') writer.int32(secretKey)
  else writer.bytes(secretKey)
  return writer.end().flush()
}

/** CommandComplete ('C'): the command tag, e.g. 'SELECT 3'. */
export function commandComplete(tag: string): Buffer {
  return writer.begin(BackendCode.CommandComplete).cstring(tag).end().flush()
}

/** One column of a text-format result set built by {@link rowDescription}. */
export interface ColumnInput {
  name: string
  /** Type OID; default 25 (text). */
  typeOid?: number
  /** pg_type.typlen; default -1 (variable). */
  typeSize?: number
  typeModifier?: number
  tableOid?: number
  columnNumber?: number
}

/**
 * RowDescription ('T'): int16 count, then per column: name cstring, int32 table OID, int16 column
 * number, int32 type OID, int16 type size, int32 type modifier, int16 format (0 = text).
 * @example socket.write(Buffer.concat([rowDescription([{ name: 'node' }]), dataRow(['replica_1']), commandComplete('SELECT 1')]))
 */
export function rowDescription(columns: readonly ColumnInput[]): Buffer {
  writer.begin(BackendCode.RowDescription).int16(columns.length)
  for (const c of columns) {
    writer
      .cstring(c.name)
      .int32(c.tableOid ?? 0)
      .int16(c.columnNumber ?? 0)
      .int32(c.typeOid ?? 25)
      .int16(c.typeSize ?? -1)
      .int32(c.typeModifier ?? -1)
      .int16(0)
  }
  return writer.end().flush()
}

/** ParameterDescription ('t'): int16 count, then an int32 type OID per parameter. */
export function parameterDescription(typeOids: readonly number[]): Buffer {
  writer.begin(BackendCode.ParameterDescription).int16(typeOids.length)
  for (const oid of typeOids) writer.int32(oid)
  return writer.end().flush()
}

/** DataRow ('D'): int16 count, then per value int32 length (-1 for NULL) and the text bytes. */
export function dataRow(values: readonly (string | null)[]): Buffer {
  writer.begin(BackendCode.DataRow).int16(values.length)
  for (const v of values) {
    if (v === null) writer.int32(-1)
    else writer.int32(Buffer.byteLength(v)).bytes(v)
  }
  return writer.end().flush()
}

/**
 * NegotiateProtocolVersion ('v'): int32 newest version supported (major << 16 | minor, as PostgreSQL
 * sends it), int32 count, then the unrecognized `_pq_.` option names. Sent when a client asks for a
 * newer minor version or for protocol options.
 */
export function negotiateProtocolVersion(newestMinor: number, unrecognized: readonly string[]): Buffer {
  writer
    .begin(BackendCode.NegotiateProtocolVersion)
    .int32(0x30000 | newestMinor)
    .int32(unrecognized.length)
  for (const name of unrecognized) writer.cstring(name)
  return writer.end().flush()
}
