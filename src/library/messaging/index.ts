// freshet/messaging: carry the routing context (route hint, read-your-writes token, traceparent) through message brokers.

export {
  LSN_HEADER,
  ROUTE_HINT_HEADER,
  SHARD_KEY_HEADER,
  TRACEPARENT_HEADER,
} from '../context-from-headers.js'
export { type InjectOptions, injectContext } from './inject-context.js'
export {
  type MessageContextOptions,
  type MessageHeaders,
  withMessageContext,
} from './with-message-context.js'
