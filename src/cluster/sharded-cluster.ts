// A real local sharded setup for tests and the sandbox: N shards (each a primary with streaming replicas)
// and an aggregate PostgreSQL node whose partitioned tables reach every shard's rows through postgres_fdw.

import { bucketSql } from '../core/shard/bucket-sql.js'
import { ClusterError } from './cluster-error.js'
import { ROLE_PASSWORDS } from './cluster-template.js'
import { type ClusterNode, type LocalCluster, startCluster } from './local-cluster.js'

/** Options of {@link startShardedCluster}. */
export interface ShardedClusterOptions {
  /** Number of shards, named `shard_0` ... (default 2). */
  shards?: number
  /** Streaming replicas per shard (default 1). */
  replicasPerShard?: number
  /** Hash buckets of the map (default 1024); each shard owns one contiguous run of buckets. */
  buckets?: number
  binDir?: string
  onProgress?: (msg: string) => void
  settings?: Record<string, string>
}

/** Key column types the aggregate node can compute buckets for (the config's `sharding.tables.*.type`). */
export type ShardedKeyType = 'integer' | 'text' | 'uuid'

/** One shard: its name, its cluster, and the freshet node names of its primary and replicas. */
export interface LocalShard {
  readonly name: string
  readonly cluster: LocalCluster
  /** `s0_primary`, `s0_replica_1`, ... as in {@link ShardedCluster.config}. */
  readonly nodeNames: readonly string[]
  /** Inclusive bucket range this shard owns in the config map. */
  readonly buckets: readonly [number, number]
}

const PG_TYPE: Readonly<Record<ShardedKeyType, string>> = { integer: 'bigint', text: 'text', uuid: 'uuid' }

const ident = (name: string) => {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new ClusterError(`not a plain lower-case identifier: '${name}'`)
  return name
}

/**
 * A running sharded setup. Create it with {@link startShardedCluster}, define tables with
 * {@link ShardedCluster.createShardedTable}, always `stop()` it.
 *
 * The aggregate node computes a key's bucket exactly as freshet and PARTITION BY HASH do
 * (`freshet_bucket(key, buckets)`, an IMMUTABLE SQL function over `hashint8extended` and friends), and
 * partitions each sharded table BY RANGE on it, one postgres_fdw foreign partition per map entry: a
 * row is visible there exactly when it lives on the shard the map gives its key, and aggregates, ORDER BY
 * and LIMIT push down to the shards (partitionwise aggregation and async foreign scans are on).
 *
 * @example
 * const sc = await startShardedCluster({ shards: 2 })
 * await sc.createShardedTable('orders', 'id bigint, customer_id bigint, total numeric', 'customer_id')
 * const pool = createPool(sc.config())   // once the pool routes by shard
 */
export class ShardedCluster {
  readonly shards: readonly LocalShard[]
  readonly aggregate: LocalCluster
  readonly bucketCount: number

  /** @internal use {@link startShardedCluster} */
  constructor(shards: LocalShard[], aggregate: LocalCluster, buckets: number) {
    this.shards = shards
    this.aggregate = aggregate
    this.bucketCount = buckets
  }

  /** The aggregate node (its only node). */
  get aggregateNode(): ClusterNode {
    return this.aggregate.primary
  }

  /** The shard called `name`. */
  shard(name: string): LocalShard {
    const s = this.shards.find((x) => x.name === name)
    if (!s)
      throw new ClusterError(`no shard '${name}' (shards: ${this.shards.map((x) => x.name).join(', ')})`)
    return s
  }

  /**
   * The `shards` and `sharding` config keys (CONTRACT section 9) for this setup, as user `user`, with the
   * tables defined so far. Merge other keys in as needed.
   */
  config(
    user = 'app',
    tables: Record<string, { key: string; type?: ShardedKeyType }> = this.#tables,
  ): {
    shards: {
      name: string
      primary: { name: string; url: string }
      replicas: { name: string; url: string }[]
    }[]
    sharding: Record<string, unknown>
  } {
    return {
      shards: this.shards.map((s) => ({
        name: s.name,
        primary: { name: s.nodeNames[0]!, url: s.cluster.primary.url(user) },
        replicas: s.cluster.replicas.map((r, i) => ({ name: s.nodeNames[i + 1]!, url: r.url(user) })),
      })),
      sharding: {
        method: 'hash',
        buckets: this.bucketCount,
        tables,
        map: this.shards.map((s) => ({
          partition_key_range: `${s.buckets[0]}-${s.buckets[1]}`,
          target_backend: s.name,
        })),
        cross_shard: 'aggregate',
        aggregate: { name: 'federated', url: this.aggregate.primary.url(user) },
      },
    }
  }

  readonly #tables: Record<string, { key: string; type: ShardedKeyType }> = {}

  /**
   * Creates `table (columns)` on every shard's primary (replicated to its replicas) and, on the
   * aggregate node, a table partitioned by `freshet_bucket(key)` whose partitions are foreign tables on
   * the shards. `app` gets every privilege on both. `shardConstraints` (e.g. `PRIMARY KEY (id)`) are
   * added on the shards only: a partitioned table over foreign partitions cannot carry them.
   */
  async createShardedTable(
    table: string,
    columns: string,
    key: string,
    options: { type?: ShardedKeyType; shardConstraints?: string } = {},
  ): Promise<void> {
    ident(table)
    ident(key)
    const extra = options.shardConstraints ? `, ${options.shardConstraints}` : ''
    await Promise.all(
      this.shards.map((s) =>
        s.cluster.query(
          'primary',
          `CREATE TABLE ${table} (${columns}${extra}); GRANT ALL ON ${table} TO app`,
        ),
      ),
    )
    const parts = this.shards.map(
      (s) =>
        `CREATE FOREIGN TABLE ${table}_${s.name} PARTITION OF ${table} FOR VALUES FROM (${s.buckets[0]}) TO (${s.buckets[1] + 1})
           SERVER ${s.name} OPTIONS (table_name '${table}');`,
    )
    await this.aggregate.query(
      'primary',
      `CREATE TABLE ${table} (${columns}) PARTITION BY RANGE (freshet_bucket(${key}, ${this.bucketCount}));
       ${parts.join('\n')}
       GRANT ALL ON ${table} TO app;`,
    )
    this.#tables[table] = { key, type: options.type ?? 'integer' }
  }

