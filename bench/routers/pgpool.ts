// pgpool-II in streaming-replication mode with load balancing over the primary and every replica, run as nobody in the foreground.

import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort } from '../../src/cluster/free-port.js'
import { findBinary, type RouterSetup, routerDir, spawnServer, stopChild, waitForPort } from './router.js'

const BIN = () => findBinary('/usr/sbin/pgpool', '/usr/bin/pgpool', '/usr/local/bin/pgpool')

/** Options of {@link pgpoolSetup}. */
export interface PgpoolOptions {
  /** Setup name, also its directory (default `pgpool-II`). */
  name?: string
  /** Replication-delay check period in seconds; 0 turns lag checks off (default 0: throughput runs). */
  srCheckPeriod?: number
  /** WAL bytes a standby may lag before reads skip it (pgpool 4.3 has no time-based threshold). */
  delayThresholdBytes?: number
  /** Load-balance weight of the primary (default 1, like each replica; 0 keeps reads on replicas unless they lag). */
  primaryWeight?: number
  /** `read_only_function_list`: functions pgpool may load-balance (it sends any other function call to the primary). */
  readOnlyFunctions?: string[]
  /** Pre-forked children = the most concurrent clients (default 70, above the 64-client cells). */
  children?: number
}

/** A pgpool-II setup; the default is the throughput configuration (no health or delay checks). */
export function pgpoolSetup(opts: PgpoolOptions = {}): RouterSetup {
  const name = opts.name ?? 'pgpool-II'
  return {
    name,
    missing: () => (BIN() ? null : 'pgpool-II not installed (apt-get install pgpool2)'),
    async start(cluster, parent) {
      const dir = routerDir(parent, name)
      const port = await freePort()
      const pcpPort = await freePort()
      const backends = cluster.nodes
        .map(
          (n, i) => `backend_hostname${i} = '127.0.0.1'
backend_port${i} = ${n.port}
backend_weight${i} = ${i === 0 ? (opts.primaryWeight ?? 1) : 1}
backend_data_directory${i} = '${n.dataDir}'
backend_flag${i} = '${i === 0 ? 'ALWAYS_PRIMARY|DISALLOW_TO_FAILOVER' : 'DISALLOW_TO_FAILOVER'}'
backend_application_name${i} = '${n.name}'`,
        )
        .join('\n')
      writeFileSync(join(dir, 'pcp.conf'), '', { mode: 0o644 })
      writeFileSync(
        join(dir, 'pgpool.conf'),
        `backend_clustering_mode = 'streaming_replication'
listen_addresses = '127.0.0.1'
port = ${port}
socket_dir = '${dir}'
pcp_listen_addresses = ''
pcp_port = ${pcpPort}
pcp_socket_dir = '${dir}'
wd_ipc_socket_dir = '${dir}'
pid_file_name = '${join(dir, 'pgpool.pid')}'
logdir = '${dir}'
log_destination = 'stderr'
log_min_messages = warning
enable_pool_hba = off
pool_passwd = ''
num_init_children = ${opts.children ?? 70}
max_pool = 1
connection_cache = on
load_balance_mode = on
# without it a query that starts with a comment (a freshet hint) is never load-balanced
allow_sql_comments = on
statement_level_load_balance = off
sr_check_period = ${opts.srCheckPeriod ?? 0}
sr_check_user = 'postgres'
sr_check_password = ''
sr_check_database = 'freshet'
delay_threshold = ${opts.delayThresholdBytes ?? 0}
read_only_function_list = '${(opts.readOnlyFunctions ?? []).join(',')}'
health_check_period = 0
failover_on_backend_error = off
use_watchdog = off
${backends}
`,
        { mode: 0o644 },
      )
      const log = join(dir, 'pgpool.log')
      const child = spawnServer(
        BIN()!,
        ['-n', '-D', '-f', join(dir, 'pgpool.conf'), '-F', join(dir, 'pcp.conf')],
        log,
      )
      await waitForPort(port, child, log)
      return { name, port, pid: child.pid ?? null, unsupported: {}, stop: () => stopChild(child, 'SIGINT') }
    },
  }
}
