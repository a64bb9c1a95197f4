// freshet/http: request-scoped routing context for Express, Fastify and plain node:http servers.

export {
  LSN_HEADER,
  ROUTE_HINT_HEADER,
  SHARD_KEY_HEADER,
  TRACEPARENT_HEADER,
} from '../context-from-headers.js'
export { type FastifyInstanceLike, freshetFastify } from './freshet-fastify.js'
export { type ConnectMiddleware, freshetMiddleware } from './freshet-middleware.js'
export {
  type HttpContextOptions,
  type PoolLike,
  requestContext,
  responseToken,
} from './request-scope.js'
export { withRequestContext } from './with-request-context.js'
