// Finds a free TCP port on the loopback interface.

import { createServer } from 'node:net'

/**
 * Asks the kernel for a free port on 127.0.0.1. Another process may take it before we bind it, so
 * callers retry on "address in use".
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, host, () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}
