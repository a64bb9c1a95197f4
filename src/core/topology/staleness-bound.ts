// The staleness bound of a replica: an upper bound (never an estimate) on how stale a read it serves now can be,
// proven from WAL positions and freshet's own clock alone.
//
// The proof. A primary position sample is (sentAt, lsn): freshet sent the probe at `sentAt` (its clock)
// and the primary answered pg_current_wal_lsn() = lsn at some moment m >= sentAt. A write acknowledged
// before m has its commit record in the WAL written by then, so at a position <= lsn. A replica that
// reported a replay position >= lsn has therefore replayed every write acknowledged before m, and replay
// only moves forward: from then on, the first write it may miss was acknowledged after m >= sentAt, so a
// read it serves at `now` is at most `now - sentAt` stale. The newest such `sentAt` is the replica's
// `freshAsOf`; its bound is `now - freshAsOf`. Equivalently: the lag of its last reading (counted from
// the reading's probe send time) plus that reading's age. Both ends are on freshet's clock: nothing is
// assumed about the clocks of the database machines. A probe that hangs proves nothing new, so the
// bound grows with it and the replica leaves every tier it can no longer prove, at once.

import { parseLsn } from '../lsn.js'

/**
 * How positions compare: PostgreSQL LSNs (a total order) by default, MySQL/MariaDB GTID sets (a set
 * grows by inclusion) for freshet/mysql. `covers(a, b)`: position `a` holds everything `b` holds.
 */
export interface PositionOrder<P = unknown> {
  parse(text: string): P | null
  covers(a: P, b: P): boolean
}

/** PostgreSQL: WAL positions as bigints. */
export const LSN_POSITIONS: PositionOrder<bigint> = Object.freeze({
  parse: parseLsn,
  covers: (a: bigint, b: bigint) => a >= b,
})

/** One sample of the primary's position, timed by when its probe was sent. */
export interface PositionSample<P = unknown> {
  /** Epoch ms (freshet's clock) when the probe that read `position` was sent. */
  readonly sentAt: number
  /** The primary's position (pg_current_wal_lsn, or the executed GTID set) the probe read. */
  readonly position: P
}

/** How many primary samples are kept: at 4 to 12 samples a second, several minutes of history. */
const MAX_SAMPLES = 4096

interface ReplicaProof<P> {
  /** The furthest replay position the replica reported (replay never goes back, unless the node is replaced). */
  replayed: P
  freshAsOf: number | null
}

/**
 * Keeps the primary's recent position samples and, per replica, the newest time as of which the replica
 * provably holds every acknowledged write. Pure: the caller feeds readings and asks with its own `now`.
 *
 * @example
 * const proof = new FreshnessProof()
 * proof.primarySample(1000, 0x3000n)     // probe sent at t=1000 read primary LSN 0/3000
 * proof.replicaReading('replica_1', 0x3000n)
 * proof.freshAsOf('replica_1')           // 1000
 * stalenessBoundMs(proof.freshAsOf('replica_1'), 1250) // 250
 */
export class FreshnessProof<P = bigint> {
  /** Oldest first; each position covers the one before (a primary's position never goes back). */
  readonly #samples: PositionSample<P>[] = []
  readonly #replicas = new Map<string, ReplicaProof<P>>()
  readonly #order: PositionOrder<P>

  constructor(order: PositionOrder<P> = LSN_POSITIONS as unknown as PositionOrder<P>) {
    this.#order = order
  }

  /** Parses a position's text with this proof's order (null when it is not one). */
  parse(text: string): P | null {
    return this.#order.parse(text)
  }

  /** Records a primary position sample; every replica whose last replay position reached it is proven fresh as of `sentAt`. */
  primarySample(sentAt: number, position: P): void {
    const s = this.#samples
    const { covers } = this.#order
    const last = s.at(-1)
    if (last !== undefined && (sentAt < last.sentAt || !covers(position, last.position))) {
      // out of order or going back: only possible across a primary change the caller did not report;
      // start over rather than prove anything from a mixed history
      s.length = 0
    }
    const prev = s.at(-1)
    // the same position sampled later proves strictly more: replace rather than append (idle primary)
    if (prev !== undefined && covers(prev.position, position)) s[s.length - 1] = { sentAt, position }
    else s.push({ sentAt, position })
    if (s.length > MAX_SAMPLES) s.splice(0, s.length - MAX_SAMPLES)
    for (const r of this.#replicas.values()) {
      if (covers(r.replayed, position) && (r.freshAsOf === null || r.freshAsOf < sentAt)) r.freshAsOf = sentAt
    }
  }

  /** Records a replica's reported replay position (null when the reading had none: nothing changes). */
  replicaReading(name: string, replayed: P | null): void {
    if (replayed === null) return
    let r = this.#replicas.get(name)
    if (r === undefined || !this.#order.covers(replayed, r.replayed)) {
      // new, or gone backwards (re-cloned, another server): nothing proven before carries over
      r = { replayed, freshAsOf: null }
      this.#replicas.set(name, r)
    }
    r.replayed = replayed
    const proven = this.provenAt(replayed)
    if (proven !== null && (r.freshAsOf === null || proven > r.freshAsOf)) r.freshAsOf = proven
  }

  /** The newest sample time whose position `replayed` has reached, or null when no sample is that old. */
  provenAt(replayed: P): number | null {
    const s = this.#samples
    const { covers } = this.#order
    // newest first: positions only grow, so the first one covered is the newest one covered
    for (let i = s.length - 1; i >= 0; i--) if (covers(replayed, s[i]!.position)) return s[i]!.sentAt
    return null
  }

  /** Epoch ms as of which `name` provably holds every acknowledged write, or null when nothing is proven. */
  freshAsOf(name: string): number | null {
    return this.#replicas.get(name)?.freshAsOf ?? null
  }

  /** Forgets a replica (removed, or another server under its name). */
  forget(name: string): void {
    this.#replicas.delete(name)
  }

  /**
   * A new primary: its positions are not comparable with the old one's samples, so those go. What the
   * replicas were proven to hold stays true (replay does not go back).
   */
  primaryChanged(): void {
    this.#samples.length = 0
  }
}

/**
 * The staleness bound at `now` (ms) of a node proven fresh as of `freshAsOf`, or null when unknown.
 *
 * @example
 * stalenessBoundMs(1000, 1180) // 180
 * stalenessBoundMs(null, 1180) // null
 */
export function stalenessBoundMs(freshAsOf: number | null, now: number): number | null {
  return freshAsOf === null ? null : Math.max(0, now - freshAsOf)
}
