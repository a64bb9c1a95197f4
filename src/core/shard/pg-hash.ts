// PostgreSQL's hash-partitioning hash, bit for bit: hash_bytes_extended (Bob Jenkins' lookup3 as
// src/common/hashfn.c has it), the per-type extended hash support functions, hash_combine64 and
// HASH_PARTITION_SEED, so a key lands in the same bucket here as in PARTITION BY HASH (and PgDog).

/** `HASH_PARTITION_SEED` from src/include/catalog/partition.h: the seed every partition key is hashed with. */
export const HASH_PARTITION_SEED = 0x7a5b22367996dcfdn

const MASK64 = (1n << 64n) - 1n
// hash_combine64's constant: the 64-bit golden ratio
const GOLDEN64 = 0x49a0f4dd15e5a8e3n

function rot(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0
}

/** The three-word state of lookup3; every operation keeps each word an unsigned 32-bit value. */
interface State {
  a: number
  b: number
  c: number
}

// mix(a,b,c) from hashfn.c
function mix(s: State): void {
  let { a, b, c } = s
  a = (a - c) >>> 0
  a = (a ^ rot(c, 4)) >>> 0
  c = (c + b) >>> 0
  b = (b - a) >>> 0
  b = (b ^ rot(a, 6)) >>> 0
  a = (a + c) >>> 0
  c = (c - b) >>> 0
  c = (c ^ rot(b, 8)) >>> 0
  b = (b + a) >>> 0
  a = (a - c) >>> 0
  a = (a ^ rot(c, 16)) >>> 0
  c = (c + b) >>> 0
  b = (b - a) >>> 0
  b = (b ^ rot(a, 19)) >>> 0
  a = (a + c) >>> 0
  c = (c - b) >>> 0
  c = (c ^ rot(b, 4)) >>> 0
  b = (b + a) >>> 0
  s.a = a
  s.b = b
  s.c = c
}

// final(a,b,c) from hashfn.c
function final(s: State): void {
  let { a, b, c } = s
  c = (c ^ b) >>> 0
  c = (c - rot(b, 14)) >>> 0
  a = (a ^ c) >>> 0
  a = (a - rot(c, 11)) >>> 0
  b = (b ^ a) >>> 0
  b = (b - rot(a, 25)) >>> 0
  c = (c ^ b) >>> 0
  c = (c - rot(b, 16)) >>> 0
  a = (a ^ c) >>> 0
  a = (a - rot(c, 4)) >>> 0
  b = (b ^ a) >>> 0
  b = (b - rot(a, 14)) >>> 0
  c = (c ^ b) >>> 0
  c = (c - rot(b, 24)) >>> 0
  s.a = a
  s.b = b
  s.c = c
}

function seeded(length: number, seed: bigint): State {
  const init = (0x9e3779b9 + length + 3923095) >>> 0
  const s: State = { a: init, b: init, c: init }
  if (seed !== 0n) {
    // the seed is hashed as a 12-byte chunk: high word, low word, four zero bytes
    s.a = (s.a + Number((seed >> 32n) & 0xffffffffn)) >>> 0
    s.b = (s.b + Number(seed & 0xffffffffn)) >>> 0
    mix(s)
  }
  return s
}

function result(s: State): bigint {
  return (BigInt(s.b) << 32n) | BigInt(s.c)
}

function word(k: Uint8Array, i: number): number {
  return (k[i]! | (k[i + 1]! << 8) | (k[i + 2]! << 16) | (k[i + 3]! << 24)) >>> 0
}

/**
 * `hash_bytes_extended(k, keylen, seed)` (hash_any_extended) on a little-endian server: the 64-bit
 * lookup3 hash of the bytes, as an unsigned bigint.
 */
export function hashBytesExtended(k: Uint8Array, seed: bigint): bigint {
  let len = k.length
  const s = seeded(len, seed)
  let i = 0
  while (len >= 12) {
    s.a = (s.a + word(k, i)) >>> 0
    s.b = (s.b + word(k, i + 4)) >>> 0
    s.c = (s.c + word(k, i + 8)) >>> 0
    mix(s)
    i += 12
    len -= 12
  }
  // the last 0..11 bytes; the lowest byte of c is left for the length (already in the initial state)
  if (len >= 9) {
    for (let j = len - 1; j >= 8; j--) s.c = (s.c + (k[i + j]! << ((j - 7) * 8))) >>> 0
  }
  if (len >= 5) {
    for (let j = Math.min(len, 8) - 1; j >= 4; j--) s.b = (s.b + (k[i + j]! << ((j - 4) * 8))) >>> 0
  }
  for (let j = Math.min(len, 4) - 1; j >= 0; j--) s.a = (s.a + (k[i + j]! << (j * 8))) >>> 0
  final(s)
  return result(s)
}

