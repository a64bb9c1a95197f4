// The routing map: which shard owns which part of the key space (hash buckets, integer key ranges or
// listed values), validated to cover that space exactly once, with O(log n) lookup.

import { hashBucket, normalizeShardKey, type ShardKeyType, type ShardKeyValue } from './shard-key.js'

/** How keys are placed: by hash bucket, by integer key range, or by listed values. */
export type ShardMethod = 'hash' | 'range' | 'list'

/** One entry as written in `sharding.map` or posted to `/api/v1/routing-map`. */
export interface ShardMapEntry {
  /** hash: bucket numbers `"0-511"`; range: key values `"min-999"`, `"1000-1999"`; list: `"DE,FR"` or `"*"` (the rest). */
  readonly partition_key_range: string
  readonly target_backend: string
}

/** A config problem found while building a map, with the key path of the entry it concerns. */
export interface ShardMapIssue {
  readonly path: string
  readonly message: string
}

/** The key space of a map. */
export interface ShardMapSpec {
  readonly method: ShardMethod
  /** hash only: the number of buckets (the key's partition hash modulo this). */
  readonly buckets: number
  /** Type of the key values in the map (range: always integer; list: the tables' key type). */
  readonly keyType: ShardKeyType
}

/** A parsed range: inclusive bounds (hash: buckets, range: int8 keys), or listed values (list). */
export type ParsedRange =
  | { readonly kind: 'span'; readonly lo: bigint; readonly hi: bigint }
  | { readonly kind: 'values'; readonly values: readonly ShardKeyValue[] }
  | { readonly kind: 'default' }

export const INT8_MIN = -(1n << 63n)
export const INT8_MAX = (1n << 63n) - 1n
const SPAN = /^\s*(min|[+-]?\d+)\s*(?:-\s*(max|[+-]?\d+)\s*)?$/i

/**
 * Parses one `partition_key_range` for a map's method; returns an error message instead when it is not valid.
 * @example
 * parseKeyRange('0-511', { method: 'hash', buckets: 1024, keyType: 'integer' }) // { kind: 'span', lo: 0n, hi: 511n }
 */
export function parseKeyRange(text: string, spec: ShardMapSpec): ParsedRange | string {
  if (typeof text !== 'string' || text.trim() === '') return 'must be a non-empty string'
  if (spec.method === 'list') {
    if (text.trim() === '*') return { kind: 'default' }
    const values: ShardKeyValue[] = []
    for (const part of text.split(',')) {
      const v = normalizeShardKey(part.trim(), spec.keyType)
      if (v === null || part.trim() === '') return `'${part.trim()}' is not a ${spec.keyType} key value`
      values.push(v)
    }
    return { kind: 'values', values }
  }
  const m = SPAN.exec(text)
  if (!m) {
    return spec.method === 'hash'
      ? `'${text}' is not a bucket range like "0-511" (inclusive)`
      : `'${text}' is not a key range like "1000-1999", "min-999" or "2000-max" (inclusive)`
  }
  const lo = m[1]!.toLowerCase() === 'min' ? INT8_MIN : BigInt(m[1]!)
  const hiText = m[2] ?? m[1]!
  const hi =
    hiText.toLowerCase() === 'max' ? INT8_MAX : hiText.toLowerCase() === 'min' ? INT8_MIN : BigInt(hiText)
  if (spec.method === 'hash') {
    if (/min|max/i.test(text)) return 'hash ranges are bucket numbers; min/max are for method range'
    const top = BigInt(spec.buckets - 1)
    if (lo < 0n || hi > top) return `buckets run from 0 to ${top}; '${text}' is outside`
  } else if (lo < INT8_MIN || hi > INT8_MAX) return `'${text}' is outside the bigint range`
  if (lo > hi) return `'${text}' runs backwards (the low end comes first)`
  return { kind: 'span', lo, hi }
}

interface Segment {
  lo: bigint
  hi: bigint
  target: string
  entry: number
}

function describe(entries: readonly ShardMapEntry[], i: number, label: (i: number) => string): string {
  const e = entries[i]!
  return `${label(i)} ("${e.partition_key_range}" -> ${e.target_backend})`
}

function span(lo: bigint, hi: bigint): string {
  const f = (v: bigint) => (v === INT8_MIN ? 'min' : v === INT8_MAX ? 'max' : v.toString())
  return lo === hi ? f(lo) : `${f(lo)}-${f(hi)}`
}

/**
 * A validated, immutable routing map. Build with {@link ShardMap.build}, which reports every gap, overlap
 * and unknown shard with the key path of the entry; lookups never throw.
 *
 * @example
 * const { map } = ShardMap.build({ method: 'hash', buckets: 1024, keyType: 'integer' },
 *   [{ partition_key_range: '0-511', target_backend: 'shard_0' }, { partition_key_range: '512-1023', target_backend: 'shard_1' }],
 *   ['shard_0', 'shard_1'])
 * map?.shardOf(42n, 'integer') // 'shard_0' or 'shard_1', as PARTITION BY HASH (MODULUS 1024) places 42
 */
export class ShardMap {
  readonly spec: ShardMapSpec
  readonly entries: readonly ShardMapEntry[]
  readonly #segments: readonly Segment[]
  readonly #values: ReadonlyMap<string, string>
  readonly #default: string | null

