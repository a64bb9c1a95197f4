// What an instance checks before it acknowledges a proposed config: the same validation as
// `freshet check-config`, a version above its own, and that it can reach every node the config names.

import pg from 'pg'
import { engineOf } from '../core/config/engine-schema.js'
import { validateConfig } from '../core/config/parse-config.js'
import { redactUrl } from '../core/config/redact.js'
import type { FreshetConfig, NodeConfig } from '../core/config/schema.js'
import { ConfigError } from '../core/errors.js'
import type { FleetIssue } from './fleet-records.js'

/** The outcome of {@link validateProposal}: the config this instance would run, or why not. */
export type ProposalCheck =
  | { readonly ok: true; readonly config: FreshetConfig }
  | { readonly ok: false; readonly issues: readonly FleetIssue[] }

/**
 * The proposed document with this instance's own settings in place: its `fleet` section (instance id,
 * etcd endpoints) and the addresses it listens on are per instance, not fleet-wide.
 */
export function localize(document: unknown, running: FreshetConfig): unknown {
  if (document === null || typeof document !== 'object' || Array.isArray(document)) return document
  const d = document as Record<string, unknown>
  const section = (key: string) => {
    const v = d[key]
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {}
  }
  return {
    ...d,
    fleet: running.fleet,
    proxy: { ...section('proxy'), listen: running.proxy.listen },
    admin: { ...section('admin'), listen: running.admin.listen },
  }
}

/** Validates a document as check-config does, against this instance's environment and running config. */
export function checkDocument(
  document: unknown,
  running: FreshetConfig,
  env: Readonly<Record<string, string | undefined>>,
): ProposalCheck {
  let config: FreshetConfig
  try {
    config = validateConfig(localize(document, running), { env, source: 'fleet proposal' })
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    return { ok: false, issues: err.issues }
  }
  if (config.version <= running.version) {
    return {
      ok: false,
      issues: [
        {
          path: 'version',
          message: `must be greater than the running version ${running.version} (got ${config.version})`,
        },
      ],
    }
  }
  return { ok: true, config }
}

/** Every node of a config with its key path: the cluster's, and each shard's when sharded. */
function nodesOf(config: FreshetConfig): { path: string; node: NodeConfig }[] {
  const group = (base: string, g: { primary: NodeConfig; replicas: readonly NodeConfig[] }) => [
    { path: `${base}.primary.url`, node: g.primary },
    ...g.replicas.map((node, i) => ({ path: `${base}.replicas[${i}].url`, node })),
  ]
  const shards = (config as { shards?: readonly { primary: NodeConfig; replicas: readonly NodeConfig[] }[] })
    .shards
  if (shards && shards.length > 0) return shards.flatMap((s, i) => group(`shards[${i}]`, s))
  return group('cluster', config.cluster)
}

/**
 * Connects to each node of `config` (SELECT 1) and reports the ones this instance cannot reach. Only
 * PostgreSQL configs are checked this way (the fleet runs with the PostgreSQL faces).
 */
export async function unreachableNodes(config: FreshetConfig, timeoutMs: number): Promise<FleetIssue[]> {
  if (engineOf(config) !== 'postgres') return []
  const nodes = nodesOf(config)
  const issues = await Promise.all(
    nodes.map(async ({ path, node }): Promise<FleetIssue | null> => {
      const client = new pg.Client({
        connectionString: node.url,
        connectionTimeoutMillis: timeoutMs,
        query_timeout: timeoutMs,
      })
      client.on('error', () => {})
      try {
        await client.connect()
        await client.query('SELECT 1')
        return null
      } catch (err) {
        return {
          path,
          message: `cannot reach ${node.name} (${redactUrl(node.url)}): ${(err as Error).message}`,
        }
      } finally {
        await client.end().catch(() => {})
      }
    }),
  )
  return issues.filter((i): i is FleetIssue => i !== null)
}

/**
 * Everything an instance checks before acknowledging: validation, version, reachability.
 * @example
 * const check = await validateProposal(document, engine.config, process.env)
 * if (!check.ok) console.log(check.issues)
 */
export async function validateProposal(
  document: unknown,
  running: FreshetConfig,
  env: Readonly<Record<string, string | undefined>>,
): Promise<ProposalCheck> {
  const checked = checkDocument(document, running, env)
  if (!checked.ok) return checked
  const unreachable = await unreachableNodes(checked.config, Math.max(checked.config.health.timeout_ms, 2000))
  return unreachable.length > 0 ? { ok: false, issues: unreachable } : checked
}
