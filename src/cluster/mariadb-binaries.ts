// Locates the MariaDB server binaries (Debian's mariadb-server, or FRESHET_MARIADB_BIN) and the user to run them as.

import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { ClusterError } from './cluster-error.js'
import type { RunAs } from './pg-binaries.js'

/** Where the MariaDB binaries are and which version they are. */
export interface MariadbBinaries {
  /** The server: `mariadbd` (or `mysqld` in older layouts). */
  readonly server: string
  /** `mariadb-install-db` (or `mysql_install_db`). */
  readonly installDb: string
  /** e.g. `10.11.19` */
  readonly version: string
  /** Set when the current process is root: servers run as `nobody` (uid/gid 65534). */
  readonly runAs: RunAs | null
}

const NOBODY: RunAs = Object.freeze({ uid: 65534, gid: 65534 })
const SEARCH = ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin', '/usr/local/mysql/bin']
const INSTALL_HINT =
  "install Debian's `mariadb-server` package (`apt-get install mariadb-server`), or set FRESHET_MARIADB_BIN " +
  'to a directory that holds `mariadbd` and `mariadb-install-db`'

/**
 * Resolves the binaries: `binDir`, else env `FRESHET_MARIADB_BIN`, else the system's (`/usr/sbin/mariadbd`,
 * `/usr/bin/mariadb-install-db`). Checks that the server runs as the user it will run as.
 *
 * @example
 * const bins = resolveMariadbBinaries() // { server: '/usr/sbin/mariadbd', installDb: ..., version: '10.11.19', runAs }
 */
export function resolveMariadbBinaries(binDir?: string): MariadbBinaries {
  const dirs = binDir ?? process.env.FRESHET_MARIADB_BIN
  const search = dirs ? [dirs] : SEARCH
  const server = find(search, ['mariadbd', 'mysqld'])
  const installDb = find(search, ['mariadb-install-db', 'mysql_install_db'])
  if (!server || !installDb) {
    throw new ClusterError(`MariaDB binaries not found in ${search.join(', ')}; ${INSTALL_HINT}`)
  }
  const runAs = process.getuid?.() === 0 ? NOBODY : null
  const probe = spawnSync(server, ['--version'], {
    encoding: 'utf8',
    ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
  })
  if (probe.error || probe.status !== 0) {
    const who = runAs ? `uid ${runAs.uid} (nobody)` : `uid ${process.getuid?.()}`
    throw new ClusterError(`cannot run ${server} as ${who}: ${probe.error?.message ?? probe.stderr.trim()}`, {
      cause: probe.error,
    })
  }
  const version = /Ver\s+(\d+\.\d+\.\d+)/.exec(probe.stdout)?.[1] ?? probe.stdout.trim()
  return Object.freeze({ server, installDb, version, runAs })
}

function find(dirs: readonly string[], names: readonly string[]): string | null {
  for (const dir of dirs) {
    for (const name of names) {
      const file = join(dir, name)
      if (existsSync(file)) return file
    }
  }
  return null
}
