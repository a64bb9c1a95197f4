// pgbouncer in transaction mode (pool size 20, trust auth via a userlist) in front of the primary, run as nobody.

import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort } from '../../src/cluster/free-port.js'
import { findBinary, type RouterSetup, routerDir, spawnServer, stopChild, waitForPort } from './router.js'

const BIN = () => findBinary('/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer')

/** pgbouncer's version as [major, minor], e.g. [1, 18]. */
function version(bin: string): [number, number] {
  const out = spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout ?? ''
  const m = /PgBouncer (\d+)\.(\d+)/.exec(out)
  return m ? [Number(m[1]), Number(m[2])] : [0, 0]
}

export const pgbouncer: RouterSetup = {
  name: 'pgbouncer',
  missing: () => (BIN() ? null : 'pgbouncer not installed (apt-get install pgbouncer)'),
  async start(cluster, parent) {
    const bin = BIN()!
    const dir = routerDir(parent, 'pgbouncer')
    const port = await freePort()
    const log = join(dir, 'pgbouncer.log')
    writeFileSync(join(dir, 'userlist.txt'), '"postgres" ""\n', { mode: 0o644 })
    writeFileSync(
      join(dir, 'pgbouncer.ini'),
      `[databases]
freshet = host=127.0.0.1 port=${cluster.primary.port} dbname=freshet user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir = ${dir}
auth_type = trust
auth_file = ${join(dir, 'userlist.txt')}
pool_mode = transaction
default_pool_size = 20
max_client_conn = 500
max_db_connections = 20
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
pidfile = ${join(dir, 'pgbouncer.pid')}
logfile = ${log}
log_connections = 0
log_disconnections = 0
log_pooler_errors = 1
`,
      { mode: 0o644 },
    )
    const child = spawnServer(bin, [join(dir, 'pgbouncer.ini')], join(dir, 'stdout.log'))
    await waitForPort(port, child, log)
    const [major, minor] = version(bin)
    // Protocol-level prepared statements under transaction pooling arrived in pgbouncer 1.21.
    const unsupported: Record<string, string> =
      major === 1 && minor < 21
        ? {
            'select-prepared': `pgbouncer ${major}.${minor} in transaction mode does not track prepared statements (1.21+)`,
          }
        : {}
    return {
      name: 'pgbouncer',
      port,
      pid: child.pid ?? null,
      unsupported,
      stop: () => stopChild(child, 'SIGINT'),
    }
  },
}
