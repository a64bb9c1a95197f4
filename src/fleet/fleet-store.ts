// Typed reads and writes of a fleet's records in etcd (layout in fleet-records.ts), each call under the
// configured deadline. The instance, the proposer, `config status` and the flag setter share it.

import type { Lease, Namespace } from 'etcd3'
import { type FleetEtcd, withDeadline } from './etcd-client.js'
import {
  type AckRecord,
  type CommittedRecord,
  type FlagsRecord,
  FleetKeys,
  type MemberRecord,
  type ProposalRecord,
  parseRecord,
} from './fleet-records.js'

/** A record with the etcd revision it was last written at (for compare-and-swap). */
export interface Revisioned<T> {
  readonly value: T
  /** The key's mod_revision; '0' when the key does not exist. */
  readonly revision: string
}

/**
 * The fleet's records over one etcd client.
 * @example
 * const store = new FleetStore(openFleetEtcd(config.fleet))
 * const committed = await store.committed()
 */
export class FleetStore {
  readonly etcd: FleetEtcd
  readonly #keys: Namespace

  constructor(etcd: FleetEtcd) {
    this.etcd = etcd
    this.#keys = etcd.keys
  }

  /** Live instances (their lease keys), sorted by id. */
  async members(): Promise<MemberRecord[]> {
    const all = await this.#all(FleetKeys.members, 'members')
    return all
      .map((kv) => parseRecord<MemberRecord>(kv.value))
      .filter((m): m is MemberRecord => m !== null)
      .sort((a, b) => a.instance.localeCompare(b.instance))
  }

  /** The committed version (null before the first commit), with its revision. */
  async committed(): Promise<Revisioned<CommittedRecord | null>> {
    return this.#one<CommittedRecord>(FleetKeys.committed, 'the committed version')
  }

  /** The fleet's flags (null when never set), with their revision. */
  async flags(): Promise<Revisioned<FlagsRecord | null>> {
    return this.#one<FlagsRecord>(FleetKeys.flags, 'the fleet flags')
  }

  /** Every retained proposal, oldest first (ids sort by version). */
  async proposals(): Promise<Revisioned<ProposalRecord>[]> {
    const all = await this.#all(FleetKeys.proposals, 'proposals')
    return all
      .map((kv) => ({ value: parseRecord<ProposalRecord>(kv.value), revision: kv.revision }))
      .filter((p): p is Revisioned<ProposalRecord> => p.value !== null)
      .sort((a, b) => a.value.id.localeCompare(b.value.id))
  }

  async acks(proposal: string): Promise<AckRecord[]> {
    const all = await this.#all(FleetKeys.acks(proposal), 'acknowledgements')
    return all.map((kv) => parseRecord<AckRecord>(kv.value)).filter((a): a is AckRecord => a !== null)
  }

  /** The proposed document of a proposal (null when it was cleaned up). */
  async document(proposal: string): Promise<unknown> {
    const text = await withDeadline(
      this.#keys.get(FleetKeys.document(proposal)).string(),
      this.#deadline(),
      'a config document',
    )
    return text === null ? null : (JSON.parse(text) as unknown)
  }

  async putAck(ack: AckRecord): Promise<void> {
    await withDeadline(
      this.#keys.put(FleetKeys.ack(ack.proposal, ack.instance)).value(JSON.stringify(ack)).exec(),
      this.#deadline(),
      'an acknowledgement',
    )
  }

  /** Writes a new proposal and its document in one transaction. */
  async createProposal(proposal: ProposalRecord, document: unknown): Promise<string> {
    const res = await withDeadline(
      this.#keys
        .if(FleetKeys.proposal(proposal.id), 'Create', '==', 0)
        .then(
          this.#keys.put(FleetKeys.proposal(proposal.id)).value(JSON.stringify(proposal)),
          this.#keys.put(FleetKeys.document(proposal.id)).value(JSON.stringify(document)),
        )
        .commit(),
      this.#deadline(),
      'a proposal',
    )
    if (!res.succeeded) throw new Error(`proposal ${proposal.id} exists already`)
    return res.header.revision
  }