  private constructor(
    spec: ShardMapSpec,
    entries: readonly ShardMapEntry[],
    segments: Segment[],
    values: Map<string, string>,
    dflt: string | null,
  ) {
    this.spec = spec
    this.entries = entries
    this.#segments = segments
    this.#values = values
    this.#default = dflt
  }

  /**
   * Validates entries against the key space and the shard names. Issues name the entries by path
   * (`label(i)`, default `sharding.map[i]`): unparsable ranges, unknown targets, overlaps, and gaps.
   */
  static build(
    spec: ShardMapSpec,
    entries: readonly ShardMapEntry[],
    shardNames: readonly string[],
    label: (i: number) => string = (i) => `sharding.map[${i}]`,
  ): { map: ShardMap | null; issues: ShardMapIssue[] } {
    const issues: ShardMapIssue[] = []
    const known = new Set(shardNames)
    const segments: Segment[] = []
    const values = new Map<string, string>()
    const valueOwner = new Map<string, number>()
    let dflt: string | null = null
    let dfltEntry = -1
    entries.forEach((e, i) => {
      if (!known.has(e.target_backend)) {
        issues.push({
          path: `${label(i)}.target_backend`,
          message: `unknown shard '${e.target_backend}' (shards: ${shardNames.join(', ') || 'none'})`,
        })
      }
      const parsed = parseKeyRange(e.partition_key_range, spec)
      if (typeof parsed === 'string') {
        issues.push({ path: `${label(i)}.partition_key_range`, message: parsed })
        return
      }
      if (parsed.kind === 'span')
        segments.push({ lo: parsed.lo, hi: parsed.hi, target: e.target_backend, entry: i })
      else if (parsed.kind === 'default') {
        if (dfltEntry >= 0) {
          issues.push({
            path: `${label(i)}.partition_key_range`,
            message: `a second default entry; ${describe(entries, dfltEntry, label)} is already the default`,
          })
        }
        dflt = e.target_backend
        dfltEntry = i
      } else {
        for (const v of parsed.values) {
          const k = String(v)
          const owner = valueOwner.get(k)
          if (owner !== undefined) {
            issues.push({
              path: `${label(i)}.partition_key_range`,
              message: `value ${k} overlaps ${describe(entries, owner, label)}`,
            })
          } else {
            valueOwner.set(k, i)
            values.set(k, e.target_backend)
          }
        }
      }
    })
    if (spec.method !== 'list') {
      segments.sort((x, y) => (x.lo < y.lo ? -1 : x.lo > y.lo ? 1 : x.entry - y.entry))
      const first = spec.method === 'hash' ? 0n : INT8_MIN
      const last = spec.method === 'hash' ? BigInt(spec.buckets - 1) : INT8_MAX
      const what = spec.method === 'hash' ? 'buckets' : 'keys'
      let next = first
      let prev: Segment | null = null
      for (const s of segments) {
        if (s.lo > next) {
          const between = prev ? `between ${describe(entries, prev.entry, label)} and ` : 'before '
          issues.push({
            path: 'sharding.map',
            message: `${what} ${span(next, s.lo - 1n)} belong to no entry (gap ${between}${describe(entries, s.entry, label)})`,
          })
        } else if (prev && s.lo < next) {
          issues.push({
            path: `${label(s.entry)}.partition_key_range`,
            message: `${what} ${span(s.lo, s.hi < next - 1n ? s.hi : next - 1n)} overlap ${describe(entries, prev.entry, label)}`,
          })
        }
        if (s.hi + 1n > next) {
          next = s.hi + 1n
          prev = s
        }
      }
      if (segments.length === 0 && issues.length === 0) {
        issues.push({
          path: 'sharding.map',
          message: `no entries: ${what} ${span(first, last)} belong to no shard`,
        })
      } else if (next <= last && segments.length > 0) {
        issues.push({
          path: 'sharding.map',
          message: `${what} ${span(next, last)} belong to no entry (gap after ${describe(entries, prev!.entry, label)})`,
        })
      }
    } else if (entries.length === 0) {
      issues.push({ path: 'sharding.map', message: 'no entries: every key value belongs to no shard' })
    }
    if (issues.length > 0) return { map: null, issues }
    return { map: new ShardMap(spec, entries, segments, values, dflt), issues }
  }

  /** The shard that owns a normalised key of the given type, or null (a list map without that value and no `*`). */
  shardOf(key: ShardKeyValue | null, type: ShardKeyType): string | null {
    if (this.spec.method === 'list') {
      return (key === null ? null : this.#values.get(String(key))) ?? this.#default
    }
    if (this.spec.method === 'hash')
      return this.shardOfPoint(BigInt(hashBucket(key, type, this.spec.buckets)))
    if (key === null || typeof key !== 'bigint') return null
    return this.shardOfPoint(key)
  }

  /** The shard that owns a point of the map's own space (hash: a bucket number; range: a key). */
  shardOfPoint(point: bigint): string | null {
    const segs = this.#segments
    let lo = 0
    let hi = segs.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const s = segs[mid]!
      if (point < s.lo) hi = mid - 1
      else if (point > s.hi) lo = mid + 1
      else return s.target
    }
    return null
  }

  /** The map's own point for a key: its bucket (hash) or the key itself (range); null for list maps. */
  pointOf(key: ShardKeyValue | null, type: ShardKeyType): bigint | null {
    if (this.spec.method === 'hash') return BigInt(hashBucket(key, type, this.spec.buckets))
    if (this.spec.method === 'range' && typeof key === 'bigint') return key
    return null
  }
}
