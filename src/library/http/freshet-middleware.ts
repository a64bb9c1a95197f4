// Express (and Connect) middleware: one freshet scope per request, propagation headers in, the write token out.

import type { IncomingMessage, ServerResponse } from 'node:http'
import { currentContext, withScope } from '../context.js'
import { attachResponseToken, type HttpContextOptions, requestContext } from './request-scope.js'

/** A Connect-style middleware; Express accepts it as a RequestHandler. */
export type ConnectMiddleware = (
  req: IncomingMessage,
  res: ServerResponse,
  next: (err?: unknown) => void,
) => void

/**
 * Express/Connect middleware: runs the rest of the request in a fresh scope (`withScope`) that takes
 * its tier or `primary` from `X-DB-Route-Hint` and its read-your-writes token from `X-Primary-LSN`
 * (and the cookie, when configured); once the request wrote, the response carries `X-Primary-LSN`.
 * Invalid header values are ignored (debug log), never an error.
 * @example
 * import express from 'express'
 * import { freshetMiddleware } from 'freshet/http'
 * const app = express()
 * app.use(freshetMiddleware({ pool, cookie: 'freshet_lsn' }))
 * app.post('/orders', async (req, res) => { await pool.query('INSERT ...'); res.status(201).end() })
 * // the response has X-Primary-LSN: 0/3000148; send it back on the next request to read the order
 */
export function freshetMiddleware(options: HttpContextOptions = {}): ConnectMiddleware {
  return function freshet(req, res, next) {
    withScope(
      () => {
        attachResponseToken(res, currentContext()!, options)
        next()
      },
      requestContext(req.headers, options),
    )
  }
}
