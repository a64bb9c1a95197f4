// `freshet status [--admin URL] [--token T]`: topology, lag, breakers and pools from the admin API, as a table.

import { parseArgs } from 'node:util'

export const usage =
  'freshet status [--admin URL] [--token T] [--json]   topology, lag, breakers and pools (token also from FRESHET_ADMIN_TOKEN)'

interface TopologyNode {
  name: string
  role: string
  healthy: boolean
  breaker: string
  lag_ms: number | null
  replay_lsn: string | null
  checked_at: string | null
  pool: { total: number; idle: number; waiting: number; active: number } | null
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      admin: { type: 'string', default: process.env.FRESHET_ADMIN_URL ?? 'http://127.0.0.1:9187' },
      token: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    console.log(`usage: ${usage}`)
    return 0
  }
  const base = values.admin!.replace(/\/+$/, '')
  const token = values.token ?? process.env.FRESHET_ADMIN_TOKEN
  let res: Response
  try {
    res = await fetch(`${base}/api/v1/topology`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      signal: AbortSignal.timeout(5000),
    })
  } catch (err) {
    console.error(`freshet status: cannot reach the admin API at ${base}: ${(err as Error).message}`)
    return 1
  }
  if (res.status === 401) {
    console.error('freshet status: unauthorized; pass --token or set FRESHET_ADMIN_TOKEN')
    return 1
  }
  if (!res.ok) {
    console.error(`freshet status: HTTP ${res.status} from ${base}/api/v1/topology`)
    return 1
  }
  const topo = (await res.json()) as {
    config_version: number
    primary: string | null
    controls: Record<string, boolean>
    tiers: Record<string, { max_lag_ms: number }>
    nodes: TopologyNode[]
  }
  if (values.json) {
    console.log(JSON.stringify(topo, null, 2))
    return 0
  }
  console.log(formatStatus(topo))
  return 0
}

/** The status table (exported for tests). */
export function formatStatus(topo: {
  config_version: number
  primary: string | null
  controls: Record<string, boolean>
  tiers: Record<string, { max_lag_ms: number }>
  nodes: TopologyNode[]
}): string {
  const header = [
    'NODE',
    'ROLE',
    'HEALTH',
    'BREAKER',
    'LAG',
    'REPLAY LSN',
    'POOL ACT/IDLE/TOT',
    'WAITING',
    'CHECKED',
  ]
  const rows = topo.nodes.map((n) => [
    n.name,
    n.role,
    n.healthy ? 'healthy' : 'DOWN',
    n.breaker,
    n.role === 'primary' ? '-' : n.lag_ms === null ? 'unknown' : `${n.lag_ms}ms`,
    n.replay_lsn ?? '-',
    n.pool ? `${n.pool.active}/${n.pool.idle}/${n.pool.total}` : '-',
    n.pool ? String(n.pool.waiting) : '-',
    n.checked_at
      ? `${Math.max(0, Math.round((Date.now() - Date.parse(n.checked_at)) / 100) / 10)}s ago`
      : 'never',
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd()
  const on = Object.entries(topo.controls)
    .filter(([, v]) => v)
    .map(([k]) => k)
  const tiers = Object.entries(topo.tiers)
    .map(([k, t]) => `${k}<=${t.max_lag_ms}ms`)
    .join(' ')
  return [
    `config version ${topo.config_version}, primary ${topo.primary ?? 'NONE'}, tiers ${tiers}`,
    `controls: ${on.length ? on.join(', ') : 'none on'}`,
    '',
    line(header),
    ...rows.map(line),
  ].join('\n')
}
