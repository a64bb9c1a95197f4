// A shard key value in canonical form for its column type, and its hash-partition bucket.

import {
  HASH_PARTITION_SEED,
  hashCombine64,
  hashInt8Extended,
  hashTextExtended,
  hashUuidExtended,
  int8PartitionBucket,
} from './pg-hash.js'

/**
 * The key column's type family. `integer` covers smallint, integer and bigint (PostgreSQL hashes them
 * alike), `text` covers text, varchar and char-free text types under a deterministic collation, `uuid` is uuid.
 */
export type ShardKeyType = 'integer' | 'text' | 'uuid'

/** A key value after {@link normalizeShardKey}: bigint for integer keys, string for text and uuid (32 lower-case hex). */
export type ShardKeyValue = bigint | string

const INT8_MIN = -(1n << 63n)
const INT8_MAX = (1n << 63n) - 1n
const UUID = /^\{?([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})\}?$/i

/**
 * Canonical form of a raw key (a literal from SQL, a bound parameter, a hint or a context value), or
 * null when the value cannot be a key of that type (PostgreSQL would reject it or it matches no row).
 * @example
 * normalizeShardKey(' 42', 'integer') // 42n
 * normalizeShardKey('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'uuid') // 'a0eebc999c0b4ef8bb6d6bb9bd380a11'
 */
export function normalizeShardKey(raw: unknown, type: ShardKeyType): ShardKeyValue | null {
  if (type === 'integer') {
    let v: bigint
    if (typeof raw === 'bigint') v = raw
    else if (typeof raw === 'number') {
      if (!Number.isSafeInteger(raw)) return null
      v = BigInt(raw)
    } else if (typeof raw === 'string' && /^\s*[+-]?\d+\s*$/.test(raw)) v = BigInt(raw.trim())
    else return null
    return v >= INT8_MIN && v <= INT8_MAX ? v : null
  }
  if (type === 'uuid') {
    if (typeof raw !== 'string') return null
    const m = UUID.exec(raw.trim())
    return m ? m.slice(1).join('').toLowerCase() : null
  }
  if (typeof raw === 'string') return raw
  if (typeof raw === 'number' || typeof raw === 'bigint') return String(raw)
  return null
}

/**
 * The value PostgreSQL's hash partitioning computes for a one-column key:
 * `hash_combine64(0, <type>_hash_extended(key, HASH_PARTITION_SEED))`; a NULL key hashes to 0.
 * `PARTITION BY HASH (key)` puts the row in the partition whose REMAINDER is this value modulo its MODULUS.
 */
export function partitionHash(key: ShardKeyValue | null, type: ShardKeyType): bigint {
  if (key === null) return 0n
  let h: bigint
  if (type === 'integer') h = hashInt8Extended(key as bigint, HASH_PARTITION_SEED)
  else if (type === 'uuid') h = hashUuidExtended(key as string, HASH_PARTITION_SEED)
  else h = hashTextExtended(key as string, HASH_PARTITION_SEED)
  return hashCombine64(0n, h)
}

/**
 * The hash bucket of a key: {@link partitionHash} modulo `buckets` (unsigned). With `buckets` equal to a
 * hash-partitioned table's MODULUS, the bucket is the REMAINDER of the partition that holds the row.
 */
export function hashBucket(key: ShardKeyValue | null, type: ShardKeyType, buckets: number): number {
  if (type === 'integer' && key !== null) return int8PartitionBucket(key as bigint, buckets)
  return Number(partitionHash(key, type) % BigInt(buckets))
}

/** A key for messages: integers as decimal, strings quoted. */
export function formatShardKey(key: ShardKeyValue | null): string {
  if (key === null) return 'NULL'
  return typeof key === 'bigint' ? key.toString() : `'${key}'`
}
