// Server connections of a sharded proxy: one ServerPool per shard engine (and the aggregate node's), each
// sized and probed by its own engine; node names are unique across shards, so a node names its pool.

import type { RoutingEngine } from '../routing/routing-engine.js'
import type { ServerConnection } from './server-connection.js'
import {
  type LoginIdentity,
  type ServerConnectionInfo,
  ServerPool,
  type ServerPoolStats,
} from './server-pool.js'

/** What the proxy and its client sessions use of a pool: a ServerPool, or one per shard behind this. */
export type ProxyPool = Pick<
  ServerPool,
  | 'tryAcquire'
  | 'acquire'
  | 'release'
  | 'active'
  | 'stats'
  | 'connections'
  | 'warmUp'
  | 'closeIdle'
  | 'discard'
  | 'close'
  | 'openOwn'
>

/**
 * One ServerPool per shard, each following its engine's config and topology.
 * @example
 * const pool = new ShardedServerPool(routing.engines())
 * const conn = pool.tryAcquire('s1_primary', id) ?? (await pool.acquire('s1_primary', id))
 * pool.release(conn) // back to shard_1's pool
 */
export class ShardedServerPool implements ProxyPool {
  readonly #pools = new Map<string, ServerPool>()
  readonly #byNode = new Map<string, ServerPool>()
  readonly #engines: readonly (readonly [string, RoutingEngine])[]
  readonly #detach: (() => void)[] = []

  constructor(engines: readonly (readonly [string, RoutingEngine])[]) {
    this.#engines = engines
    for (const [shard, engine] of engines) {
      const pool = new ServerPool(engine.config, engine.tracker)
      engine.tracker.setActiveCounter((node) => pool.active(node))
      const onConfig = (config: typeof engine.config) => {
        pool.setConfig(config)
        this.#index()
      }
      engine.on('config', onConfig)
      this.#detach.push(() => engine.off('config', onConfig))
      this.#pools.set(shard, pool)
    }
    this.#index()
  }

  #index(): void {
    this.#byNode.clear()
    for (const [shard, engine] of this.#engines) {
      for (const n of engine.tracker.nodes()) this.#byNode.set(n.name, this.#pools.get(shard)!)
    }
  }

  /** The pool of one shard (or of the aggregate node, by its pseudo shard name). */
  shard(name: string): ServerPool | undefined {
    return this.#pools.get(name)
  }

  #of(node: string): ServerPool {
    const pool = this.#byNode.get(node)
    if (!pool) throw new Error(`freshet: node ${node} belongs to no shard`)
    return pool
  }

  tryAcquire(node: string, identity: LoginIdentity, tier: string | null = null): ServerConnection | null {
    return this.#of(node).tryAcquire(node, identity, tier)
  }

  acquire(node: string, identity: LoginIdentity, tier: string | null = null): Promise<ServerConnection> {
    const pool = this.#byNode.get(node)
    if (!pool) return Promise.reject(new Error(`freshet: node ${node} belongs to no shard`))
    return pool.acquire(node, identity, tier)
  }

  openOwn(node: string, applicationName: string): Promise<ServerConnection> {
    const pool = this.#byNode.get(node)
    if (!pool) return Promise.reject(new Error(`freshet: node ${node} belongs to no shard`))
    return pool.openOwn(node, applicationName)
  }

  release(conn: ServerConnection): void {
    this.#of(conn.node).release(conn)
  }

  discard(conn: ServerConnection): void {
    this.#of(conn.node).discard(conn)
  }

  active(node: string): number {
    return this.#byNode.get(node)?.active(node) ?? 0
  }

  closeIdle(node: string): number {
    return this.#byNode.get(node)?.closeIdle(node) ?? 0
  }

  stats(): Record<string, ServerPoolStats> {
    return Object.assign({}, ...[...this.#pools.values()].map((p) => p.stats()))
  }

  connections(): ServerConnectionInfo[] {
    return [...this.#pools.values()].flatMap((p) => p.connections())
  }

  async warmUp(): Promise<void> {
    await Promise.all([...this.#pools.values()].map((p) => p.warmUp()))
  }

  close(): void {
    for (const d of this.#detach.splice(0)) d()
    for (const p of this.#pools.values()) p.close()
  }
}
