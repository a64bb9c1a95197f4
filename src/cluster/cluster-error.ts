// The error the local cluster harness raises: what went wrong, and what to do about it.

import { FreshetError, type FreshetErrorOptions } from '../core/errors.js'

/**
 * A local cluster could not be built, started or driven (missing binaries, permissions, a server
 * that would not start). The message says what to do; `details.logTail` holds the end of the
 * server's log when a server failed.
 */
export class ClusterError extends FreshetError {
  constructor(message: string, options: FreshetErrorOptions = {}) {
    super('FRESHET_CLUSTER', message, options)
  }
}
