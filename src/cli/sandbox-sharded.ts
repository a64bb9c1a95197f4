// `freshet sandbox --shards N`: N local shards (a primary and streaming replicas each) and the aggregate node
// over postgres_fdw, demo tables sharded by customer id, the sharded proxy with the admin API and dashboard
// in front, and a ready freshet.yaml, until Ctrl-C.

import { relative } from 'node:path'
import { ClusterError } from '../cluster/cluster-error.js'
import type { ShardedCluster } from '../cluster/sharded-cluster.js'
import { hashBucket } from '../core/shard/shard-key.js'
import type { RunningShardedProxy } from './proxy-sharded.js'
import { chooseConfigPath, writeSandboxConfig } from './sandbox-config.js'
import {
  boundListen,
  chooseFrontListen,
  formatDuration,
  runSandboxLifecycle,
  type SandboxRequest,
} from './sandbox-support.js'

const CUSTOMERS = 1000
const ORDERS = 5000
const COUNTRIES = ['DE', 'FR', 'NL', 'PL', 'SE']

/** The demo's sharded tables: customers by `id`, orders by `customer_id` (co-located: same key, same shard). */
const TABLES = [
  {
    table: 'customers',
    columns: 'id bigint NOT NULL, name text NOT NULL, country text NOT NULL',
    key: 'id',
    constraints: 'PRIMARY KEY (id)',
  },
  {
    table: 'orders',
    columns:
      'id bigint NOT NULL, customer_id bigint NOT NULL, status text NOT NULL, total_cents bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now()',
    key: 'customer_id',
    constraints: 'PRIMARY KEY (id)',
  },
] as const

/** `s1_replica_1=5s` -> shard_1's replica_1 (the names the sharded config gives the nodes). */
function lagTarget(name: string, shards: number, replicas: number): { shard: string; replica: string } {
  const m = /^s(\d+)_replica_(\d+)$/.exec(name)
  const shard = Number(m?.[1] ?? -1)
  const replica = Number(m?.[2] ?? 0)
  if (!m || shard >= shards || replica < 1 || replica > replicas) {
    throw new ClusterError(
      `--lag ${name}: no such replica (with --shards, replicas are s<shard>_replica_<n>, e.g. s1_replica_1)`,
    )
  }
  return { shard: `shard_${shard}`, replica: `replica_${replica}` }
}

/**
 * The sharded sandbox's freshet.yaml: the harness's shards and sharding (as `app`), the reference table,
 * small pools, the proxy (accepting `app`/`app`, SCRAM) and the admin API.
 * @example shardedSandboxConfig(sc, { proxyListen: '127.0.0.1:6432', adminListen: '127.0.0.1:9187' })
 */
export function shardedSandboxConfig(
  sc: ShardedCluster,
  listen: { proxyListen: string; adminListen: string },
): Record<string, unknown> {
  const { shards, sharding } = sc.config()
  return {
    version: 1,
    shards,
    sharding: { ...sharding, reference_tables: ['countries'] },
    pools: { primary: { min_idle: 0, max_active: 10 }, replicas: { min_idle: 0, max_active: 10 } },
    proxy: {
      listen: listen.proxyListen,
      auth: { type: 'scram-sha-256', users: { app: { password: 'app' } } },
    },
    admin: { listen: listen.adminListen },
    telemetry: { log_level: 'warn' },
  }
}

/**
 * Boots the sharded sandbox: the shards and the aggregate node, the demo tables on every shard and, on the
 * aggregate node, partitioned over them through postgres_fdw; each row written on the shard its customer
 * id hashes to; the reference table `countries` on every shard; then the requested apply delays.
 * The caller owns the cluster and must `stop()` it.
 * @example
 * const sc = await bootShardedSandbox({ shards: 2, replicas: 1, lag: {}, onProgress: console.log })
 */
export async function bootShardedSandbox(options: {
  shards: number
  replicas: number
  lag: Record<string, number>
  onProgress: (msg: string) => void
}): Promise<ShardedCluster> {
  const targets = Object.entries(options.lag).map(
    ([name, ms]) => [name, lagTarget(name, options.shards, options.replicas), ms] as const,
  )
  const { startShardedCluster } = await import('../cluster/sharded-cluster.js')
  const sc = await startShardedCluster({
    shards: options.shards,
    replicasPerShard: options.replicas,
    onProgress: options.onProgress,
  })
  try {
    options.onProgress(
      'creating customers and orders (sharded by customer id) and countries (on every shard)...',
    )
    for (const t of TABLES) {
      await sc.createShardedTable(t.table, t.columns, t.key, { shardConstraints: t.constraints })
    }
    const values = COUNTRIES.map((c) => `('${c}')`).join(', ')
    await sc.createReferenceTable('countries', 'code text PRIMARY KEY', `VALUES ${values}`)
    // each row goes to the shard whose bucket range holds its customer id (what the router computes)
    const shardOf = (customer: number) => {
      const b = hashBucket(BigInt(customer), 'integer', sc.bucketCount)
      return sc.shards.find((s) => b >= s.buckets[0] && b <= s.buckets[1])!
    }
    const customers = new Map<string, number[]>()
    for (let id = 1; id <= CUSTOMERS; id++) {
      const s = shardOf(id).name
      customers.set(s, [...(customers.get(s) ?? []), id])
    }
    for (const s of sc.shards) {
      const ids = customers.get(s.name) ?? []
      const countries = `ARRAY['${COUNTRIES.join("','")}']`
      await s.cluster.query(
        'primary',
        `INSERT INTO customers SELECT id, 'Customer ' || id, (${countries})[1 + id % ${COUNTRIES.length}]
           FROM unnest($1::bigint[]) id`,
        [ids],
      )
      await s.cluster.query(
        'primary',
        `INSERT INTO orders (id, customer_id, status, total_cents, created_at)
           SELECT g, 1 + g % ${CUSTOMERS}, (ARRAY['pending', 'paid', 'shipped', 'cancelled'])[1 + g % 4],
                  500 + (g * 31) % 20000, now() - g * interval '1 minute'
             FROM generate_series(1, ${ORDERS}) g WHERE 1 + g % ${CUSTOMERS} = ANY($1::bigint[])`,
        [ids],
      )
      await s.cluster.query('primary', 'CREATE INDEX ON orders (customer_id); ANALYZE')
    }
    await sc.waitForCatchUp(30_000)
    for (const [name, target, ms] of targets) {
      await sc.shard(target.shard).cluster.setApplyDelay(target.replica, ms)
      options.onProgress(
        `${name} now replays ${formatDuration(ms)} behind its primary (recovery_min_apply_delay)`,
      )
    }
    return sc
  } catch (err) {
    await sc.stop().catch(() => {})
    throw err
  }
}

