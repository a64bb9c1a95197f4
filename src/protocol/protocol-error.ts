// The one error protocol code raises: malformed or oversized input from a peer. The caller closes that peer.

// Same brand as core/errors.ts, so isFreshetError() recognises it without protocol importing core.
const BRAND = Symbol.for('freshet.error')

/**
 * A peer sent bytes that are not valid PostgreSQL protocol (bad length, oversized message, truncated
 * field). Thrown synchronously by the frame reader and the decoders; the proxy answers it by sending an
 * ErrorResponse with `sqlState` (08P01) and closing that one connection.
 *
 * @example
 * try { reader.feed(chunk, onFrame) } catch (err) {
 *   if (err instanceof ProtocolError) return closeClient(err.sqlState, err.message)
 *   throw err
 * }
 */
export class ProtocolError extends Error {
  readonly code = 'FRESHET_PROTOCOL' as const
  /** SQLSTATE protocol_violation. */
  readonly sqlState = '08P01'
  readonly details: Record<string, unknown> | undefined

  constructor(message: string, details?: Record<string, unknown>) {
    super(`freshet: protocol error: ${message}`)
    this.name = 'ProtocolError'
    this.details = details
    Object.defineProperty(this, BRAND, { value: true })
  }
}
