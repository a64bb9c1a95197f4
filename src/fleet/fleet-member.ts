// One instance's part in a fleet: membership under a lease, answers to proposals, applying commits
// through the engine's reload (the path PUT /api/v1/config and the file watcher use), fleet flags,
// the local cache of the committed config, and behaviour when etcd is out of reach.

import { createHash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import type { Lease } from 'etcd3'
import type { Registry } from 'prom-client'
import { CONTROL_KEYS, type ControlKey, type FleetConfig } from '../core/config/fleet-schema.js'
import type { FreshetConfig } from '../core/config/schema.js'
import { FreshetError } from '../core/errors.js'
import type { RoutingEngine } from '../routing/routing-engine.js'
import { openFleetEtcd } from './etcd-client.js'
import type { FleetInstanceState, FleetMemberEvents } from './fleet-member-state.js'
import { attachFleetMetrics } from './fleet-metrics.js'
import type {
  CommittedRecord,
  FlagsRecord,
  InstanceKind,
  MemberRecord,
  ProposalRecord,
} from './fleet-records.js'
import { FleetStore, type Revisioned } from './fleet-store.js'
import { type ProposalOutcome, proposeConfig } from './propose-config.js'
import { setFleetFlags } from './set-fleet-flags.js'
import { checkDocument, validateProposal } from './validate-proposal.js'

/** The engine surface a member drives. */
export type FleetEngine = Pick<RoutingEngine, 'config' | 'reload' | 'setControls' | 'snapshot' | 'emit'>

export interface FleetMemberOptions {
  readonly kind: InstanceKind
  /** Environment for ${VAR} substitution in proposed configs (default process.env). */
  readonly env?: NodeJS.ProcessEnv
}

export type { FleetInstanceState, FleetMemberEvents } from './fleet-member-state.js'

interface CacheFile {
  readonly version: number
  readonly proposal: string
  readonly document: unknown
}

/** The default instance id: `hostname:pid`. */
export function defaultInstanceId(): string {
  return `${hostname()}:${process.pid}`
}

/**
 * A fleet member for an engine whose config has a `fleet` section.
 * @example
 * const member = new FleetMember(engine, { kind: 'proxy' })
 * await member.start()          // before engine.start(): may switch to the committed config
 * await member.propose(document, 8)
 * await member.stop()
 */
export class FleetMember extends EventEmitter<FleetMemberEvents> {
  readonly instance: string
  readonly kind: InstanceKind
  readonly fleet: FleetConfig
  readonly store: FleetStore
  readonly #engine: FleetEngine
  readonly #env: NodeJS.ProcessEnv
  readonly #cacheFile: string
  readonly #startedAt = new Date().toISOString()
  #timer: NodeJS.Timeout | null = null
  #running: Promise<void> | null = null
  #stopped = false
  #connected: boolean | null = null
  #since: string | null = null
  #lastError: string | null = null
  #startedFrom: FleetInstanceState['started_from'] = null
  #lease: Lease | null = null
  #leaseLost = false
  #written: string | null = null
  /** Proposals answered (by id), so each is validated once. */
  readonly #answered = new Set<string>()
  #acked: MemberRecord['acked'] = null
  #flagsRevision = ''
  #flags: FlagsRecord | null = null
  #committed: CommittedRecord | null = null
  #applyError: string | null = null
  #aheadWarned = -1
  /** Everything counted since construction, so metrics attached later start from the true totals. */
  readonly #counts = new Map<string, number>()

  constructor(engine: FleetEngine, options: FleetMemberOptions) {
    super()
    const fleet = engine.config.fleet
    if (!fleet)
      throw new FreshetError('FRESHET_CONFIG_INVALID', 'FleetMember needs a config with a fleet section')
    this.#engine = engine
    this.fleet = fleet
    this.kind = options.kind
    this.#env = options.env ?? process.env
    this.instance = fleet.instance ?? defaultInstanceId()
    this.store = new FleetStore(openFleetEtcd(fleet))
    this.#cacheFile = fleet.cache_file ?? defaultCacheFile(fleet)
  }

  /**
   * Joins the fleet and catches up with the committed config. When etcd cannot be reached, runs the
   * local cache of the last committed config if it is newer than the config file. Never throws for an
   * unreachable etcd: the instance serves on and keeps trying every `flags.eval_interval_ms`.
   */
  async start(): Promise<void> {
    await this.refresh()
    if (this.#connected) this.#startedFrom = 'etcd'
    else this.#startFromCache()
    this.#timer = setInterval(() => void this.refresh(), this.fleet.flags.eval_interval_ms)
    this.#timer.unref()
  }

  /** Leaves the fleet: revokes the lease (the membership key goes at once) and closes the client. */
  async stop(): Promise<void> {
    this.#stopped = true
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = null
    await this.#running?.catch(() => {})
    await this.#lease?.revoke().catch(() => {})
    this.store.etcd.close()
  }

  /** Reads the fleet now (commits, flags, proposals) instead of waiting for the next interval. */
  refresh(): Promise<void> {
    const previous = this.#running ?? Promise.resolve()
    const run = previous.then(() => (this.#stopped ? undefined : this.#tick()))
    this.#running = run
    return run
  }

  state(): FleetInstanceState {
    return {
      instance: this.instance,
      kind: this.kind,
      etcd: this.#connected === null ? 'unknown' : this.#connected ? 'connected' : 'unreachable',
      since: this.#since,
      last_error: this.#lastError,
      running_version: this.#engine.config.version,
      committed_version: this.#committed?.version ?? null,
      started_from: this.#startedFrom,
      apply_error: this.#applyError,
    }
  }

  /**
   * Proposes a validated document at `version` to the fleet with this instance as proposer, and
   * applies it here before returning when it was committed.
   */
  async propose(document: unknown, version: number): Promise<ProposalOutcome> {
    const outcome = await proposeConfig(this.store, document, version, {
      proposer: this.instance,
      quorum: this.fleet.quorum,
      ackTimeoutMs: this.fleet.ack_timeout_ms,
    })
    if (outcome.status === 'committed') await this.refresh()
    return outcome
  }

  /** Sets fleet-wide flags (every instance applies them within eval_interval_ms), then applies them here. */
  async setFlags(
    patch: Partial<FreshetConfig['controls']>,
    setBy: string,
  ): Promise<FreshetConfig['controls']> {
    await setFleetFlags(this.store, patch, setBy)
    await this.refresh()
    return this.#engine.config.controls
  }

  /** Registers this member's metrics (freshet_fleet_*) in a registry; returns the detach function. */
  attachMetrics(registry: Registry): () => void {
    return attachFleetMetrics(registry, this)
  }

  /**
   * Events counted since this member was created, keyed `flag:<name>`, `ack:ok|refused`,
   * `applied:etcd|cache` (what the freshet_fleet_* counters start from).
   */
  counts(): ReadonlyMap<string, number> {
    return this.#counts
  }

  #count(key: string): void {
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1)
  }

  async #tick(): Promise<void> {
    try {
      const [committed, flags, proposals] = await Promise.all([
        this.store.committed(),
        this.store.flags(),
        this.store.proposals(),
      ])
      this.#linkUp()
      this.#ensureLease()
      await this.#applyCommitted(committed.value)
      this.#applyFlags(flags)
      await this.#answer(proposals)
      await this.#writeMember()
    } catch (err) {
      this.#linkDown(err)
    }
  }

  #ensureLease(): void {
    if (this.#lease && !this.#leaseLost) return
    const lease = this.store.lease(this.fleet.lease_ttl_s)
    lease.on('lost', () => {
      if (this.#lease === lease) this.#leaseLost = true
    })
    this.#lease = lease
    this.#leaseLost = false
    this.#written = null
  }

  async #writeMember(): Promise<void> {
    const primary = this.#engine.snapshot().find((n) => n.role === 'primary')
    const record: MemberRecord = {
      instance: this.instance,
      kind: this.kind,
      version: this.#engine.config.version,
      healthy: primary?.healthy ?? false,
      started_at: this.#startedAt,
      acked: this.#acked,
      apply_error: this.#applyError,
    }
    const json = JSON.stringify(record)
    if (json === this.#written || !this.#lease) return
    await this.store.putMember(this.#lease, record)
    this.#written = json
  }

  /** Applies the committed version when it is newer than the running one; never anything uncommitted. */
  async #applyCommitted(record: CommittedRecord | null): Promise<void> {
    this.#committed = record
    if (!record) return
    const running = this.#engine.config.version
    if (record.version < running && this.#aheadWarned !== record.version) {
      this.#aheadWarned = record.version
      this.#log(
        'warn',
        `fleet: running version ${running} is ahead of the committed version ${record.version}; push it with freshet config push`,
        {
          running,
          committed: record.version,
        },
      )
    }
    if (record.version <= running) return
    const document = await this.store.document(record.proposal)
    this.#applyDocument(document, record.version, record.proposal, 'etcd', `committed by ${record.proposer}`)
  }

  /** Validates and applies a committed document through engine.reload(); a failure is kept and logged once. */
  #applyDocument(
    document: unknown,
    version: number,
    proposal: string,
    source: 'etcd' | 'cache',
    how: string,
  ): boolean {
    const check = checkDocument(document, this.#engine.config, this.#env)
    if (!check.ok) {
      const why = check.issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')
      if (this.#applyError !== why) {
        this.#applyError = why
        this.#log(
          'error',
          `fleet: committed version ${version} cannot be applied here; still running version ${this.#engine.config.version}: ${why}`,
          {
            version,
            issues: check.issues.map((i) => ({ ...i })),
          },
        )
      }
      return false
    }
    this.#engine.reload(check.config)
    this.#applyError = null
    // a reload resets the controls to the config's values; the fleet's flags still hold
    if (this.#flags) this.#engine.setControls(this.#flags.controls)
    if (source === 'etcd') this.#writeCache({ version, proposal, document })
    this.#log('info', `fleet: config version ${version} applied (${how}, from ${source})`, {
      version,
      proposal,
      source,
    })
    this.#count(`applied:${source}`)
    this.emit('applied', version, source)
    return true
  }

  #applyFlags(flags: Revisioned<FlagsRecord | null>): void {
    if (flags.revision === this.#flagsRevision) return
    this.#flagsRevision = flags.revision
    this.#flags = flags.value
    if (!flags.value) return
    const current = this.#engine.config.controls
    const patch: Partial<FreshetConfig['controls']> = {}
    const changed: ControlKey[] = []
    for (const key of CONTROL_KEYS) {
      const to = flags.value.controls[key]
      if (typeof to === 'boolean' && to !== current[key]) {
        patch[key] = to
        changed.push(key)
      }
    }
    if (changed.length === 0) return
    this.#engine.setControls(patch)
    for (const key of changed) {
      this.#log('warn', `fleet: flag ${key} set to ${patch[key]} by ${flags.value.set_by}`, {
        flag: key,
        from: current[key],
        to: patch[key],
        set_by: flags.value.set_by,
        set_at: flags.value.at,
      })
      this.#count(`flag:${key}`)
      this.emit('flag', key, current[key], patch[key]!, flags.value.set_by)
    }
  }

  /** Validates each pending proposal this instance is part of, once, and writes its answer. */
  async #answer(proposals: readonly Revisioned<ProposalRecord>[]): Promise<void> {
    for (const { value: p } of proposals) {
      if (p.status !== 'pending' || this.#answered.has(p.id) || !p.members.includes(this.instance)) continue
      if (Date.now() > p.deadline) continue
      this.#answered.add(p.id)
      const document = await this.store.document(p.id)
      const check = await validateProposal(document, this.#engine.config, this.#env)
      const issues = check.ok ? [] : check.issues
      await this.store.putAck({
        instance: this.instance,
        proposal: p.id,
        version: p.version,
        ok: check.ok,
        issues,
        at: new Date().toISOString(),
      })
      this.#acked = { proposal: p.id, version: p.version, ok: check.ok }
      if (!check.ok) {
        this.#log('warn', `fleet: refused proposed version ${p.version} from ${p.proposer}`, {
          proposal: p.id,
          issues: issues.map((i) => ({ ...i })),
        })
      }
      this.#count(`ack:${check.ok ? 'ok' : 'refused'}`)
      this.emit('ack', p.id, check.ok)
    }
  }

  #linkUp(): void {
    if (this.#connected === true) return
    const was = this.#connected
    this.#connected = true
    this.#since = new Date().toISOString()
    this.#lastError = null
    if (was === false) this.#log('info', 'fleet: etcd reachable again; catching up with the committed config')
    this.emit('connection', true)
  }

  #linkDown(err: unknown): void {
    this.#lastError = (err as Error).message
    if (this.#connected === false) return
    this.#connected = false
    this.#since = new Date().toISOString()
    // one line per outage: the instance keeps routing with what it runs
    this.#log(
      'warn',
      `fleet: etcd unreachable (${this.#lastError}); keeping config version ${this.#engine.config.version}; rollouts and flags wait until it is back`,
      {
        version: this.#engine.config.version,
      },
    )
    this.emit('connection', false)
  }

  /** The fallback chain at start without etcd: the local cache of the last commit, then the config file. */
  #startFromCache(): void {
    const cache = readCache(this.#cacheFile)
    const running = this.#engine.config.version
    if (cache && cache.version > running) {
      const ok = this.#applyDocument(
        cache.document,
        cache.version,
        cache.proposal,
        'cache',
        `cached in ${this.#cacheFile}`,
      )
      if (ok) {
        this.#startedFrom = 'cache'
        return
      }
    }
    this.#startedFrom = 'file'
    this.#log(
      'warn',
      `fleet: started without etcd; running version ${running} from the config file (no newer cache in ${this.#cacheFile})`,
      {
        version: running,
      },
    )
  }

  #writeCache(cache: CacheFile): void {
    try {
      mkdirSync(dirname(this.#cacheFile), { recursive: true })
      const tmp = `${this.#cacheFile}.${process.pid}.tmp`
      // the document may hold secrets (node passwords): owner only
      writeFileSync(tmp, JSON.stringify(cache), { mode: 0o600 })
      renameSync(tmp, this.#cacheFile)
    } catch (err) {
      this.#log('warn', `fleet: cannot write the config cache ${this.#cacheFile}: ${(err as Error).message}`)
    }
  }

  #log(level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>): void {
    this.#engine.emit('log', level, message, { instance: this.instance, ...fields })
  }
}

/** `<tmpdir>/freshet-fleet-<hash of endpoints and prefix>.json`: shared by the instances of one host. */
function defaultCacheFile(fleet: FleetConfig): string {
  const id = createHash('sha256')
    .update(`${fleet.etcd.endpoints.join(',')}|${fleet.etcd.prefix}`)
    .digest('hex')
  return join(tmpdir(), `freshet-fleet-${id.slice(0, 16)}.json`)
}

function readCache(path: string): CacheFile | null {
  try {
    const c = JSON.parse(readFileSync(path, 'utf8')) as CacheFile
    return typeof c.version === 'number' && typeof c.proposal === 'string' ? c : null
  } catch {
    return null
  }
}