// the seeded state of a 4-byte key under HASH_PARTITION_SEED never changes: computed once
let partitionSeed4: State | null = null
const scratch: State = { a: 0, b: 0, c: 0 }

/** `hash_bytes_uint32_extended(k, seed)`: the 64-bit hash of one 32-bit word. */
export function hashUint32Extended(k: number, seed: bigint): bigint {
  hashUint32Words(k, seed)
  return result(scratch)
}

/**
 * The same hash as two unsigned 32-bit words, without BigInt on the hot path: `hi` is the high word
 * (lookup3's b), `lo` the low word (c). Valid until the next call.
 */
export function hashUint32Words(k: number, seed: bigint): { readonly hi: number; readonly lo: number } {
  let init: State
  if (seed === HASH_PARTITION_SEED) init = partitionSeed4 ??= seeded(4, seed)
  else init = seeded(4, seed)
  scratch.a = (init.a + (k >>> 0)) >>> 0
  scratch.b = init.b
  scratch.c = init.c
  final(scratch)
  words.hi = scratch.b
  words.lo = scratch.c
  return words
}
const words = { hi: 0, lo: 0 }

/**
 * `hashint8extended` (also `hashint4extended` and `hashint2extended`: for any value that fits, an int2,
 * int4 and int8 hash alike, which is what lets PostgreSQL compare across the integer types).
 */
export function hashInt8Extended(value: bigint, seed: bigint): bigint {
  return hashUint32Extended(int8Word(value), seed)
}

/** hashint8extended's folding of an int8 into the one 32-bit word it hashes. */
export function int8Word(value: bigint): number {
  const v = BigInt.asIntN(64, value)
  if (v >= -0x80000000n && v <= 0x7fffffffn) return Number(v) >>> 0 // the high word is 0 or ~0: lo itself
  const lo = Number(v & 0xffffffffn)
  const hi = Number((v >> 32n) & 0xffffffffn)
  return (lo ^ (v >= 0n ? hi : ~hi)) >>> 0
}

const GOLDEN_HI = 0x49a0f4dd
const GOLDEN_LO = 0x15e5a8e3

/**
 * `hash_combine64(0, hashint8extended(value, HASH_PARTITION_SEED)) mod buckets` for an int8: the bucket of
 * an integer partition key, with 32-bit arithmetic where `buckets` is a power of two.
 */
export function int8PartitionBucket(value: bigint, buckets: number): number {
  const w = hashUint32Words(int8Word(value), HASH_PARTITION_SEED)
  const lo = w.lo + GOLDEN_LO
  const carry = lo > 0xffffffff ? 1 : 0
  const rowLo = lo >>> 0
  if ((buckets & (buckets - 1)) === 0 && buckets <= 0x80000000) return (rowLo & (buckets - 1)) >>> 0
  const rowHi = (w.hi + GOLDEN_HI + carry) >>> 0
  return Number(((BigInt(rowHi) << 32n) | BigInt(rowLo)) % BigInt(buckets))
}

const encoder = new TextEncoder()

/**
 * `hashtextextended` under a deterministic collation (the default, C, or any libc/ICU collation that is
 * deterministic): the hash of the UTF-8 bytes. A nondeterministic ICU collation hashes a sort key instead,
 * which freshet cannot reproduce.
 */
export function hashTextExtended(value: string, seed: bigint): bigint {
  return hashBytesExtended(encoder.encode(value), seed)
}

/** `uuid_hash_extended`: the hash of the 16 bytes. `value` is 32 hex digits (dashes already removed). */
export function hashUuidExtended(hex: string, seed: bigint): bigint {
  const bytes = new Uint8Array(16)
  for (let i = 0; i < 16; i++) bytes[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16)
  return hashBytesExtended(bytes, seed)
}

/** `hash_combine64(a, b)` from src/include/common/hashfn.h. */
export function hashCombine64(a: bigint, b: bigint): bigint {
  return (a ^ ((b + GOLDEN64 + ((a << 54n) & MASK64) + (a >> 7n)) & MASK64)) & MASK64
}
