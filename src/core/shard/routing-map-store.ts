// The routing map at run time: the config's map with entries added through the admin API laid over it
// (each with an id, its origin and an optional expiry on an injected clock), and a monotonic version
// kept apart from the config version, so API entries and the version survive a config reload.

import type { ShardKeyValue } from './shard-key.js'
import {
  INT8_MAX,
  INT8_MIN,
  type ParsedRange,
  parseKeyRange,
  ShardMap,
  type ShardMapEntry,
  type ShardMapIssue,
  type ShardMapSpec,
} from './shard-map.js'

/** What draining the old route did (the POST and DELETE responses carry it as `drained`). */
export interface DrainReport {
  /** The shards that owned the range before. */
  readonly from: readonly string[]
  /** Statements running on those shards when the new map applied (they finished there). */
  readonly statements: number
  /** Transactions open on those shards when the new map applied (they finish there, on the map they began with). */
  readonly transactions: number
  /** Of those, still running when the wait ended (left to finish; nothing is killed). */
  readonly still_running: number
  readonly waited_ms: number
  /** Idle server connections to the old shards' nodes closed after the wait. */
  readonly closed_idle_connections: number
  /** Set when the face does not track its statements per shard (the library): nothing was waited for. */
  readonly note?: string
}

/** Where an entry came from: `sharding.map` in the config, or `POST /api/v1/routing-map`. */
export type RoutingMapOrigin = 'config' | 'api'

/** One entry of the store as `GET /api/v1/routing-map` shows it. */
export interface RoutingMapEntryView {
  /** `config:<i>` for `sharding.map[i]`, `api:<n>` for the n-th entry posted (n never reused). */
  readonly id: string
  readonly partition_key_range: string
  readonly target_backend: string
  readonly origin: RoutingMapOrigin
  /** The map version that applied this entry (config entries: the version the config came in with). */
  readonly version: number
  /** ISO time the entry was applied (API entries only). */
  readonly created_at: string | null
  /** ttl as posted, in seconds; null: no expiry (config entries never expire). */
  readonly ttl: number | null
  /** Seconds until it expires and its range returns to the entries below it, or null. */
  readonly ttl_left: number | null
}

/** A part of the key space and the shard that owns it (a piece of a range, or listed values). */
export interface RangeOwner {
  readonly shard: string
  readonly range: ParsedRange
  /** The same piece as `partition_key_range` text. */
  readonly text: string
}

/** A posted entry, checked against the current map but not applied. */
export interface RoutingMapProposal {
  readonly entry: ShardMapEntry
  readonly range: ParsedRange
  readonly ttl: number | null
  readonly force: boolean
  /** The map if the proposal were applied now. */
  readonly map: ShardMap
  /** Who owns the posted range now, piece by piece (the target included, where it already owns a piece). */
  readonly owners: readonly RangeOwner[]
  /** The store version the proposal was checked against: apply refuses it once the map has moved on. */
  readonly baseVersion: number
}

/** What changed the map (the store's change listener and logs say it). */
export type RoutingMapChangeReason = 'api' | 'delete' | 'expired' | 'config'

/** The base the store lays API entries over: the config's map, its key space and the shard names. */
export interface RoutingMapBase {
  readonly spec: ShardMapSpec
  readonly entries: readonly ShardMapEntry[]
  readonly shards: readonly string[]
}

interface Overlay {
  readonly n: number
  readonly entry: ShardMapEntry
  readonly range: ParsedRange
  readonly version: number
  readonly createdAt: number
  readonly ttl: number | null
  readonly expiresAt: number | null
}

interface Piece {
  lo: bigint
  hi: bigint
  target: string
}

const POST_KEYS = new Set(['partition_key_range', 'target_backend', 'ttl', 'force'])

/** A span's text in the map's own notation (range maps write the int8 ends as min / max). */
export function spanText(lo: bigint, hi: bigint, spec: ShardMapSpec): string {
  const f = (v: bigint) =>
    spec.method === 'range' && v === INT8_MIN
      ? 'min'
      : spec.method === 'range' && v === INT8_MAX
        ? 'max'
        : v.toString()
  return lo === hi ? f(lo) : `${f(lo)}-${f(hi)}`
}

/** Cuts [lo, hi] out of sorted pieces and puts `target` there. */
function layOver(pieces: Piece[], lo: bigint, hi: bigint, target: string): Piece[] {
  const out: Piece[] = []
  for (const p of pieces) {
    if (p.hi < lo || p.lo > hi) out.push(p)
    else {
      if (p.lo < lo) out.push({ lo: p.lo, hi: lo - 1n, target: p.target })
      if (p.hi > hi) out.push({ lo: hi + 1n, hi: p.hi, target: p.target })
    }
  }
  out.push({ lo, hi, target })
  return out.sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0))
}

