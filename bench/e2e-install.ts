// Makes sure the end-to-end bench has pgbench, pgbouncer and pgpool-II: installs the Debian packages when root, else says how.

import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'

const NEEDS: { what: string; paths: string[]; pkg: string }[] = [
  { what: 'pgbench', paths: ['/usr/bin/pgbench', '/usr/local/bin/pgbench'], pkg: 'postgresql-contrib' },
  {
    what: 'pgbouncer',
    paths: ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer'],
    pkg: 'pgbouncer',
  },
  {
    what: 'pgpool-II',
    paths: ['/usr/sbin/pgpool', '/usr/bin/pgpool', '/usr/local/bin/pgpool'],
    pkg: 'pgpool2',
  },
]

/** The path of pgbench, or null. */
export function pgbenchPath(): string | null {
  return NEEDS[0]!.paths.find((p) => existsSync(p)) ?? null
}

/**
 * Installs what is missing with apt-get when running as root (unless `allowInstall` is false) and returns
 * one note per tool still missing. Debian's packages start their system services on install; they are
 * stopped again so they neither hold ports nor use CPU during the run.
 */
export function ensureTools(allowInstall: boolean, log: (s: string) => void): string[] {
  const missing = NEEDS.filter((n) => !n.paths.some((p) => existsSync(p)))
  if (missing.length === 0) return []
  const pkgs = [...new Set(missing.map((m) => m.pkg))]
  const root = process.getuid?.() === 0
  if (allowInstall && root && existsSync('/usr/bin/apt-get')) {
    log(`installing ${pkgs.join(' ')} with apt-get ...`)
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
    let res = spawnSync('apt-get', ['install', '-y', '-q', ...pkgs], { stdio: 'ignore', env })
    if (res.status !== 0) {
      spawnSync('apt-get', ['update', '-q'], { stdio: 'ignore', env })
      res = spawnSync('apt-get', ['install', '-y', '-q', ...pkgs], { stdio: 'ignore', env })
    }
    for (const svc of ['pgbouncer', 'pgpool2']) spawnSync('service', [svc, 'stop'], { stdio: 'ignore' })
  } else if (!root) {
    log(
      `missing ${missing.map((m) => m.what).join(', ')}: run as root to install, or: sudo apt-get install -y ${pkgs.join(' ')}`,
    )
  }
  return NEEDS.filter((n) => !n.paths.some((p) => existsSync(p))).map(
    (n) => `${n.what} missing (Debian package ${n.pkg}); its runs are skipped`,
  )
}
