// The proxy's one seam for the admin console: a client that logged in to the virtual admin database is
// handed, socket and all, to whoever implements this (src/admin/console/ in freshet proxy).

import type { Socket } from 'node:net'

/** Takes over authenticated clients of the admin database (`proxy.admin.database`). */
export interface AdminConsoleHook {
  /**
   * Called right after AuthenticationOk went out; the hook owns the socket from then on and sends the
   * rest of the startup (ParameterStatus, BackendKeyData, ReadyForQuery).
   */
  accept(socket: Socket, identity: { readonly user: string; readonly database: string }): void
}
