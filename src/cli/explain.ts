// `freshet explain [--config FILE] [--json] SQL`: prints a statement's classification and where it would
// be routed now. With a config it probes live lag (short timeout); otherwise it explains from config only.

import { parseArgs } from 'node:util'
import { loadConfigFile } from '../backend/config-file.js'
import { Classifier } from '../core/classify/classifier.js'
import { engineOf } from '../core/config/engine-schema.js'
import { validateConfig } from '../core/config/parse-config.js'
import type { FreshetConfig } from '../core/config/schema.js'
import { ConfigError } from '../core/errors.js'
import { formatDecision } from '../core/route/format-decision.js'
import { IDLE_SESSION } from '../core/route/routing-context.js'
import { RoutingEngine } from '../routing/routing-engine.js'
import { explainShard } from './explain-shard.js'

export const usage =
  'freshet explain [--config FILE] [--json] [--tier TIER] [--timeout MS] SQL   print the classification and routing decision'

/** Without a config: one primary and one replica with the default tiers, so reads show their tier. */
const DEMO_CONFIG = {
  cluster: {
    primary: { name: 'primary', url: 'postgres://localhost/postgres' },
    replicas: [{ name: 'replica_1', url: 'postgres://localhost/postgres' }],
  },
  telemetry: { log_level: 'silent' },
} as const

export async function run(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      json: { type: 'boolean' },
      tier: { type: 'string' },
      timeout: { type: 'string', default: '2000' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help || positionals.length === 0) {
    console.error(`usage: ${usage}`)
    return values.help ? 0 : 2
  }
  const sql = positionals.join(' ')
  let config: FreshetConfig
  try {
    config = values.config ? await loadConfigFile(values.config) : validateConfig(DEMO_CONFIG)
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`${values.config}: invalid config:`)
      for (const i of err.issues) console.error(`  ${i.path || '(root)'}: ${i.message}`)
      return 1
    }
    throw err
  }
  if (config.shards) {
    await Classifier.loadParser()
    const e = explainShard(config, sql)
    console.log(values.json ? JSON.stringify(e.json, null, 2) : e.lines.join('\n'))
    return e.code
  }
  // Explaining must not write: no heartbeat table, lag from replay timestamps and LSNs instead.
  const readOnly = validateConfig({
    ...config,
    lag: { ...config.lag, heartbeat: { ...config.lag.heartbeat, enabled: false } },
  })
  await Classifier.loadParser()
  // engine: mysql (or mysql:// URLs): MySQL/MariaDB's parser, monitors and GTID tokens
  const driver =
    engineOf(readOnly) === 'mysql' ? new (await import('../mysql/mysql-driver.js')).MysqlDriver() : undefined
  const engine = new RoutingEngine(readOnly, driver)
  engine.on('log', () => {})
  let live = false
  let note: string
  if (values.config) {
    const timeoutMs = Number(values.timeout) || 2000
    const started = engine.start().then(
      () => true,
      () => false,
    )
    const timer = new Promise<false>((r) => setTimeout(() => r(false), timeoutMs).unref())
    const done = await Promise.race([started, timer])
    const snap = engine.snapshot()
    live = done && snap.some((n) => n.checked_at !== null && n.healthy)
    note = live
      ? 'live: lag and health probed just now'
      : `config only: nodes not reachable within ${timeoutMs} ms, replicas count as unavailable`
  } else {
    note =
      'demo topology, not your cluster: no --config given, so this is one primary and one replica_1 with the ' +
      'default tiers, never probed (no lag reading: reads that need a replica fall back). Pass --config FILE for yours'
  }
  try {
    const context = values.tier ? { tier: values.tier.toLowerCase() } : {}
    // The first call loads and warms the classifier (parser, cache); the second is what a running
    // instance pays per statement, and the time it reports.
    const dryRun = { dryRun: true } as const
    engine.decide(engine.classify(sql), IDLE_SESSION, context, dryRun)
    const { decision, classification: c } = engine.decide(engine.classify(sql), IDLE_SESSION, context, dryRun)
    if (values.json) {
      console.log(
        JSON.stringify(
          {
            live,
            note,
            decision,
            classification: {
              kind: c.kind,
              reason: c.reason,
              tables: c.tables,
              functions: c.functions,
              hints: c.hints,
              fingerprint: c.fingerprint ?? null,
              parse_error: c.parseError ?? null,
            },
            nodes: engine.snapshot().map((n) => ({
              name: n.name,
              role: n.role,
              healthy: n.healthy,
              state: nodeState(n, decision.target),
              lag_ms: n.lag_ms,
            })),
          },
          null,
          2,
        ),
      )
    } else {
      console.log(
        `statement: ${c.kind} (${c.reason})${c.tables.length ? ` tables: ${c.tables.join(', ')}` : ''}`,
      )
      const hints = Object.entries(c.hints).map(([k, v]) => `${k}=${v}`)
      if (hints.length) console.log(`hints:     ${hints.join(' ')}`)
      if (c.parseError) console.log(`parser:    ${c.parseError}`)
      console.log(`decision:  ${formatDecision(decision)}`)
      console.log(`why:       ${why(decision.reason)}`)
      for (const n of engine.snapshot()) {
        const lag = n.role === 'primary' ? '' : ` lag=${n.lag_ms === null ? 'unknown' : `${n.lag_ms}ms`}`
        console.log(`node:      ${n.name} ${n.role} ${nodeState(n, decision.target)}${lag}`)
      }
      console.log(`(${note}; decision time measured warm: the second of two runs)`)
    }
    return decision.target === null ? 3 : 0
  } finally {
    await engine.stop()
  }
}

/**
 * A node's state as explain prints it. A node never probed is "not probed", not "unavailable"; and the
 * node a decision routes to is never called unavailable (the primary takes every fallback, reachable or not).
 */
export function nodeState(
  node: { name: string; healthy: boolean; checked_at: string | number | null },
  target: string | null,
): string {
  if (node.healthy) return 'healthy'
  if (node.checked_at === null) return node.name === target ? 'not probed (the target)' : 'not probed'
  return node.name === target
    ? 'not reachable now (still the target: the primary takes fallbacks)'
    : 'unavailable'
}

function why(reason: string): string {
  const text: Record<string, string> = {
    emergency_primary: 'controls.route_all_to_primary (or disable_replica_pools) is on',
    shadow: 'routing.shadow: decided a replica but sent to the primary',
    pinned_transaction: 'an open transaction holds its node',
    pinned_session: 'session state lives on one connection',
    hint_route: 'a ROUTE_TO hint names the target',
    write: 'the statement class must run on the primary',
    volatile_function: 'it calls a volatile function that is not on the read-only list',
    rule: 'a classifier rule decided',
    context_primary: 'withPrimary() context',
    unknown_tier: 'the tier named is not in routing.tiers: primary',
    unannotated_primary: 'a read with no tier: routing.unannotated is primary',
    unannotated_error: 'a read with no tier: routing.unannotated is error',
    strict_tier: 'a tier with max_lag_ms 0 and no replica proven caught up',
    read_your_writes: 'a read-your-writes token limits the replicas',
    sticky_after_write: 'within consistency.sticky_after_write_ms of the last write',
    replica: "a replica within the tier's max_lag_ms, picked by the policy",
    fallback_primary: "no replica within the tier's bound: fallback primary",
    fallback_least_lagged: "no replica within the tier's bound: fallback least_lagged",
    fallback_error: "no replica within the tier's bound: fallback error",
    fallback_rate_limited: 'fallback to the primary is over its rate limit',
  }
  return text[reason] ?? reason
}
