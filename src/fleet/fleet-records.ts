// What a fleet keeps in etcd, below `fleet.etcd.prefix`: the key layout, the JSON records and the pure
// quorum rules. No I/O here, so the rules are unit-tested on their own.
//
//   members/<instance>          MemberRecord, bound to the instance's lease (gone when it dies)
//   proposals/<id>              ProposalRecord: a proposed version and its round's state
//   documents/<id>              the proposed config document (parsed YAML/JSON, before validation)
//   acks/<id>/<instance>        AckRecord: one instance's acknowledgement or refusal
//   committed                   CommittedRecord: the committed version, changed only by compare-and-swap
//   flags                       FlagsRecord: fleet-wide emergency controls

import type { FreshetConfig } from '../core/config/schema.js'

/** The keys of one fleet, relative to its prefix (the etcd client is namespaced to `prefix/`). */
export const FleetKeys = Object.freeze({
  members: 'members/',
  member: (instance: string) => `members/${instance}`,
  proposals: 'proposals/',
  proposal: (id: string) => `proposals/${id}`,
  document: (id: string) => `documents/${id}`,
  acks: (id: string) => `acks/${id}/`,
  ack: (id: string, instance: string) => `acks/${id}/${instance}`,
  committed: 'committed',
  flags: 'flags',
})

/** A config problem with its key path (as ConfigError issues and check-config print them). */
export interface FleetIssue {
  readonly path: string
  readonly message: string
}

/** Which face an instance is. */
export type InstanceKind = 'proxy' | 'library'

/** One live instance, written under its lease. */
export interface MemberRecord {
  readonly instance: string
  readonly kind: InstanceKind
  /** The config version it runs. */
  readonly version: number
  /** Its primary is healthy (what /readyz says). */
  readonly healthy: boolean
  readonly started_at: string
  /** Its answer to the latest proposal it saw. */
  readonly acked: { readonly proposal: string; readonly version: number; readonly ok: boolean } | null
  /** Why the committed version could not be applied here (null: applied, or nothing to apply). */
  readonly apply_error: string | null
}

export type ProposalStatus = 'pending' | 'committed' | 'aborted'

/** A proposed version and the state of its acknowledgement round. */
export interface ProposalRecord {
  readonly id: string
  readonly version: number
  readonly proposer: string
  readonly created_at: string
  /** Acknowledgements must arrive before this time (epoch ms). */
  readonly deadline: number
  readonly quorum: QuorumRule
  /** The live instances when the round began: only their acknowledgements count. */
  readonly members: readonly string[]
  /** Acknowledgements needed to commit. */
  readonly required: number
  readonly status: ProposalStatus
  readonly reason: string | null
}

/** One instance's answer to a proposal. */
export interface AckRecord {
  readonly instance: string
  readonly proposal: string
  readonly version: number
  readonly ok: boolean
  readonly issues: readonly FleetIssue[]
  readonly at: string
}

/** The committed version; the document sits under `documents/<proposal>`. */
export interface CommittedRecord {
  readonly version: number
  readonly proposal: string
  readonly committed_at: string
  readonly proposer: string
}

/** Fleet-wide emergency controls and who set them last. */
export interface FlagsRecord {
  readonly controls: Partial<FreshetConfig['controls']>
  readonly set_by: string
  readonly at: string
}

/** The quorum rule: `majority`, `all` or a fixed count. */
export type QuorumRule = 'majority' | 'all' | number

/**
 * Acknowledgements needed out of `members` live instances.
 * @example
 * requiredAcks('majority', 3) // 2
 * requiredAcks('all', 3)      // 3
 * requiredAcks(2, 5)          // 2
 */
export function requiredAcks(rule: QuorumRule, members: number): number {
  if (rule === 'all') return members
  if (rule === 'majority') return Math.floor(members / 2) + 1
  return rule
}

/** Where a round stands given the answers so far. */
export type RoundState =
  | { readonly state: 'pending' }
  | { readonly state: 'quorum' }
  | { readonly state: 'impossible'; readonly reason: string }

/**
 * Decides a round: quorum once `required` of the round's members acknowledged; impossible once too many
 * refused (or the rule asks for more instances than are live). Answers from instances outside the
 * round (joined later) do not count.
 */
export function roundState(
  proposal: Pick<ProposalRecord, 'members' | 'required'>,
  acks: readonly Pick<AckRecord, 'instance' | 'ok'>[],
): RoundState {
  const members = new Set(proposal.members)
  const counted = acks.filter((a) => members.has(a.instance))
  const ok = counted.filter((a) => a.ok).length
  const refused = counted.filter((a) => !a.ok)
  if (proposal.required > members.size) {
    return {
      state: 'impossible',
      reason: `quorum needs ${proposal.required} acknowledgements but only ${members.size} instances are live`,
    }
  }
  if (ok >= proposal.required) return { state: 'quorum' }
  if (members.size - refused.length < proposal.required) {
    const who = refused.map((a) => a.instance).join(', ')
    return {
      state: 'impossible',
      reason: `refused by ${who}; quorum (${proposal.required}) cannot be reached`,
    }
  }
  return { state: 'pending' }
}

/** A proposal id that sorts by version: `000000000042-1a2b3c4d`. */
export function proposalId(version: number, random: string): string {
  return `${String(version).padStart(12, '0')}-${random}`
}

/** JSON.parse of an etcd value, or null when it is not the JSON we wrote. */
export function parseRecord<T>(text: string | null | undefined): T | null {
  if (text === null || text === undefined) return null
  try {
    const value = JSON.parse(text) as unknown
    return value !== null && typeof value === 'object' ? (value as T) : null
  } catch {
    return null
  }
}
