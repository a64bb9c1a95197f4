// `freshet sandbox --engine mariadb`: a local MariaDB primary with GTID replicas and demo data, the admin API
// and dashboard over a createMysqlPool pool, and a ready freshet.yaml (engine: mysql), until Ctrl-C.

import { relative } from 'node:path'
import type { AdminServer } from '../admin/admin-server.js'
import type { MariadbCluster } from '../cluster/mariadb-cluster.js'
import type { MysqlPool } from '../mysql/mysql-pool.js'
import { chooseConfigPath, writeSandboxConfig } from './sandbox-config.js'
import { chooseListen, formatDuration, runSandboxLifecycle, type SandboxRequest } from './sandbox-support.js'

/** The demo data, MariaDB dialect: accounts, orders and a ledger (the same tables as the PostgreSQL sandbox). */
export const MARIADB_DEMO_SCHEMA = [
  `CREATE TABLE accounts (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    email VARCHAR(255) NOT NULL UNIQUE,
    name VARCHAR(255) NOT NULL,
    balance_cents BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))`,
  `CREATE TABLE orders (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    account_id BIGINT NOT NULL,
    status VARCHAR(32) NOT NULL,
    total_cents BIGINT NOT NULL,
    created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    KEY (account_id))`,
  `CREATE TABLE ledger_entries (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    account_id BIGINT NOT NULL,
    order_id BIGINT,
    amount_cents BIGINT NOT NULL,
    created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    KEY (account_id))`,
  `INSERT INTO accounts (email, name, balance_cents)
    SELECT CONCAT('user', seq, '@example.com'), CONCAT('User ', seq), (seq * 7919) % 100000 FROM seq_1_to_1000`,
  `INSERT INTO orders (account_id, status, total_cents, created_at)
    SELECT 1 + seq % 1000, ELT(1 + seq % 4, 'pending', 'paid', 'shipped', 'cancelled'), 500 + (seq * 31) % 20000,
           NOW(6) - INTERVAL seq MINUTE
    FROM seq_1_to_5000`,
  `INSERT INTO ledger_entries (account_id, order_id, amount_cents)
    SELECT account_id, id, -total_cents FROM orders WHERE status <> 'cancelled'`,
]

/** The freshet.yaml of a MariaDB sandbox: engine mysql, nodes as `app`, the admin API; no proxy section. */
export function mariadbSandboxConfig(cluster: MariadbCluster, adminListen: string): Record<string, unknown> {
  return {
    version: 1,
    engine: 'mysql',
    cluster: {
      primary: { name: 'primary', url: cluster.primary.url() },
      replicas: cluster.replicas.map((r) => ({ name: r.name, url: r.url() })),
    },
    pools: { primary: { min_idle: 0, max_active: 20 }, replicas: { min_idle: 0, max_active: 20 } },
    admin: { listen: adminListen },
    telemetry: { log_level: 'warn' },
  }
}

/**
 * Boots the MariaDB sandbox (the PostgreSQL one's sibling): cluster, demo data, requested MASTER_DELAYs,
 * a routing pool with the admin API in front, freshet.yaml; stops everything on SIGINT/SIGTERM.
 * The proxy speaks PostgreSQL's protocol only, so this sandbox has none.
 */
export async function runMariadbSandbox(request: SandboxRequest): Promise<number> {
  const [{ startMariadbCluster }, { createMysqlPool }, { startAdmin }] = await Promise.all([
    import('../cluster/mariadb-cluster.js'),
    import('../mysql/mysql-pool.js'),
    import('../admin/admin-server.js'),
  ])
  let root = ''
  return runSandboxLifecycle(
    async (life) => {
      for (const name of Object.keys(request.lag)) {
        const index = Number(/^replica_(\d+)$/.exec(name)?.[1] ?? 0)
        if (index < 1 || index > request.replicas) {
          throw new (await import('../cluster/cluster-error.js')).ClusterError(
            `--lag ${name}: no such replica (replicas are replica_1..replica_${request.replicas})`,
          )
        }
      }
      const cluster = await startMariadbCluster({
        replicas: request.replicas,
        onProgress: (m) => console.log(m),
      })
      life.onStop(() => cluster.stop())
      root = cluster.root
      console.log('loading demo schema into database freshet (accounts, orders, ledger_entries)...')
      for (const sql of MARIADB_DEMO_SCHEMA) await cluster.query('primary', sql)
      await cluster.waitForCatchUp(30_000)
      for (const [name, ms] of Object.entries(request.lag)) {
        await cluster.setDelay(name, ms)
        console.log(
          `${name} now applies ${formatDuration(Math.ceil(ms / 1000) * 1000)} behind the primary (MASTER_DELAY)`,
        )
      }
      const adminListen = await chooseListen(request.adminPort, 9187, 'dashboard')
      const config = mariadbSandboxConfig(cluster, adminListen)
      const pool: MysqlPool = createMysqlPool(config as never)
      life.onStop(() => pool.end().catch(() => {}))
      await pool.ready()
      const admin: AdminServer = await startAdmin({ pool })
      life.onStop(() => admin.close().catch(() => {}))
      const final = mariadbSandboxConfig(cluster, new URL(admin.url).host)
      const configPath = chooseConfigPath(request.configPath, cluster.root)
      life.wrote(configPath, writeSandboxConfig(configPath, final))
      printMariadb(cluster, admin.url, configPath)
    },
    () => `stopped every server and removed ${root}`,
  )
}

function printMariadb(cluster: MariadbCluster, adminUrl: string, configPath: string): void {
  const replicas = cluster.replicas.length
  console.log(
    `\nfreshet sandbox (MariaDB ${cluster.bins.version}): 1 primary, ${replicas} GTID replica${replicas === 1 ? '' : 's'} (data in ${cluster.root})`,
  )
  for (const n of cluster.nodes) console.log(`  ${n.name.padEnd(12)}${n.url()}`)
  console.log(`  administration: root without a password, e.g. ${cluster.primary.url('root')}`)
  const shown = relative(process.cwd(), configPath)
  const display = shown && !shown.startsWith('..') ? `./${shown}` : configPath
  console.log(`dashboard:  ${adminUrl}/   (fed by a createMysqlPool pool in this process)`)
  console.log(`config:     ${configPath}`)
  console.log(
    `library:    const pool = createMysqlPool('${display}')   // import { createMysqlPool } from 'freshet/mysql'`,
  )
  console.log(
    `examples:   FRESHET_CONFIG=${display} npx tsx examples/mysql/drizzle.ts   (also kysely, knex, typeorm)`,
  )
  console.log(
    'proxy:      none: the freshet proxy speaks the PostgreSQL protocol only for now (docs/mysql.md)',
  )
  console.log('(Ctrl-C stops everything)')
}
