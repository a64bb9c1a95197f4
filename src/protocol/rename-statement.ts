// Rewrites the prepared-statement name inside Parse, Bind, Describe and Close, copying every other byte.

import { FrontendCode } from './message-codes.js'
import { ProtocolError } from './protocol-error.js'

// every message: 1 byte code, then int32 length that counts itself but not the code
const HEADER_LENGTH = 5

/** Replaces the NUL-terminated string starting at `start` in `whole` by `name`, fixing the length. */
function replaceName(whole: Buffer, start: number, name: string, what: string): Buffer {
  const end = whole.indexOf(0, start)
  if (start > whole.length || end < 0) throw new ProtocolError(`malformed ${what}: string without terminator`)
  if (name.includes('\0')) throw new TypeError('a statement name cannot contain NUL')
  const nameLength = Buffer.byteLength(name)
  const out = Buffer.allocUnsafe(whole.length - (end - start) + nameLength)
  // [code][int32 length][...before the name][new name][NUL and everything after, unchanged]
  whole.copy(out, 0, 0, start)
  out.writeUInt32BE(out.length - 1, 1)
  out.write(name, start, 'utf8')
  whole.copy(out, start + nameLength, end)
  return out
}

function expectCode(whole: Buffer, code: number, what: string): void {
  if (whole.length < HEADER_LENGTH || whole[0] !== code) throw new TypeError(`not a ${what} message`)
}

/**
 * Parse ('P') with another statement name: the name is the first field of the body.
 * @example server.write(renameParse(whole, `freshet_s${id}`))
 */
export function renameParse(whole: Buffer, name: string): Buffer {
  expectCode(whole, FrontendCode.Parse, 'Parse')
  return replaceName(whole, HEADER_LENGTH, name, 'Parse')
}

/** Bind ('B') with another statement name: the second field, after the portal name. */
export function renameBind(whole: Buffer, name: string): Buffer {
  expectCode(whole, FrontendCode.Bind, 'Bind')
  const portalEnd = whole.indexOf(0, HEADER_LENGTH)
  if (portalEnd < 0) throw new ProtocolError('malformed Bind: string without terminator')
  return replaceName(whole, portalEnd + 1, name, 'Bind')
}

/**
 * Describe ('D') or Close ('C') with another name: the name follows the 'S'/'P' byte. The proxy calls
 * it for 'S' (statements); portals are unnamed or per transaction and need no renaming.
 */
export function renameDescribeOrClose(whole: Buffer, name: string): Buffer {
  if (
    whole.length < HEADER_LENGTH ||
    (whole[0] !== FrontendCode.Describe && whole[0] !== FrontendCode.Close)
  ) {
    throw new TypeError('not a Describe or Close message')
  }
  return replaceName(
    whole,
    HEADER_LENGTH + 1,
    name,
    whole[0] === FrontendCode.Describe ? 'Describe' : 'Close',
  )
}