/** Adjacent pieces of one shard as one. */
function merged(pieces: Piece[]): Piece[] {
  const out: Piece[] = []
  for (const p of pieces) {
    const last = out[out.length - 1]
    if (last && last.target === p.target && last.hi + 1n === p.lo) last.hi = p.hi
    else out.push({ ...p })
  }
  return out
}

/**
 * The versioned routing map. Pure: no I/O, time from the injected clock; the admin API checks and
 * applies entries through it and hands each new map to the router.
 *
 * @example
 * const store = new RoutingMapStore({ spec, entries: config.sharding.map, shards: ['shard_0', 'shard_1'] })
 * const checked = store.check({ partition_key_range: '0-99', target_backend: 'shard_1', ttl: 3600 })
 * if (checked.ok) store.apply(checked.proposal) // { id: 'api:1', version: 2, map }
 * store.map.shardOfPoint(5n) // 'shard_1' until the hour is up (store.expire() puts it back)
 */
export class RoutingMapStore {
  readonly #now: () => number
  #base: RoutingMapBase
  #baseVersion: number
  #overlays: Overlay[] = []
  #next = 1
  #version = 1
  #map: ShardMap
  readonly #listeners = new Set<(map: ShardMap, version: number, reason: RoutingMapChangeReason) => void>()

  /** @throws ShardMapIssue[] (as an Error with `issues`) when the base map is not valid */
  constructor(base: RoutingMapBase, options: { now?: () => number } = {}) {
    this.#now = options.now ?? Date.now
    this.#base = base
    this.#baseVersion = 1
    this.#map = this.#build(base, [])
  }

  /** The map version: 1 at start, one more for every change (API entry, delete, expiry, config map change). */
  get version(): number {
    return this.#version
  }

  /** The map in force. */
  get map(): ShardMap {
    return this.#map
  }

  get spec(): ShardMapSpec {
    return this.#base.spec
  }

  get shards(): readonly string[] {
    return this.#base.shards
  }

