// The admin console's commands (SHOW POOLS/SERVERS/CLIENTS/NODES/CONFIG/HELP, RELOAD, SET <control>) as
// result sets, read from the same views as the admin HTTP API; everything else is refused.

import type { ControlsOutcome, topologyView } from '../admin-views.js'
import { CONTROL_KEYS } from '../admin-views.js'

/** A server connection as SHOW SERVERS lists it. */
export interface ConsoleServer {
  node: string
  host: string
  port: number
  user: string
  database: string
  state: string
  backend_pid: number
  connected_at: string
  last_used_at: string
}

/** A client connection as SHOW CLIENTS lists it. */
export interface ConsoleClient {
  pid: number
  user: string
  database: string
  address: string
  state: string
  tier: string | null
  connected_at: string
}

/** Where the console's answers come from: the admin API's own views, and the proxy's lists. */
export interface ConsoleSource {
  /** `GET /api/v1/topology`'s body. */
  topology(): ReturnType<typeof topologyView>
  /** `GET /api/v1/config`'s body: the running config, secrets as `***`. */
  config(): unknown
  servers(): readonly ConsoleServer[]
  clients(): readonly ConsoleClient[]
  /** `POST /api/v1/controls`. */
  setControls(patch: Record<string, boolean>): ControlsOutcome
  /** Re-reads the config file; throws an Error whose message says why it was refused. */
  reload(): Promise<{ version: number }>
}

/** One command's answer: rows (text), a notice, or an error with its SQLSTATE. */
export type ConsoleResult =
  | {
      readonly kind: 'rows'
      readonly columns: readonly string[]
      readonly rows: readonly (readonly (string | null)[])[]
      readonly tag: string
    }
  | { readonly kind: 'done'; readonly tag: string; readonly notice?: string }
  | { readonly kind: 'error'; readonly code: string; readonly message: string }

const HELP: readonly [string, string][] = [
  ['SHOW POOLS', 'server connections per node: total, active, idle, waiting'],
  ['SHOW SERVERS', 'each server connection: node, user, database, state, backend pid, ages'],
  ['SHOW CLIENTS', 'each client connection: pid, user, database, address, state, session tier'],
  ['SHOW NODES', 'role, health, breaker, lag, staleness bound and eligibility per tier'],
  ['SHOW CONFIG', 'the running config, one key path per row, secrets as ***'],
  ['SHOW CONTROLS', 'the emergency controls'],
  ['RELOAD', 're-read the config file (as SIGHUP does)'],
  [`SET <control> = on | off`, `emergency controls: ${CONTROL_KEYS.join(', ')}`],
]

const USAGE = `the admin console accepts ${HELP.map(([c]) => c).join(', ')}`
const text = (v: unknown): string | null => (v === null || v === undefined ? null : String(v))

/**
 * Runs one admin console command.
 * @example await runConsoleCommand('SHOW NODES', source) // { kind: 'rows', columns: ['name', ...], ... }
 */
export async function runConsoleCommand(sql: string, source: ConsoleSource): Promise<ConsoleResult> {
  const words = sql.trim().replace(/\s+/g, ' ')
  const show = /^show (\w+)$/i.exec(words)
  if (show) return showCommand(show[1]!.toLowerCase(), source)
  if (/^reload$/i.test(words)) {
    try {
      const { version } = await source.reload()
      return { kind: 'done', tag: 'RELOAD', notice: `freshet: config version ${version} is running` }
    } catch (err) {
      const why = (err as Error).message
        .replace(/^freshet: /, '')
        .split('\n')
        .map((l) => l.trim())
        .join(' ')
      return { kind: 'error', code: '55000', message: `freshet: reload refused: ${why}` }
    }
  }
  const set = /^set (\w+) ?(?:=|to) ?'?(\w+)'?$/i.exec(words)
  if (set) return setCommand(set[1]!.toLowerCase(), set[2]!.toLowerCase(), source)
  return { kind: 'error', code: '42601', message: `freshet: ${USAGE}; got '${words.slice(0, 80)}'` }
}

function rows(columns: string[], data: (string | null)[][]): ConsoleResult {
  return { kind: 'rows', columns, rows: data, tag: `SHOW ${data.length}` }
}

