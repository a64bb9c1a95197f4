// Authentication for the proxy: clients logging in to freshet, and freshet logging in to PostgreSQL.

export * from './auth-step.js'
export * from './client-authenticator.js'
export * from './create-client-authenticator.js'
export * from './md5-authenticator.js'
export * from './md5-password.js'
export * from './saslprep.js'
export * from './scram-authenticator.js'
export * from './scram-client.js'
export * from './scram-secret.js'
export * from './server-login.js'
export * from './trust-authenticator.js'
