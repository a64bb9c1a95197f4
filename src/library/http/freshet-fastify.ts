// Fastify plugin: one freshet scope per request (kept across body parsing), the write token set in onSend.

import { AsyncResource } from 'node:async_hooks'
import type { IncomingHttpHeaders } from 'node:http'
import { type ContextStore, currentContext, withScope } from '../context.js'
import { type HttpContextOptions, requestContext, responseToken } from './request-scope.js'

/** The parts of a Fastify request the plugin touches. */
interface RequestLike {
  readonly headers: IncomingHttpHeaders
}

/** The parts of a Fastify reply the plugin touches. */
interface ReplyLike {
  header(name: string, value: string): unknown
}

/** The part of a Fastify instance the plugin uses (kept structural: freshet does not depend on fastify). */
export interface FastifyInstanceLike {
  // biome-ignore lint/suspicious/noExplicitAny: Fastify's hook signatures differ per hook name
  addHook(name: string, hook: (...args: any[]) => unknown): unknown
}

const SCOPE = Symbol('freshet.scope')
type Scoped = RequestLike & { [SCOPE]?: { store: ContextStore; resource: AsyncResource } }

/**
 * Fastify plugin: each request runs in a fresh scope with its `X-DB-Route-Hint` and `X-Primary-LSN`
 * (and cookie, when configured); responses of requests that wrote carry `X-Primary-LSN`. Registered
 * without encapsulation (like fastify-plugin), so it covers every route of the instance.
 * @example
 * import Fastify from 'fastify'
 * import { freshetFastify } from 'freshet/http'
 * const app = Fastify()
 * await app.register(freshetFastify, { pool })
 * app.get('/orders/:id', () => pool.query('SELECT * FROM orders WHERE id = $1', [id]))
 */
export function freshetFastify(
  fastify: FastifyInstanceLike,
  options: HttpContextOptions,
  done: (err?: Error) => void,
): void {
  fastify.addHook('onRequest', (request: Scoped, _reply: unknown, next: () => void) => {
    withScope(
      () => {
        // The body may be parsed in the request stream's async context rather than this one (it depends
        // on the Node and Fastify versions): preValidation re-enters the scope through this resource,
        // as @fastify/request-context does.
        const resource = new AsyncResource('freshet.request')
        request[SCOPE] = { store: currentContext()!, resource }
        resource.runInAsyncScope(next)
      },
      requestContext(request.headers, options),
    )
  })
  fastify.addHook('preValidation', (request: Scoped, _reply: unknown, next: () => void) => {
    const scope = request[SCOPE]
    if (scope) scope.resource.runInAsyncScope(next)
    else next()
  })
  fastify.addHook(
    'onSend',
    (request: Scoped, reply: ReplyLike, payload: unknown, next: (err: null, payload: unknown) => void) => {
      const scope = request[SCOPE]
      if (scope) {
        // Fastify appends to an existing Set-Cookie instead of replacing it.
        for (const [name, value] of Object.entries(responseToken(scope.store, options))) {
          if (value !== undefined) reply.header(name, String(value))
        }
      }
      next(null, payload)
    },
  )
  done()
}

// Fastify's own markers (what fastify-plugin sets): no encapsulation, a readable name in errors.
Object.assign(freshetFastify, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'freshet',
})
