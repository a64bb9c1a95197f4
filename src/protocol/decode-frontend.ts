// Decoders for the client messages routing must read: startup packets, Query, Parse, Bind, Describe,
// Close, Execute and the password family. Everything else is forwarded without being decoded.

import { BodyReader } from './body-reader.js'
import { StartupCode } from './message-codes.js'

/** A decoded startup-phase packet (the frame reader's {@link STARTUP_FRAME}). */
export type StartupPacket =
  | {
      kind: 'startup'
      /** The raw int32: major << 16 | minor. */
      version: number
      major: number
      minor: number
      /** user, database, application_name, options, replication, `_pq_.*` extensions... */
      params: Record<string, string>
    }
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | {
      kind: 'cancel'
      pid: number
      /** 4 bytes in protocol 3.0, up to 256 in 3.2. A view into the packet. */
      secretKey: Buffer
    }

/**
 * Decodes a startup-phase packet body: int32 version-or-request-code, then for a StartupMessage pairs of
 * NUL-terminated name and value ending with an empty name; for a CancelRequest int32 pid and the key.
 * @example
 * reader.feed(chunk, (code, body) => { if (code === STARTUP_FRAME) handle(decodeStartupPacket(body)) })
 */
export function decodeStartupPacket(body: Buffer): StartupPacket {
  const r = new BodyReader(body, 'startup packet')
  const code = r.int32()
  if (code === StartupCode.SSLRequest || code === StartupCode.GSSENCRequest) {
    r.done()
    return { kind: code === StartupCode.SSLRequest ? 'ssl' : 'gssenc' }
  }
  if (code === StartupCode.CancelRequest) {
    const pid = r.int32()
    const secretKey = r.rest()
    if (secretKey.length < 4 || secretKey.length > 256) r.fail(`cancel key of ${secretKey.length} bytes`)
    return { kind: 'cancel', pid, secretKey }
  }
  const params: Record<string, string> = Object.create(null)
  for (;;) {
    const name = r.cstring()
    if (name === '') break
    params[name] = r.cstring()
  }
  r.done()
  return { kind: 'startup', version: code, major: code >>> 16, minor: code & 0xffff, params }
}

/**
 * Query ('Q'): the SQL text, a NUL-terminated string.
 * @example decodeQuery(body) // 'SELECT 1'
 */
export function decodeQuery(body: Buffer): string {
  const r = new BodyReader(body, 'Query')
  const sql = r.cstring()
  r.done()
  return sql
}

export interface ParseMessage {
  /** Prepared statement name; '' is the unnamed statement. */
  name: string
  query: string
  /** Parameter type OIDs (0 = unspecified). */
  paramTypes: number[]
}

/**
 * Parse ('P'): statement name, query, int16 count, then that many int32 type OIDs. The count is read
 * unsigned, as PostgreSQL does (up to 65,535 parameters: postgres.js sends a type per parameter).
 */
export function decodeParse(body: Buffer): ParseMessage {
  const r = new BodyReader(body, 'Parse')
  const name = r.cstring()
  const query = r.cstring()
  const count = r.uint16()
  const paramTypes = new Array<number>(count)
  for (let i = 0; i < count; i++) paramTypes[i] = r.uint32()
  r.done()
  return { name, query, paramTypes }
}

export interface BindHead {
  portal: string
  statement: string
  /** Offset in the body where the statement name starts. */
  statementStart: number
  /** Offset in the body of the NUL that ends the statement name. */
  statementEnd: number
  /** Offset in the body of the parameter format codes: everything from here on is left undecoded. */
  restStart: number
}

/**
 * Bind ('B'): only the portal and statement names and where they lie; parameters stay undecoded.
 * Layout: portal cstring, statement cstring, int16 format count, formats, int16 value count, values...
 */
export function decodeBind(body: Buffer): BindHead {
  const r = new BodyReader(body, 'Bind')
  const portal = r.cstring()
  const statementStart = r.offset
  const statementEnd = r.cstringEnd()
  const statement = body.toString('utf8', statementStart, statementEnd)
  return { portal, statement, statementStart, statementEnd, restStart: statementEnd + 1 }
}

/**
 * Bind's parameter values, for routing by a `$n` shard key: text-format values as strings; binary ones
 * as numbers when 2, 4 or 8 bytes long (int2, int4, int8), as a uuid's hex when 16, else as UTF-8
 * text; NULL as null. Layout after the names: int16 format count, int16 formats (0 none: all text;
 * 1: one for all), int16 value count, then per value int32 length (-1 NULL) and the bytes.
 * @example
 * decodeBindParams(body) // ['42', null]
 */
export function decodeBindParams(body: Buffer): (string | bigint | null)[] {
  const r = new BodyReader(body, 'Bind')
  r.cstring()
  r.cstring()
  const formatCount = r.uint16()
  const formats: number[] = []
  for (let i = 0; i < formatCount; i++) formats.push(r.int16())
  const count = r.uint16()
  const out: (string | bigint | null)[] = []
  for (let i = 0; i < count; i++) {
    const len = r.int32()
    if (len === -1) {
      out.push(null)
      continue
    }
    const v = r.bytes(len)
    const binary = (formatCount === 1 ? formats[0] : formats[i]) === 1
    if (!binary) out.push(v.toString('utf8'))
    else if (len === 8) out.push(v.readBigInt64BE(0))
    else if (len === 4) out.push(BigInt(v.readInt32BE(0)))
    else if (len === 2) out.push(BigInt(v.readInt16BE(0)))
    else if (len === 16) out.push(v.toString('hex'))
    else out.push(v.toString('utf8'))
  }
  return out
}

/** What a Describe or Close names: 'S' a prepared statement, 'P' a portal. */
export interface TargetedMessage {
  kind: 'S' | 'P'
  name: string
}

function decodeTargeted(body: Buffer, what: string): TargetedMessage {
  const r = new BodyReader(body, what)
  const kind = r.byte()
  if (kind !== 0x53 && kind !== 0x50) r.fail(`unknown target kind ${kind}`)
  const name = r.cstring()
  r.done()
  return { kind: kind === 0x53 ? 'S' : 'P', name }
}

/** Describe ('D'): byte 'S' or 'P', then the name. */
export function decodeDescribe(body: Buffer): TargetedMessage {
  return decodeTargeted(body, 'Describe')
}

/** Close ('C'): byte 'S' or 'P', then the name. */
export function decodeClose(body: Buffer): TargetedMessage {
  return decodeTargeted(body, 'Close')
}

/** Execute ('E'): portal name, then int32 maximum rows (0 = no limit). */
export function decodeExecute(body: Buffer): { portal: string; maxRows: number } {
  const r = new BodyReader(body, 'Execute')
  const portal = r.cstring()
  const maxRows = r.int32()
  r.done()
  return { portal, maxRows }
}

/** PasswordMessage ('p' answering cleartext or md5): the password or `md5...` hash, NUL-terminated. */
export function decodePasswordMessage(body: Buffer): string {
  const r = new BodyReader(body, 'PasswordMessage')
  const password = r.cstring()
  r.done()
  return password
}

/**
 * SASLInitialResponse ('p' answering AuthenticationSASL): mechanism name, int32 length of the data
 * (-1 for none), the data.
 */
export function decodeSASLInitialResponse(body: Buffer): { mechanism: string; data: Buffer | null } {
  const r = new BodyReader(body, 'SASLInitialResponse')
  const mechanism = r.cstring()
  const length = r.int32()
  const data = length === -1 ? null : r.bytes(length)
  r.done()
  return { mechanism, data }
}
