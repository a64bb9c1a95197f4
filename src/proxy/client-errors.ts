// Errors on the client side of the proxy: freshet's own errors as ErrorResponse fields, and the
// server's ErrorResponse read back as an Error.

import { isFreshetError, SQLSTATE } from '../core/errors.js'
import { decodeErrorFields, type ErrorFields, ProtocolError } from '../protocol/index.js'

/** SQLSTATE and message for an error freshet raises itself. */
export function errorFields(
  err: unknown,
  severity = 'ERROR',
): { severity: string; code: string; message: string } {
  if (err instanceof ProtocolError) return { severity, code: err.sqlState, message: err.message }
  if (isFreshetError(err)) return { severity, code: SQLSTATE[err.code], message: err.message }
  const sqlState = (err as { sqlState?: unknown })?.sqlState
  if (typeof sqlState === 'string') return { severity, code: sqlState, message: (err as Error).message }
  return { severity, code: 'XX000', message: `freshet: internal error: ${(err as Error)?.message ?? err}` }
}

/** A server's ErrorResponse as an Error with its SQLSTATE and message (not detail: it may hold data). */
export function serverError(body: Buffer): Error {
  const fields = errorFieldsOf(body)
  if (fields === null) return new Error('the server sent a malformed ErrorResponse')
  return Object.assign(new Error(fields.message), { code: fields.code })
}

/** An ErrorResponse body's fields, or null when it is malformed. */
export function errorFieldsOf(body: Buffer): ErrorFields | null {
  try {
    return decodeErrorFields(body)
  } catch {
    return null
  }
}
