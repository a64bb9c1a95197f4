// Builds the etcd v3 client (npm `etcd3`) a fleet talks through: endpoints, TLS files, user auth, a
// deadline on every call, namespaced to the fleet's prefix.

import { readFileSync } from 'node:fs'
import { Etcd3, type IOptions, type Namespace } from 'etcd3'
import type { FleetConfig } from '../core/config/fleet-schema.js'
import { ConfigError } from '../core/errors.js'

/** A client and its view of the fleet's keys. */
export interface FleetEtcd {
  /** The whole client (leases are granted through it). */
  readonly client: Etcd3
  /** The same client with every key relative to `fleet.etcd.prefix`. */
  readonly keys: Namespace
  /** Per-call deadline in ms (`fleet.etcd.request_timeout_ms`). */
  readonly timeoutMs: number
  close(): void
}

function readPem(path: string, key: string): Buffer {
  try {
    return readFileSync(path)
  } catch (err) {
    throw new ConfigError([{ path: key, message: `cannot read ${path}: ${(err as Error).message}` }], {
      cause: err,
    })
  }
}

/**
 * Opens a client for a fleet section (the connection is made lazily, on the first call).
 * @example
 * const etcd = openFleetEtcd(config.fleet)
 * await etcd.keys.get('committed').string()
 * etcd.close()
 */
export function openFleetEtcd(fleet: FleetConfig): FleetEtcd {
  const e = fleet.etcd
  const timeoutMs = e.request_timeout_ms
  const options: IOptions = {
    hosts: e.endpoints.map((u) => u.replace(/\/$/, '')),
    dialTimeout: e.dial_timeout_ms,
    // streams (watch, lease keep-alive) live long; every unary call gets a deadline
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeoutMs }),
  }
  if (e.tls) {
    options.credentials = {
      rootCertificate: readPem(e.tls.ca, 'fleet.etcd.tls.ca'),
      ...(e.tls.cert ? { certChain: readPem(e.tls.cert, 'fleet.etcd.tls.cert') } : {}),
      ...(e.tls.key ? { privateKey: readPem(e.tls.key, 'fleet.etcd.tls.key') } : {}),
    }
  }
  if (e.username) options.auth = { username: e.username, password: e.password ?? '' }
  const client = new Etcd3(options)
  const prefix = e.prefix === '/' ? '/' : `${e.prefix}/`
  return { client, keys: client.namespace(prefix), timeoutMs, close: () => client.close() }
}

/**
 * Races a promise against a deadline: the etcd client retries on other members, so one call can take
 * several deadlines; a fleet tick must not.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`etcd did not answer ${what} within ${ms} ms`)), ms)
    timer.unref()
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
