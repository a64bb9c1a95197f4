// Encoders for the client messages the proxy sends to servers: startup, auth answers, simple and
// extended query, cancel. Bodiless messages are shared constant Buffers: never write into them.

import { FrontendCode, StartupCode } from './message-codes.js'
import { MessageWriter } from './message-writer.js'

const writer = new MessageWriter()

/** Sync ('S'). */
export const SYNC: Buffer = writer.begin(FrontendCode.Sync).end().flush()
/** Flush ('H'). */
export const FLUSH: Buffer = writer.begin(FrontendCode.Flush).end().flush()
/** Terminate ('X'). */
export const TERMINATE: Buffer = writer.begin(FrontendCode.Terminate).end().flush()
/** SSLRequest: int32 8, int32 80877103. */
export const SSL_REQUEST: Buffer = writer.beginUntyped().int32(StartupCode.SSLRequest).end().flush()
/** GSSENCRequest: int32 8, int32 80877104. */
export const GSSENC_REQUEST: Buffer = writer.beginUntyped().int32(StartupCode.GSSENCRequest).end().flush()

/**
 * StartupMessage: int32 length, int32 protocol version, name/value cstring pairs, a final NUL.
 * @example startupMessage({ user: 'app', database: 'main', application_name: 'freshet' })
 */
export function startupMessage(
  params: Readonly<Record<string, string>>,
  version: number = StartupCode.Protocol30,
): Buffer {
  writer.beginUntyped().int32(version)
  for (const [name, value] of Object.entries(params)) writer.cstring(name).cstring(value)
  return writer.int8(0).end().flush()
}

/** CancelRequest: int32 length, int32 80877102, int32 pid, the secret key (4 bytes in 3.0). */
export function cancelRequest(pid: number, secretKey: Buffer | number): Buffer {
  writer.beginUntyped().int32(StartupCode.CancelRequest).int32(pid)
  if (typeof secretKey === 'number') writer.int32(secretKey)
  else writer.bytes(secretKey)
  return writer.end().flush()
}

/** PasswordMessage ('p'): a cleartext password or an `md5...` hash, NUL-terminated. */
export function passwordMessage(password: string): Buffer {
  return writer.begin(FrontendCode.Password).cstring(password).end().flush()
}

/** SASLInitialResponse ('p'): mechanism cstring, int32 data length, data (the client-first-message). */
export function saslInitialResponse(mechanism: string, data: Buffer | string): Buffer {
  const length = typeof data === 'string' ? Buffer.byteLength(data) : data.length
  return writer.begin(FrontendCode.Password).cstring(mechanism).int32(length).bytes(data).end().flush()
}

/** SASLResponse ('p'): the SASL data, unframed (the client-final-message). */
export function saslResponse(data: Buffer | string): Buffer {
  return writer.begin(FrontendCode.Password).bytes(data).end().flush()
}

/** Query ('Q'): the SQL, NUL-terminated. */
export function query(sql: string): Buffer {
  return writer.begin(FrontendCode.Query).cstring(sql).end().flush()
}

/** Parse ('P'): statement name, query, int16 count, int32 type OIDs (0 = let the server infer). */
export function parse(name: string, sql: string, paramTypes: readonly number[] = []): Buffer {
  writer.begin(FrontendCode.Parse).cstring(name).cstring(sql).int16(paramTypes.length)
  for (const oid of paramTypes) writer.int32(oid)
  return writer.end().flush()
}

/**
 * Bind ('B') with text-format parameters and results: portal, statement, int16 1 + int16 0 (all
 * parameters text), int16 n + n values (int32 length or -1 for NULL, bytes), int16 0 (results text).
 * The proxy forwards clients' Bind messages untouched (or renamed by `renameBind`); this is for
 * statements freshet issues itself.
 */
export function bind(
  portal: string,
  statement: string,
  values: readonly (string | Buffer | null)[] = [],
): Buffer {
  writer.begin(FrontendCode.Bind).cstring(portal).cstring(statement).int16(1).int16(0).int16(values.length)
  for (const v of values) {
    if (v === null) writer.int32(-1)
    else writer.int32(typeof v === 'string' ? Buffer.byteLength(v) : v.length).bytes(v)
  }
  return writer.int16(0).end().flush()
}

/** Describe ('D'): 'S' statement or 'P' portal, then the name. */
export function describe(kind: 'S' | 'P', name: string): Buffer {
  return writer.begin(FrontendCode.Describe).int8(kind.charCodeAt(0)).cstring(name).end().flush()
}

/** Close ('C'): 'S' statement or 'P' portal, then the name. */
export function close(kind: 'S' | 'P', name: string): Buffer {
  return writer.begin(FrontendCode.Close).int8(kind.charCodeAt(0)).cstring(name).end().flush()
}

/** Execute ('E'): portal name, int32 maximum rows (0 = all). */
export function execute(portal = '', maxRows = 0): Buffer {
  return writer.begin(FrontendCode.Execute).cstring(portal).int32(maxRows).end().flush()
}
