// GTID positions of MariaDB (`domain-server-seq,...`) and MySQL (`uuid:1-5:7,...`): parsing and coverage.

/**
 * A parsed GTID position. MariaDB: the highest sequence number per replication domain. MySQL: the
 * executed intervals per source UUID.
 */
export type GtidSet =
  | { readonly flavor: 'mariadb'; readonly domains: ReadonlyMap<number, bigint> }
  | {
      readonly flavor: 'mysql'
      readonly sources: ReadonlyMap<string, readonly (readonly [bigint, bigint])[]>
    }

const MARIADB_GTID = /^(\d+)-(\d+)-(\d+)$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const INTERVAL = /^(\d+)(?:-(\d+))?$/

/**
 * Parses a GTID position as either engine prints it; null when the text is neither (a bad token from a
 * header or comment is routine input: the read then goes to the primary). An empty string is the empty
 * position (nothing applied yet).
 *
 * @example
 * parseGtid('0-1-42,1-2-7')  // MariaDB: domain 0 up to 42, domain 1 up to 7
 * parseGtid('3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7') // MySQL
 */
export function parseGtid(text: string): GtidSet | null {
  const t = text.replace(/\s+/g, '')
  if (t === '') return { flavor: 'mariadb', domains: new Map() }
  const parts = t.split(',')
  if (parts.every((p) => MARIADB_GTID.test(p))) {
    const domains = new Map<number, bigint>()
    for (const p of parts) {
      const [, d, , seq] = MARIADB_GTID.exec(p)!
      const domain = Number(d)
      const n = BigInt(seq!)
      if ((domains.get(domain) ?? -1n) < n) domains.set(domain, n)
    }
    return { flavor: 'mariadb', domains }
  }
  const sources = new Map<string, [bigint, bigint][]>()
  for (const p of parts) {
    const [uuid, ...ranges] = p.split(':')
    if (!uuid || !UUID.test(uuid) || ranges.length === 0) return null
    const list = sources.get(uuid.toLowerCase()) ?? []
    for (const r of ranges) {
      const m = INTERVAL.exec(r)
      if (!m) return null
      const lo = BigInt(m[1]!)
      const hi = m[2] === undefined ? lo : BigInt(m[2])
      if (hi < lo) return null
      list.push([lo, hi])
    }
    sources.set(uuid.toLowerCase(), list)
  }
  return { flavor: 'mysql', sources }
}

/**
 * True when `position` (a replica's applied GTIDs) covers every transaction of `token`. MariaDB: per
 * domain, the position's sequence number is at least the token's. MySQL: every token interval lies
 * inside the position's intervals. Positions of different flavors never cover each other.
 *
 * @example
 * gtidCovers(parseGtid('0-1-50')!, parseGtid('0-1-42')!) // true
 */
export function gtidCovers(position: GtidSet, token: GtidSet): boolean {
  if (position.flavor === 'mariadb' && token.flavor === 'mariadb') {
    for (const [domain, seq] of token.domains) {
      const have = position.domains.get(domain)
      if (have === undefined || have < seq) return false
    }
    return true
  }
  if (position.flavor === 'mysql' && token.flavor === 'mysql') {
    for (const [uuid, wanted] of token.sources) {
      const have = position.sources.get(uuid)
      if (!have) return false
      for (const [lo, hi] of wanted) {
        if (!covered(have, lo, hi)) return false
      }
    }
    return true
  }
  return false
}

/** Whether the union of `intervals` covers [lo, hi]. */
function covered(intervals: readonly (readonly [bigint, bigint])[], lo: bigint, hi: bigint): boolean {
  const sorted = [...intervals].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
  let next = lo
  for (const [a, b] of sorted) {
    if (a > next) break
    if (b >= next) next = b + 1n
    if (next > hi) return true
  }
  return next > hi
}

/**
 * The later of two tokens as text: the one that covers the other, or both joined when neither does
 * (MariaDB domains, MySQL sources); an unparsable one loses.
 *
 * @example
 * laterGtid('0-1-5', '0-1-9') // '0-1-9'
 */
export function laterGtid(a: string | undefined, b: string | undefined): string | undefined {
  if (!a) return b
  if (!b) return a
  const pa = parseGtid(a)
  const pb = parseGtid(b)
  if (pa === null) return b
  if (pb === null) return a
  if (gtidCovers(pa, pb)) return a
  if (gtidCovers(pb, pa)) return b
  if (pa.flavor === 'mariadb' && pb.flavor === 'mariadb') {
    const merged = new Map(pa.domains)
    for (const [d, s] of pb.domains) if ((merged.get(d) ?? -1n) < s) merged.set(d, s)
    // the server id part does not matter for coverage; keep the one the token came with
    const server = (text: string, d: number) => new RegExp(`(?:^|,)${d}-(\\d+)-`).exec(text)?.[1] ?? '0'
    return [...merged]
      .map(([d, s]) => `${d}-${pa.domains.get(d) === s ? server(a, d) : server(b, d)}-${s}`)
      .join(',')
  }
  return `${a},${b}`
}