/** Prints the shards, their nodes and the aggregate node. */
function printShards(sc: ShardedCluster, replicas: number, lag: Record<string, number>): void {
  console.log(
    `\nfreshet sandbox: ${sc.shards.length} shards (1 primary, ${replicas} replica${replicas === 1 ? '' : 's'} each) and the aggregate node`,
  )
  for (const s of sc.shards) {
    console.log(`  ${s.name}   buckets ${s.buckets[0]}-${s.buckets[1]} of ${sc.bucketCount}`)
    const nodes = [s.cluster.primary, ...s.cluster.replicas]
    nodes.forEach((n, i) => {
      const name = s.nodeNames[i]!
      const behind = lag[name] ? `   (${formatDuration(lag[name])} behind: apply delay)` : ''
      console.log(`    ${name.padEnd(14)}${n.url('app')}${behind}`)
    })
  }
  console.log(`  aggregate   federated     ${sc.aggregateNode.url('app')}   (postgres_fdw over every shard)`)
  console.log(
    `  superuser: postgres without a password, e.g. ${sc.shards[0]!.cluster.primary.url('postgres')}`,
  )
  console.log(`  data in ${[...sc.shards.map((s) => s.cluster.root), sc.aggregate.root].join(' ')}`)
}

/** Starts the sharded proxy and its admin API in front of the shards; returns it and the config with the bound ports. */
async function startShardedFront(
  sc: ShardedCluster,
  request: SandboxRequest,
): Promise<{ running: RunningShardedProxy; config: Record<string, unknown> }> {
  const { proxyListen, adminListen } = await chooseFrontListen(request)
  const [{ startShardedProxy }, { parseConfig }] = await Promise.all([
    import('./proxy-sharded.js'),
    import('../core/config/parse-config.js'),
  ])
  const config = parseConfig(JSON.stringify(shardedSandboxConfig(sc, { proxyListen, adminListen })))
  const running = await startShardedProxy(config, { listen: proxyListen, adminListen })
  // the file names the ports actually bound, not 0
  return { running, config: shardedSandboxConfig(sc, boundListen(running, adminListen)) }
}

/** Entry point of `freshet sandbox --shards N`. */
export async function runShardedSandbox(request: SandboxRequest & { shards: number }): Promise<number> {
  return runSandboxLifecycle(
    async (life) => {
      const sc = await bootShardedSandbox({
        shards: request.shards,
        replicas: request.replicas,
        lag: request.lag,
        onProgress: (m) => console.log(m),
      })
      life.onStop(() => sc.stop())
      printShards(sc, request.replicas, request.lag)
      const started = await startShardedFront(sc, request)
      life.onStop(() => started.running.stop().catch(() => {}))
      const configPath = chooseConfigPath(request.configPath, sc.shards[0]!.cluster.root)
      life.wrote(configPath, writeSandboxConfig(configPath, started.config))
      printFront(started.running, configPath)
    },
    () => 'stopped every server of every shard and the aggregate node, and removed their data',
  )
}

/** Prints the proxy, the dashboard, the config and how to use them. */
function printFront(running: RunningShardedProxy, configPath: string): void {
  const proxyUrl = `postgres://app:app@${running.address}/freshet`
  const shown = relative(process.cwd(), configPath)
  const display = shown && !shown.startsWith('..') ? `./${shown}` : configPath
  console.log(`proxy:      ${proxyUrl}   (routed by shard, then by freshness; logs in to the servers as app)`)
  if (running.adminUrl) console.log(`dashboard:  ${running.adminUrl}/`)
  console.log(`config:     ${configPath}`)
  console.log(
    `library:    const pool = createPool('${display}')   // import { createPool, withShardKey } from 'freshet'`,
  )
  console.log(
    "            await pool.query('SELECT * FROM orders WHERE customer_id = $1', [42])   // shard of 42, its replica",
  )
  console.log(
    "            await pool.query('SELECT status, count(*) FROM orders GROUP BY 1')       // aggregate node",
  )
  console.log(
    `            psql '${proxyUrl}' -c 'SELECT * FROM orders WHERE customer_id = 42'   // the same through the proxy`,
  )
  console.log(
    `hint: freshet explain --config ${display} 'SELECT * FROM orders WHERE customer_id = 42'   (Ctrl-C stops everything)`,
  )
}
