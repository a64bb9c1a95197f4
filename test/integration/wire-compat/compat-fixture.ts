// Runs the same client code directly against the primary and through the proxy, for the wire
// compatibility tests: whatever differs is a difference from PostgreSQL.

import assert from 'node:assert/strict'
import pg from 'pg'
import type { LocalCluster } from '../../cluster/index.js'
import { type ProxyFixture, type ProxyLog, startProxyFixture } from '../../support/proxy-fixture.js'
import { RawClient } from './raw-client.js'

/** Where a client connects: straight to the primary, or through freshet. */
export type Side = 'direct' | 'proxy'

export const SIDES: readonly Side[] = ['direct', 'proxy']

/** A proxy fixture plus the primary's own URL for the same user and database. */
export interface CompatFixture extends ProxyFixture {
  /** `postgres://app:app@...` of the primary itself, or of the proxy. */
  urlOf(side: Side, user?: string): string
  /** host and port of a side, for raw-socket tests. */
  addressOf(side: Side): { host: string; port: number }
}

/**
 * A cluster with the proxy in front, in `poolMode`, with no replicas unless asked (the flows compared
 * here are about the wire, not routing). `setup` runs on the primary as superuser first.
 */
export async function startCompatFixture(
  poolMode: 'transaction' | 'session',
  options: {
    replicas?: number
    setup?: (c: LocalCluster) => Promise<void>
    patch?: Record<string, unknown>
    /** The proxy's log lines (default: dropped). */
    log?: ProxyLog
  } = {},
): Promise<CompatFixture> {
  const f = await startProxyFixture(
    {
      pools: {
        primary: { min_idle: 0, max_active: 6, connection_timeout_ms: 5000 },
        replicas: { min_idle: 0, max_active: 6, connection_timeout_ms: 5000 },
        slow_start_ms: 0,
      },
      ...options.patch,
      proxy: {
        listen: '127.0.0.1:0',
        pool_mode: poolMode,
        auth: {
          type: 'scram-sha-256',
          users: { app: { password: 'app' }, postgres: { password: 'postgres' } },
        },
        shutdown_timeout_ms: 2000,
        ...((options.patch?.proxy as Record<string, unknown> | undefined) ?? {}),
      },
    },
    options.replicas ?? 0,
    options.setup,
    options.log,
  )
  const primary = f.cluster.primary
  return Object.assign(f, {
    urlOf: (side: Side, user = 'app') => (side === 'direct' ? primary.url(user) : f.url(user)),
    addressOf: (side: Side) =>
      side === 'direct' ? { host: primary.host, port: primary.port } : { host: '127.0.0.1', port: f.port },
  })
}

/** Runs `fn` once per side and returns both results, to compare. */
export async function onBothSides<T>(fn: (side: Side) => Promise<T>): Promise<Record<Side, T>> {
  return { direct: await fn('direct'), proxy: await fn('proxy') }
}

/**
 * Runs `flow` on a fresh raw-protocol client per side and asserts both transcripts are equal; returns
 * the direct one.
 */
export async function sameOnBothSides(
  f: CompatFixture,
  flow: (c: RawClient, side: Side) => Promise<string[]>,
): Promise<string[]> {
  const got = await onBothSides(async (side) => {
    const { host, port } = f.addressOf(side)
    const c = await RawClient.open(host, port)
    try {
      return await flow(c, side)
    } finally {
      c.end()
    }
  })
  assert.deepEqual(got.proxy, got.direct)
  return got.direct
}

/** A connected pg client at `url`, and whether its connection has ended (its errors are expected). */
export async function watchedClient(url: string): Promise<{ c: pg.Client; ended: () => boolean }> {
  const c = new pg.Client({ connectionString: url })
  let ended = false
  c.on('error', () => {})
  c.on('end', () => {
    ended = true
  })
  await c.connect()
  return { c, ended: () => ended }
}
