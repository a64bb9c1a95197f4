// PostgreSQL protocol 3.0 for the proxy: framing, the few decoders routing needs, encoders, renaming.

export * from './decode-backend.js'
export * from './decode-frontend.js'
export * from './encode-backend.js'
export * from './encode-frontend.js'
export * from './frame-reader.js'
export * from './message-codes.js'
export * from './message-writer.js'
export * from './protocol-error.js'
export * from './rename-statement.js'
