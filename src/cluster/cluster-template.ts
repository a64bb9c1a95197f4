// Builds (once per binary version) and caches an initdb'd, configured data directory to copy nodes from.

import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chownSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { appendFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { ClusterError } from './cluster-error.js'
import type { PgBinaries } from './pg-binaries.js'
import { PostgresServer } from './postgres-server.js'

// Bump when the template's contents change, so stale caches are not reused.
const TEMPLATE_FORMAT = 1

/** The per-node settings file every template's postgresql.conf includes last. */
export const NODE_CONF = 'freshet-node.conf'

/** Test roles and their passwords; each role has its own pg_hba method (see pg_hba below). */
export const ROLE_PASSWORDS: Readonly<Record<string, string>> = Object.freeze({
  app: 'app',
  app_md5: 'app_md5',
  app_pw: 'app_pw',
})

const BASE_SETTINGS = `
# freshet local cluster
listen_addresses = '127.0.0.1'
max_connections = 200
shared_buffers = 32MB
wal_level = replica
max_wal_senders = 16
max_replication_slots = 16
wal_keep_size = 512MB
hot_standby = on
hot_standby_feedback = on
wal_receiver_status_interval = 1s
wal_retrieve_retry_interval = 200ms
fsync = off
full_page_writes = off
synchronous_commit = on
password_encryption = 'scram-sha-256'
logging_collector = off
log_line_prefix = '%m [%p] '
log_min_messages = warning
include_if_exists = '${NODE_CONF}'
`

// First match wins: the three password roles get their own method on TCP, everyone else trusts.
const PG_HBA = `
local   all          all                     trust
local   replication  all                     trust
host    all          app      127.0.0.1/32   scram-sha-256
host    all          app_md5  127.0.0.1/32   md5
host    all          app_pw   127.0.0.1/32   password
host    all          all      127.0.0.1/32   trust
host    replication  all      127.0.0.1/32   trust
`

const ROLES_SQL = `
CREATE ROLE app LOGIN PASSWORD 'app';
SET password_encryption = 'md5';
CREATE ROLE app_md5 LOGIN PASSWORD 'app_md5';
RESET password_encryption;
CREATE ROLE app_pw LOGIN PASSWORD 'app_pw';
GRANT pg_monitor TO app, app_md5, app_pw;
CREATE DATABASE freshet;
GRANT ALL ON DATABASE freshet TO app, app_md5, app_pw;
`

const FRESHET_DB_SQL = `
GRANT ALL ON SCHEMA public TO app, app_md5, app_pw;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO app, app_md5, app_pw;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO app, app_md5, app_pw;
`

/**
 * Returns the path of a cached template data directory for these binaries, building it first if
 * needed. Building happens inside `workDir` (a directory the caller's watchdog cleans up), and the
 * result is renamed into the cache atomically, so concurrent builders never see a half-made template.
 */
export async function ensureTemplate(
  bins: PgBinaries,
  workDir: string,
  onProgress: (msg: string) => void = () => {},
): Promise<string> {
  const key = createHash('sha256').update(`${TEMPLATE_FORMAT}:${bins.binDir}:${bins.version}`).digest('hex')
  const cached = join(
    tmpdir(),
    `freshet-pg-template-${bins.version}-${key.slice(0, 12)}-${process.getuid?.()}`,
  )
  if (existsSync(join(cached, 'data', 'PG_VERSION'))) return join(cached, 'data')

  onProgress(`building a PostgreSQL ${bins.version} template data directory (cached in ${cached})`)
  const stage = join(workDir, 'template')
  mkdirSync(stage, { mode: 0o700 })
  if (bins.runAs) chownSync(stage, bins.runAs.uid, bins.runAs.gid)
  const data = join(stage, 'data')
  await run(bins, bins.initdb, [
    '-D',
    data,
    '-U',
    'postgres',
    '-A',
    'trust',
    '-E',
    'UTF8',
    '--locale=C',
    '-N',
  ])
  await appendFile(join(data, 'postgresql.conf'), BASE_SETTINGS)
  writeFileSync(join(data, 'pg_hba.conf'), PG_HBA)
  // The build server listens on its socket only, so it can never collide with a port.
  writeFileSync(
    join(data, NODE_CONF),
    `listen_addresses = ''\nport = 5432\nunix_socket_directories = '${data}'\n`,
  )

  const server = new PostgresServer(bins, data, join(stage, 'build.log'))
  await server.start()
  try {
    await runSql(data, 'postgres', ROLES_SQL)
    await runSql(data, 'freshet', FRESHET_DB_SQL)
  } finally {
    await server.stop('fast')
  }
  rmSync(join(data, NODE_CONF))
  rmSync(join(data, 'postmaster.opts'), { force: true })
  try {
    renameSync(stage, cached)
  } catch {
    // Someone else cached it first: theirs is as good as ours.
    await rm(stage, { recursive: true, force: true })
  }
  if (!existsSync(join(cached, 'data', 'PG_VERSION'))) {
    throw new ClusterError(`could not cache the template data directory in ${cached}`)
  }
  return join(cached, 'data')
}

async function runSql(socketDir: string, database: string, sql: string): Promise<void> {
  const client = new pg.Client({ host: socketDir, port: 5432, user: 'postgres', database })
  await client.connect()
  try {
    // One statement at a time: CREATE DATABASE cannot run in the implicit transaction of a batch.
    for (const statement of sql.split(';\n').filter((s) => s.trim())) await client.query(statement)
  } finally {
    await client.end()
  }
}

/** Runs a command as `bins.runAs` and rejects with its output when it fails. */
export function run(bins: Pick<PgBinaries, 'runAs'>, command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const runAs = bins.runAs
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
      ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
    })
    let output = ''
    child.stdout?.on('data', (chunk) => {
      output += chunk
    })
    child.stderr?.on('data', (chunk) => {
      output += chunk
    })
    child.once('error', (err) =>
      reject(new ClusterError(`could not run ${command}: ${err.message}`, { cause: err })),
    )
    child.once('close', (code) => {
      if (code === 0) resolve(output)
      else reject(new ClusterError(`${command} ${args.join(' ')} failed (exit ${code}):\n${output.trim()}`))
    })
  })
}
