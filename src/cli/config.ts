// `freshet config push FILE`, `freshet config status` and `freshet config flag NAME=BOOL`: a fleet's
// rollout, its per-instance state and its emergency flags, over the etcd named in a config's `fleet`.

import { readFile } from 'node:fs/promises'
import { hostname, userInfo } from 'node:os'
import { parseArgs } from 'node:util'
import { loadConfigFile } from '../backend/config-file.js'
import { CONTROL_KEYS, type ControlKey, type FleetConfig } from '../core/config/fleet-schema.js'
import { parseConfigText, validateConfig } from '../core/config/parse-config.js'
import type { FreshetConfig } from '../core/config/schema.js'
import { ConfigError, isFreshetError } from '../core/errors.js'
import { openFleetEtcd } from '../fleet/etcd-client.js'
import { formatFleetStatus, readFleetStatus } from '../fleet/fleet-status.js'
import { FleetStore } from '../fleet/fleet-store.js'
import { type ProposalOutcome, proposeConfig } from '../fleet/propose-config.js'
import { setFleetFlags } from '../fleet/set-fleet-flags.js'

export const usage = [
  'freshet config push FILE [--fleet CONFIG] [--by WHO]   propose FILE to the fleet; exit 0 once committed',
  'freshet config status [--config CONFIG] [--json]  committed version, flags, each instance and its answer',
  'freshet config flag NAME=true|false... [--config CONFIG] [--by WHO]   set fleet-wide emergency flags',
].join('\n')

/** `user@host`: who pushed or set a flag, unless --by says otherwise. */
function whoAmI(): string {
  let user = process.env.USER ?? 'unknown'
  try {
    user = userInfo().username
  } catch {
    // no passwd entry (containers): keep $USER
  }
  return `${user}@${hostname()}`
}

function printConfigError(file: string, err: ConfigError): void {
  console.error(`${file}: invalid, ${err.issues.length} error${err.issues.length === 1 ? '' : 's'}:`)
  for (const issue of err.issues) console.error(`  ${issue.path || '(root)'}: ${issue.message}`)
}

async function fleetOf(file: string): Promise<FleetConfig> {
  const config = await loadConfigFile(file)
  if (!config.fleet) {
    throw new ConfigError([{ path: 'fleet', message: `${file} has no fleet section (fleet.etcd.endpoints)` }])
  }
  return config.fleet
}

function printOutcome(o: ProposalOutcome): void {
  const head =
    o.status === 'committed'
      ? `version ${o.version} committed (${o.proposal}); every live instance applies it`
      : o.status === 'refused'
        ? `version ${o.version} refused: ${o.reason}`
        : `version ${o.version} aborted, applied nowhere: ${o.reason}`
  console.log(head)
  if (o.proposal)
    console.log(
      `quorum: ${o.required} of ${o.members.length} live instances (${o.members.join(', ') || 'none'})`,
    )
  for (const a of o.acks) {
    const why = a.ok ? '' : `: ${a.issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`
    console.log(`  ${a.instance}: ${a.ok ? 'acknowledged' : 'refused'}${why}`)
  }
  for (const m of o.members) if (!o.acks.some((a) => a.instance === m)) console.log(`  ${m}: no answer`)
}

async function push(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { fleet: { type: 'string' }, by: { type: 'string' } },
  })
  if (positionals.length !== 1) {
    console.error(`usage: ${usage}`)
    return 2
  }
  const file = positionals[0]!
  let document: Record<string, unknown>
  let config: FreshetConfig
  try {
    document = parseConfigText(await readFile(file, 'utf8'), { source: file })
    // the check-config validation here; every instance validates again with its own environment
    config = validateConfig(document, { env: process.env, source: file })
  } catch (err) {
    if (err instanceof ConfigError) {
      printConfigError(file, err)
      return 1
    }
    throw err
  }
  const fleet = values.fleet ? await fleetOf(values.fleet) : config.fleet
  if (!fleet) {
    console.error(`${file} has no fleet section: give the fleet's etcd with --fleet CONFIG`)
    return 2
  }
  const store = new FleetStore(openFleetEtcd(fleet))
  try {
    const outcome = await proposeConfig(store, document, config.version, {
      proposer: values.by ?? whoAmI(),
      quorum: fleet.quorum,
      ackTimeoutMs: fleet.ack_timeout_ms,
    })
    printOutcome(outcome)
    return outcome.status === 'committed' ? 0 : 1
  } finally {
    store.etcd.close()
  }
}

async function status(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { config: { type: 'string', short: 'c', default: 'freshet.yaml' }, json: { type: 'boolean' } },
  })
  const store = new FleetStore(openFleetEtcd(await fleetOf(values.config)))
  try {
    const s = await readFleetStatus(store)
    console.log(values.json ? JSON.stringify(s, null, 2) : formatFleetStatus(s))
    return 0
  } finally {
    store.etcd.close()
  }
}

async function flag(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c', default: 'freshet.yaml' }, by: { type: 'string' } },
  })
  const patch: Partial<Record<ControlKey, boolean>> = {}
  for (const p of positionals) {
    const m = /^([a-z_]+)=(true|false)$/.exec(p)
    if (!m || !(CONTROL_KEYS as readonly string[]).includes(m[1]!)) {
      console.error(
        `freshet config flag: '${p}' is not NAME=true|false with NAME one of ${CONTROL_KEYS.join(', ')}`,
      )
      return 2
    }
    patch[m[1] as ControlKey] = m[2] === 'true'
  }
  if (positionals.length === 0) {
    console.error(`usage: ${usage}`)
    return 2
  }
  const store = new FleetStore(openFleetEtcd(await fleetOf(values.config)))
  try {
    const set = await setFleetFlags(store, patch, values.by ?? whoAmI())
    console.log(
      `fleet flags: ${JSON.stringify(set.controls)} (set by ${set.set_by}); instances apply them within flags.eval_interval_ms`,
    )
    return 0
  } finally {
    store.etcd.close()
  }
}

/** Entry point of `freshet config`. */
export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv
  const commands: Record<string, (a: string[]) => Promise<number>> = { push, status, flag }
  if (sub === undefined || sub === '--help' || sub === '-h' || !Object.hasOwn(commands, sub)) {
    console.error(`usage:\n${usage}`)
    return sub === '--help' || sub === '-h' ? 0 : 2
  }
  try {
    return await commands[sub]!(rest)
  } catch (err) {
    if (err instanceof ConfigError) {
      printConfigError('config', err)
      return 1
    }
    if (isFreshetError(err) || err instanceof TypeError) {
      console.error((err as Error).message)
      return 1
    }
    // etcd unreachable and the like: one line, not a stack
    console.error(`freshet config ${sub}: ${(err as Error).message}`)
    return 1
  }
}