  /** Called after every change with the new map and version (the router swaps its map here). */
  onChange(listener: (map: ShardMap, version: number, reason: RoutingMapChangeReason) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Config entries, then API entries in the order they were applied (a later one wins where they overlap). */
  entries(): RoutingMapEntryView[] {
    const now = this.#now()
    const config = this.#base.entries.map(
      (e, i): RoutingMapEntryView => ({
        id: `config:${i}`,
        partition_key_range: e.partition_key_range,
        target_backend: e.target_backend,
        origin: 'config',
        version: this.#baseVersion,
        created_at: null,
        ttl: null,
        ttl_left: null,
      }),
    )
    const api = this.#overlays.map(
      (o): RoutingMapEntryView => ({
        id: `api:${o.n}`,
        partition_key_range: o.entry.partition_key_range,
        target_backend: o.entry.target_backend,
        origin: 'api',
        version: o.version,
        created_at: new Date(o.createdAt).toISOString(),
        ttl: o.ttl,
        ttl_left: o.expiresAt === null ? null : Math.max(0, Math.ceil((o.expiresAt - now) / 1000)),
      }),
    )
    return [...config, ...api]
  }

  /**
   * Checks a posted body (`{ partition_key_range, target_backend, ttl?, force? }`) against the map in
   * force: issues name the key path of what is wrong; else the proposal with the map it would make and
   * the current owners of its range.
   */
  check(body: unknown): { ok: true; proposal: RoutingMapProposal } | { ok: false; issues: ShardMapIssue[] } {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      return {
        ok: false,
        issues: [
          {
            path: '',
            message: 'expected a JSON object { partition_key_range, target_backend, ttl?, force? }',
          },
        ],
      }
    }
    const b = body as Record<string, unknown>
    const issues: ShardMapIssue[] = []
    for (const k of Object.keys(b)) {
      if (!POST_KEYS.has(k))
        issues.push({ path: k, message: `unknown key (expected ${[...POST_KEYS].join(', ')})` })
    }
    const rangeText = b.partition_key_range
    let range: ParsedRange | null = null
    if (typeof rangeText !== 'string')
      issues.push({ path: 'partition_key_range', message: 'required string' })
    else {
      const parsed = parseKeyRange(rangeText, this.#base.spec)
      if (typeof parsed === 'string') issues.push({ path: 'partition_key_range', message: parsed })
      else range = parsed
    }
    const target = b.target_backend
    if (typeof target !== 'string')
      issues.push({ path: 'target_backend', message: 'required string (a shard name)' })
    else if (!this.#base.shards.includes(target)) {
      issues.push({
        path: 'target_backend',
        message: `unknown shard '${target}' (shards: ${this.#base.shards.join(', ')})`,
      })
    }
    const ttl = b.ttl ?? null
    if (ttl !== null && !(typeof ttl === 'number' && Number.isInteger(ttl) && ttl > 0 && ttl <= 31_536_000)) {
      issues.push({
        path: 'ttl',
        message: 'seconds: a whole number from 1 to 31536000 (a year), or null for no expiry',
      })
    }
    const force = b.force ?? false
    if (typeof force !== 'boolean') issues.push({ path: 'force', message: 'true or false' })
    if (issues.length > 0 || range === null) return { ok: false, issues }
    const entry = { partition_key_range: (rangeText as string).trim(), target_backend: target as string }
    const overlay: Overlay = { n: 0, entry, range, version: 0, createdAt: 0, ttl: null, expiresAt: null }
    let map: ShardMap
    try {
      map = this.#build(this.#base, [...this.#overlays, overlay])
    } catch (err) {
      return { ok: false, issues: (err as { issues: ShardMapIssue[] }).issues }
    }
    return {
      ok: true,
      proposal: {
        entry,
        range,
        ttl: ttl as number | null,
        force: force as boolean,
        map,
        owners: this.owners(range),
        baseVersion: this.#version,
      },
    }
  }

  /** Who owns a range in the map in force, piece by piece. */
  owners(range: ParsedRange): RangeOwner[] {
    const spec = this.#base.spec
    if (range.kind === 'span') {
      const out: RangeOwner[] = []
      for (const p of this.#pieces(this.#overlays)) {
        if (p.hi < range.lo || p.lo > range.hi) continue
        const lo = p.lo > range.lo ? p.lo : range.lo
        const hi = p.hi < range.hi ? p.hi : range.hi
        out.push({ shard: p.target, range: { kind: 'span', lo, hi }, text: spanText(lo, hi, spec) })
      }
      return out
    }
    const { values, dflt } = this.#listed(this.#overlays)
    if (range.kind === 'default') {
      return dflt === null ? [] : [{ shard: dflt, range, text: '*' }]
    }
    const by = new Map<string, ShardKeyValue[]>()
    for (const v of range.values) {
      const shard = values.get(String(v))?.target ?? dflt
      if (shard === null) continue
      by.set(shard, [...(by.get(shard) ?? []), v])
    }
    return [...by].map(([shard, vs]) => ({
      shard,
      range: { kind: 'values', values: vs },
      text: vs.map(String).join(','),
    }))
  }

  /**
   * Applies a checked proposal: a new version, the new map, listeners told.
   * @throws Error when the map changed since the proposal was checked (check again)
   */
  apply(p: RoutingMapProposal): { id: string; version: number; map: ShardMap } {
    if (p.baseVersion !== this.#version) {
      throw new Error(
        `the routing map moved from version ${p.baseVersion} to ${this.#version} since the entry was checked`,
      )
    }
    const now = this.#now()
    const n = this.#next++
    const version = this.#version + 1
    this.#overlays.push({
      n,
      entry: p.entry,
      range: p.range,
      version,
      createdAt: now,
      ttl: p.ttl,
      expiresAt: p.ttl === null ? null : now + p.ttl * 1000,
    })
    this.#commit(p.map, version, 'api')
    return { id: `api:${n}`, version, map: p.map }
  }

  /**
   * Removes an API entry by id: its range returns to the entries below it.
   * @returns the new version, `'config'` for a config entry (change those in the config), or null for an unknown id
   */
  remove(id: string): { version: number; entry: RoutingMapEntryView } | 'config' | null {
    if (/^config:\d+$/.test(id) && Number(id.slice(7)) < this.#base.entries.length) return 'config'
    const m = /^api:(\d+)$/.exec(id)
    const i = m ? this.#overlays.findIndex((o) => o.n === Number(m[1])) : -1
    if (i < 0) return null
    const entry = this.entries().find((e) => e.id === id)!
    const rest = this.#overlays.filter((_, j) => j !== i)
    this.#overlays = rest
    this.#commit(this.#build(this.#base, rest), this.#version + 1, 'delete')
    return { version: this.#version, entry }
  }

  /** When the next API entry expires (clock ms), or null. */
  nextExpiry(): number | null {
    let next: number | null = null
    for (const o of this.#overlays)
      if (o.expiresAt !== null && (next === null || o.expiresAt < next)) next = o.expiresAt
    return next
  }

  /** Drops the API entries whose ttl is up; returns their ids (a new version when any). */
  expire(): string[] {
    const now = this.#now()
    const gone = this.#overlays.filter((o) => o.expiresAt !== null && o.expiresAt <= now)
    if (gone.length === 0) return []
    this.#overlays = this.#overlays.filter((o) => !gone.includes(o))
    this.#commit(this.#build(this.#base, this.#overlays), this.#version + 1, 'expired')
    return gone.map((o) => `api:${o.n}`)
  }

  /**
   * A config reload: the new config's map becomes the base; API entries stay laid over it (an entry
   * whose range or shard the new config no longer has is dropped, and so are all of them when the
   * method or bucket count changed: their ranges meant something else). The version goes up only
   * when the map in force changed.
   * @returns the ids dropped, with why
   * @throws Error with `issues` when the new base map is not valid (the running map stays)
   */
  reloadConfig(base: RoutingMapBase): { dropped: { id: string; reason: string }[]; changed: boolean } {
    const dropped: { id: string; reason: string }[] = []
    const sameSpace =
      base.spec.method === this.#base.spec.method &&
      base.spec.buckets === this.#base.spec.buckets &&
      base.spec.keyType === this.#base.spec.keyType
    const kept: Overlay[] = []
    for (const o of this.#overlays) {
      const id = `api:${o.n}`
      if (!sameSpace) dropped.push({ id, reason: 'sharding.method, buckets or key type changed' })
      else if (!base.shards.includes(o.entry.target_backend))
        dropped.push({ id, reason: `shard ${o.entry.target_backend} is no longer configured` })
      else kept.push(o)
    }
    const map = this.#build(base, kept)
    const before = JSON.stringify(this.#map.entries)
    this.#base = base
    this.#overlays = kept
    const changed = JSON.stringify(map.entries) !== before
    if (changed) {
      this.#baseVersion = this.#version + 1
      this.#commit(map, this.#version + 1, 'config')
    } else this.#map = map
    return { dropped, changed }
  }

  #commit(map: ShardMap, version: number, reason: RoutingMapChangeReason): void {
    this.#map = map
    this.#version = version
    for (const l of this.#listeners) l(map, version, reason)
  }

  /** The span pieces (hash, range) of the base with the overlays laid over it in order. */
  #pieces(overlays: readonly Overlay[], base: RoutingMapBase = this.#base): Piece[] {
    let pieces: Piece[] = []
    for (const e of base.entries) {
      const r = parseKeyRange(e.partition_key_range, base.spec)
      if (typeof r !== 'string' && r.kind === 'span') pieces = layOver(pieces, r.lo, r.hi, e.target_backend)
    }
    for (const o of overlays)
      if (o.range.kind === 'span') pieces = layOver(pieces, o.range.lo, o.range.hi, o.entry.target_backend)
    return merged(pieces)
  }

  /** The listed values (list maps) with the overlays laid over them, and the default shard. */
  #listed(
    overlays: readonly Overlay[],
    base: RoutingMapBase = this.#base,
  ): { values: Map<string, { v: ShardKeyValue; target: string }>; dflt: string | null } {
    const values = new Map<string, { v: ShardKeyValue; target: string }>()
    let dflt: string | null = null
    const put = (r: ParsedRange, target: string) => {
      if (r.kind === 'default') dflt = target
      else if (r.kind === 'values') for (const v of r.values) values.set(String(v), { v, target })
    }
    for (const e of base.entries) {
      const r = parseKeyRange(e.partition_key_range, base.spec)
      if (typeof r !== 'string') put(r, e.target_backend)
    }
    for (const o of overlays) put(o.range, o.entry.target_backend)
    return { values, dflt }
  }

  /** The effective entries of base + overlays as a validated map (throws an Error with `issues` when invalid). */
  #build(base: RoutingMapBase, overlays: readonly Overlay[]): ShardMap {
    let entries: ShardMapEntry[]
    if (base.spec.method === 'list') {
      const { values, dflt } = this.#listed(overlays, base)
      const by = new Map<string, string[]>()
      for (const { v, target } of values.values()) by.set(target, [...(by.get(target) ?? []), String(v)])
      entries = [...by].map(([target, vs]) => ({ partition_key_range: vs.join(','), target_backend: target }))
      if (dflt !== null) entries.push({ partition_key_range: '*', target_backend: dflt })
    } else {
      entries = this.#pieces(overlays, base).map((p) => ({
        partition_key_range: spanText(p.lo, p.hi, base.spec),
        target_backend: p.target,
      }))
    }
    const { map, issues } = ShardMap.build(base.spec, entries, base.shards, (i) => `routing map entry ${i}`)
    if (!map)
      throw Object.assign(new Error(issues.map((i) => `${i.path}: ${i.message}`).join('; ')), { issues })
    return map
  }
}