  /**
   * The commit: one transaction that succeeds only if the committed version is still the one the
   * round started from (its revision) and the proposal is still pending (its revision). A racing
   * proposal that committed first changed the first; nothing else may change the second.
   */
  async commit(
    proposal: ProposalRecord,
    proposalRevision: string,
    baseRevision: string,
    record: CommittedRecord,
  ): Promise<boolean> {
    const res = await withDeadline(
      this.#keys
        .if(FleetKeys.committed, 'Mod', '==', baseRevision)
        .and(FleetKeys.proposal(proposal.id), 'Mod', '==', proposalRevision)
        .then(
          this.#keys.put(FleetKeys.committed).value(JSON.stringify(record)),
          this.#keys
            .put(FleetKeys.proposal(proposal.id))
            .value(JSON.stringify({ ...proposal, status: 'committed', reason: null })),
        )
        .commit(),
      this.#deadline(),
      'the commit',
    )
    return res.succeeded
  }

  /** Marks a pending proposal aborted (only if nobody changed it meanwhile). */
  async abort(proposal: ProposalRecord, proposalRevision: string, reason: string): Promise<void> {
    await withDeadline(
      this.#keys
        .if(FleetKeys.proposal(proposal.id), 'Mod', '==', proposalRevision)
        .then(
          this.#keys
            .put(FleetKeys.proposal(proposal.id))
            .value(JSON.stringify({ ...proposal, status: 'aborted', reason })),
        )
        .commit(),
      this.#deadline(),
      'an abort',
    )
  }

  /** Replaces the flags if they are still at `revision` ('0': not set yet); false when someone was first. */
  async swapFlags(revision: string, next: FlagsRecord): Promise<boolean> {
    const res = await withDeadline(
      this.#keys
        .if(FleetKeys.flags, 'Mod', '==', revision)
        .then(this.#keys.put(FleetKeys.flags).value(JSON.stringify(next)))
        .commit(),
      this.#deadline(),
      'the fleet flags',
    )
    return res.succeeded
  }

  /** Deletes a finished proposal with its document and acknowledgements. */
  async forget(proposal: string): Promise<void> {
    await withDeadline(
      Promise.all([
        this.#keys.delete().key(FleetKeys.proposal(proposal)).exec(),
        this.#keys.delete().key(FleetKeys.document(proposal)).exec(),
        this.#keys.delete().prefix(FleetKeys.acks(proposal)).exec(),
      ]),
      this.#deadline(),
      'a cleanup',
    )
  }

  /** A lease of `ttlSeconds` kept alive in the background ('lost' when it could not be renewed). */
  lease(ttlSeconds: number): Lease {
    return this.#keys.lease(ttlSeconds, { autoKeepAlive: true })
  }

  /** Writes this instance's record under its lease. */
  async putMember(lease: Lease, record: MemberRecord): Promise<void> {
    await withDeadline(
      lease.put(FleetKeys.member(record.instance)).value(JSON.stringify(record)).exec(),
      this.#deadline(),
      'the membership record',
    )
  }

  /** One deadline per call, plus room for the client's retry on another member. */
  #deadline(): number {
    return this.etcd.timeoutMs * 2
  }

  async #one<T>(key: string, what: string): Promise<Revisioned<T | null>> {
    const res = await withDeadline(this.#keys.get(key).exec(), this.#deadline(), what)
    const kv = res.kvs[0]
    if (!kv) return { value: null, revision: '0' }
    return { value: parseRecord<T>(kv.value.toString('utf8')), revision: String(kv.mod_revision) }
  }

  async #all(prefix: string, what: string): Promise<{ key: string; value: string; revision: string }[]> {
    const res = await withDeadline(this.#keys.getAll().prefix(prefix).exec(), this.#deadline(), what)
    return res.kvs.map((kv) => ({
      key: kv.key.toString('utf8'),
      value: kv.value.toString('utf8'),
      revision: String(kv.mod_revision),
    }))
  }
}