  /** Creates a reference table (the same rows on every shard): on each shard primary, with `rows` inserted. */
  async createReferenceTable(table: string, columns: string, insertSql?: string): Promise<void> {
    ident(table)
    const fill = insertSql ? `; INSERT INTO ${table} ${insertSql}` : ''
    await Promise.all(
      this.shards.map((s) =>
        s.cluster.query('primary', `CREATE TABLE ${table} (${columns}); GRANT ALL ON ${table} TO app${fill}`),
      ),
    )
  }

  /** Waits until every shard's replicas have replayed their primary's current WAL. */
  async waitForCatchUp(timeoutMs = 10_000): Promise<void> {
    await Promise.all(this.shards.map((s) => s.cluster.waitForCatchUp(timeoutMs)))
  }

  /** Stops every node of every shard and the aggregate node. */
  async stop(): Promise<void> {
    const results = await Promise.allSettled([
      ...this.shards.map((s) => s.cluster.stop()),
      this.aggregate.stop(),
    ])
    const failed = results.find((r) => r.status === 'rejected')
    if (failed) throw (failed as PromiseRejectedResult).reason
  }
}

/** Splits `buckets` into `n` contiguous inclusive runs, as even as possible. */
export function splitBuckets(buckets: number, n: number): [number, number][] {
  const out: [number, number][] = []
  for (let i = 0; i < n; i++) {
    const lo = Math.floor((buckets * i) / n)
    const hi = Math.floor((buckets * (i + 1)) / n) - 1
    out.push([lo, hi])
  }
  return out
}

async function prepareAggregate(agg: LocalCluster, shards: LocalShard[]): Promise<void> {
  const fns = (Object.entries(PG_TYPE) as [ShardedKeyType, string][]).map(
    ([type, pgType]) =>
      `CREATE FUNCTION freshet_bucket(k ${pgType}, buckets int) RETURNS int LANGUAGE sql IMMUTABLE PARALLEL SAFE
         RETURN ${bucketSql('k', type, 'buckets')};`,
  )
  const servers = shards.map((s) => {
    const p = s.cluster.primary
    return `CREATE SERVER ${s.name} FOREIGN DATA WRAPPER postgres_fdw
              OPTIONS (host '${p.host}', port '${p.port}', dbname 'freshet', async_capable 'true');
            CREATE USER MAPPING FOR PUBLIC SERVER ${s.name} OPTIONS (user 'app', password '${ROLE_PASSWORDS.app}');`
  })
  await agg.query(
    'primary',
    `CREATE EXTENSION postgres_fdw;
     ${fns.join('\n')}
     GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO app;
     ${servers.join('\n')}
     ${shards.map((s) => `GRANT USAGE ON FOREIGN SERVER ${s.name} TO app;`).join('\n')}`,
  )
}

/**
 * Starts `shards` shards (a primary and `replicasPerShard` streaming replicas each) and an aggregate
 * node, every one a real PostgreSQL from the harness binaries on free loopback ports.
 *
 * @example
 * const sc = await startShardedCluster({ shards: 2, replicasPerShard: 1 })
 * console.log(sc.shard('shard_1').cluster.primary.url('app'), sc.aggregateNode.url('app'))
 */
export async function startShardedCluster(options: ShardedClusterOptions = {}): Promise<ShardedCluster> {
  const count = options.shards ?? 2
  const buckets = options.buckets ?? 1024
  if (!Number.isInteger(count) || count < 1)
    throw new ClusterError(`shards must be a whole number >= 1, got ${count}`)
  if (!Number.isInteger(buckets) || buckets < count) {
    throw new ClusterError(`buckets must be a whole number >= shards (${count}), got ${buckets}`)
  }
  const replicas = options.replicasPerShard ?? 1
  const progress = options.onProgress ?? (() => {})
  const common = {
    ...(options.binDir ? { binDir: options.binDir } : {}),
    settings: {
      enable_partitionwise_aggregate: 'on',
      enable_partitionwise_join: 'on',
      ...options.settings,
    },
  }
  const ranges = splitBuckets(buckets, count)
  const started: LocalCluster[] = []
  try {
    // the first boot fills the template cache; the others copy it
    const boot = async (label: string, n: number) => {
      const c = await startCluster({ ...common, replicas: n, onProgress: (m) => progress(`${label}: ${m}`) })
      started.push(c)
      return c
    }
    const first = await boot('shard_0', replicas)
    const rest = await Promise.all(
      Array.from({ length: count - 1 }, (_, i) => boot(`shard_${i + 1}`, replicas)),
    )
    const aggregate = await boot('aggregate', 0)
    const shards: LocalShard[] = [first, ...rest].map((cluster, i) => ({
      name: `shard_${i}`,
      cluster,
      nodeNames: [`s${i}_primary`, ...Array.from({ length: replicas }, (_, j) => `s${i}_replica_${j + 1}`)],
      buckets: ranges[i]!,
    }))
    await prepareAggregate(aggregate, shards)
    return new ShardedCluster(shards, aggregate, buckets)
  } catch (err) {
    await Promise.allSettled(started.map((c) => c.stop()))
    throw err
  }
}