function showCommand(what: string, source: ConsoleSource): ConsoleResult {
  switch (what) {
    case 'pools': {
      const t = source.topology()
      return rows(
        ['node', 'role', 'total', 'active', 'idle', 'waiting'],
        t.nodes.map((n) => [
          n.name,
          n.role,
          text(n.pool?.total ?? 0),
          text(n.pool?.active ?? 0),
          text(n.pool?.idle ?? 0),
          text(n.pool?.waiting ?? 0),
        ]),
      )
    }
    case 'servers':
      return rows(
        ['node', 'host', 'port', 'user', 'database', 'state', 'backend_pid', 'connected_at', 'last_used_at'],
        source
          .servers()
          .map((s) => [
            s.node,
            s.host,
            text(s.port),
            s.user,
            s.database,
            s.state,
            text(s.backend_pid),
            s.connected_at,
            s.last_used_at,
          ]),
      )
    case 'clients':
      return rows(
        ['pid', 'user', 'database', 'address', 'state', 'tier', 'connected_at'],
        source
          .clients()
          .map((c) => [text(c.pid), c.user, c.database, c.address, c.state, c.tier, c.connected_at]),
      )
    case 'nodes': {
      const t = source.topology()
      const tiers = Object.keys(t.tiers)
      return rows(
        ['name', 'role', 'healthy', 'breaker', 'lag_ms', 'staleness_bound_ms', 'checked_at', ...tiers],
        t.nodes.map((n) => {
          const bound = (n as { staleness_bound_ms?: number | null }).staleness_bound_ms
          const row = t.eligibility[n.name]
          return [
            n.name,
            n.role,
            text(n.healthy),
            n.breaker,
            text(n.lag_ms),
            text(bound ?? null),
            n.checked_at,
            ...tiers.map((tier) => {
              if (n.role === 'primary') return 'primary'
              const cell = row?.[tier]
              return cell ? (cell.eligible ? 'eligible' : `no: ${cell.detail}`) : null
            }),
          ]
        }),
      )
    }
    case 'config':
      return rows(['key', 'value'], flatten(source.config(), ''))
    case 'controls': {
      const controls = source.topology().controls as Record<string, boolean>
      return rows(
        ['control', 'value'],
        CONTROL_KEYS.map((k) => [k, controls[k] ? 'on' : 'off']),
      )
    }
    case 'help':
      return rows(
        ['command', 'what it shows or does'],
        HELP.map(([c, w]) => [c, w]),
      )
    default:
      return { kind: 'error', code: '42704', message: `freshet: unknown SHOW ${what}; ${USAGE}` }
  }
}

function setCommand(name: string, value: string, source: ConsoleSource): ConsoleResult {
  if (!(CONTROL_KEYS as readonly string[]).includes(name)) {
    return {
      kind: 'error',
      code: '42704',
      message: `freshet: SET works on the emergency controls only (${CONTROL_KEYS.join(', ')}); got '${name}'`,
    }
  }
  const on = ['on', 'true', '1', 'yes'].includes(value)
  const off = ['off', 'false', '0', 'no'].includes(value)
  if (!on && !off) {
    return {
      kind: 'error',
      code: '22023',
      message: `freshet: SET ${name}: expected on or off, got '${value}'`,
    }
  }
  const outcome = source.setControls({ [name]: on })
  if (!outcome.ok) {
    return {
      kind: 'error',
      code: '22023',
      message: `freshet: ${outcome.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
    }
  }
  return {
    kind: 'done',
    tag: 'SET',
    notice: `freshet: ${name} is ${outcome.controls[name as keyof typeof outcome.controls] ? 'on' : 'off'}`,
  }
}

/** A document as `key.path[0].x = value` rows, in document order. */
function flatten(value: unknown, path: string): (string | null)[][] {
  if (Array.isArray(value)) {
    if (value.length === 0) return [[path, '[]']]
    return value.flatMap((v, i) => flatten(v, `${path}[${i}]`))
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
    if (entries.length === 0) return [[path, '{}']]
    return entries.flatMap(([k, v]) => flatten(v, path ? `${path}.${k}` : k))
  }
  return [[path, value === null ? null : String(value)]]
}
