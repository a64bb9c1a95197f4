// The PostgreSQL-protocol face of freshet: listener, client sessions, server connections and their pool.

export * from './client-session.js'
export { freshnessFromOptions, freshnessFromStartup } from './client-startup.js'
export type { Evicted } from './prepared-statements.js'
export * from './proxy-runtime.js'
export * from './proxy-server.js'
export * from './server-connection.js'
export * from './server-pool.js'
