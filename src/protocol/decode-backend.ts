// Decoders for the server messages the proxy must read: authentication, ReadyForQuery, errors and
// notices, BackendKeyData, ParameterStatus, CommandComplete and the COPY responses.

import { BodyReader } from './body-reader.js'
import { AuthCode } from './message-codes.js'

/** Transaction status in ReadyForQuery: 'I' idle, 'T' in a transaction, 'E' in a failed transaction. */
export type TransactionStatus = 'I' | 'T' | 'E'

/** ReadyForQuery ('Z'): one status byte. */
export function decodeReadyForQuery(body: Buffer): TransactionStatus {
  const r = new BodyReader(body, 'ReadyForQuery')
  const status = r.byte()
  r.done()
  if (status === 0x49) return 'I'
  if (status === 0x54) return 'T'
  if (status === 0x45) return 'E'
  return r.fail(`unknown transaction status ${status}`)
}

/** The fields of an ErrorResponse or NoticeResponse, by their documented names. */
export interface ErrorFields {
  /** Non-localized severity (field 'V') when sent, else the localized one ('S'). */
  severity: string
  /** Localized severity (field 'S'). */
  severityLocal?: string
  /** SQLSTATE (field 'C'). */
  code: string
  message: string
  detail?: string
  hint?: string
  position?: string
  internalPosition?: string
  internalQuery?: string
  where?: string
  schema?: string
  table?: string
  column?: string
  dataType?: string
  constraint?: string
  file?: string
  line?: string
  routine?: string
}

const FIELD_NAMES: Readonly<Record<number, keyof ErrorFields>> = {
  83: 'severityLocal', // S
  86: 'severity', // V
  67: 'code', // C
  77: 'message', // M
  68: 'detail', // D
  72: 'hint', // H
  80: 'position', // P
  112: 'internalPosition', // p
  113: 'internalQuery', // q
  87: 'where', // W
  115: 'schema', // s
  116: 'table', // t
  99: 'column', // c
  100: 'dataType', // d
  110: 'constraint', // n
  70: 'file', // F
  76: 'line', // L
  82: 'routine', // R
}

/**
 * ErrorResponse ('E') or NoticeResponse ('N'): repeated (byte field type, NUL-terminated value), ending
 * with a zero byte. Unknown field types are skipped, as the protocol asks.
 */
export function decodeErrorFields(body: Buffer): ErrorFields {
  const r = new BodyReader(body, 'ErrorResponse')
  const fields: Partial<Record<keyof ErrorFields, string>> = {}
  for (;;) {
    const type = r.byte()
    if (type === 0) break
    const value = r.cstring()
    const name = FIELD_NAMES[type]
    if (name) fields[name] = value
  }
  r.done()
  const severity = fields.severity ?? fields.severityLocal ?? ''
  return { ...fields, severity, code: fields.code ?? '', message: fields.message ?? '' }
}

/** A decoded Authentication ('R') request, by the int32 that starts its body. */
export type AuthenticationRequest =
  | { kind: 'ok'; code: AuthCode.Ok }
  | { kind: 'cleartext'; code: AuthCode.CleartextPassword }
  | { kind: 'md5'; code: AuthCode.MD5Password; salt: Buffer }
  | { kind: 'sasl'; code: AuthCode.SASL; mechanisms: string[] }
  | { kind: 'sasl-continue'; code: AuthCode.SASLContinue; data: Buffer }
  | { kind: 'sasl-final'; code: AuthCode.SASLFinal; data: Buffer }
  /** Kerberos, GSS, SSPI and anything newer: freshet does not speak them. */
  | { kind: 'unsupported'; code: number; data: Buffer }

/**
 * Authentication ('R'): int32 type, then type-specific data (md5: 4-byte salt; SASL: NUL-terminated
 * mechanism names ending with an empty one; SASLContinue/SASLFinal: the SASL payload).
 */
export function decodeAuthentication(body: Buffer): AuthenticationRequest {
  const r = new BodyReader(body, 'Authentication')
  const code = r.int32()
  switch (code) {
    case AuthCode.Ok:
      r.done()
      return { kind: 'ok', code }
    case AuthCode.CleartextPassword:
      r.done()
      return { kind: 'cleartext', code }
    case AuthCode.MD5Password: {
      const salt = r.bytes(4)
      r.done()
      return { kind: 'md5', code, salt }
    }
    case AuthCode.SASL: {
      const mechanisms: string[] = []
      for (;;) {
        const name = r.cstring()
        if (name === '') break
        mechanisms.push(name)
      }
      r.done()
      return { kind: 'sasl', code, mechanisms }
    }
    case AuthCode.SASLContinue:
      return { kind: 'sasl-continue', code, data: r.rest() }
    case AuthCode.SASLFinal:
      return { kind: 'sasl-final', code, data: r.rest() }
    default:
      return { kind: 'unsupported', code, data: r.rest() }
  }
}

/** BackendKeyData ('K'): int32 process id, then the secret key (4 bytes in 3.0, up to 256 in 3.2). */
export function decodeBackendKeyData(body: Buffer): { pid: number; secretKey: Buffer } {
  const r = new BodyReader(body, 'BackendKeyData')
  const pid = r.int32()
  const secretKey = r.rest()
  if (secretKey.length < 4 || secretKey.length > 256) r.fail(`secret key of ${secretKey.length} bytes`)
  return { pid, secretKey }
}

/** ParameterStatus ('S'): NUL-terminated name and value. */
export function decodeParameterStatus(body: Buffer): { name: string; value: string } {
  const r = new BodyReader(body, 'ParameterStatus')
  const name = r.cstring()
  const value = r.cstring()
  r.done()
  return { name, value }
}

/** CommandComplete ('C'): the command tag, e.g. 'INSERT 0 1', 'SELECT 5', 'BEGIN'. */
export function decodeCommandComplete(body: Buffer): string {
  const r = new BodyReader(body, 'CommandComplete')
  const tag = r.cstring()
  r.done()
  return tag
}

export interface CopyResponse {
  /** 0 text, 1 binary: the overall format. */
  format: number
  /** Per-column format codes. */
  columnFormats: number[]
}

/** CopyInResponse ('G'), CopyOutResponse ('H'), CopyBothResponse ('W'): int8 format, int16 n, n x int16. */
export function decodeCopyResponse(body: Buffer): CopyResponse {
  const r = new BodyReader(body, 'CopyResponse')
  const format = r.byte()
  const count = r.int16()
  if (count < 0) r.fail(`negative column count ${count}`)
  const columnFormats = new Array<number>(count)
  for (let i = 0; i < count; i++) columnFormats[i] = r.int16()
  r.done()
  return { format, columnFormats }
}
