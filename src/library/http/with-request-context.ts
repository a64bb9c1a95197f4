// Plain node:http handlers: wraps `(req, res) => ...` so each request runs in its own freshet scope.

import type { IncomingMessage, ServerResponse } from 'node:http'
import { currentContext, withScope } from '../context.js'
import { attachResponseToken, type HttpContextOptions, requestContext } from './request-scope.js'

/**
 * Wraps a node:http request handler: each call runs in a fresh scope with the request's route hint
 * and read-your-writes token, and its response carries `X-Primary-LSN` after writes.
 * @example
 * import { createServer } from 'node:http'
 * import { withRequestContext } from 'freshet/http'
 * createServer(withRequestContext(async (req, res) => {
 *   const { rows } = await pool.query('SELECT * FROM orders WHERE id = $1', [id])
 *   res.end(JSON.stringify(rows))
 * }, { pool })).listen(8080)
 */
export function withRequestContext<
  Req extends IncomingMessage = IncomingMessage,
  Res extends ServerResponse = ServerResponse,
  R = unknown,
>(handler: (req: Req, res: Res) => R, options: HttpContextOptions = {}): (req: Req, res: Res) => R {
  return function freshetHandler(req, res) {
    return withScope(
      () => {
        attachResponseToken(res, currentContext()!, options)
        return handler(req, res)
      },
      requestContext(req.headers, options),
    )
  }
}
