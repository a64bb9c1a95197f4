// One rollout round: propose version N to the live instances, wait for their acknowledgements, then
// commit by compare-and-swap on the committed version, or abort. `freshet config push` and
// PUT /api/v1/config (with fleet on) both run it.

import { randomBytes } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import {
  type AckRecord,
  type ProposalRecord,
  proposalId,
  type QuorumRule,
  requiredAcks,
  roundState,
} from './fleet-records.js'
import type { FleetStore } from './fleet-store.js'

/** How a round ended. */
export interface ProposalOutcome {
  /**
   * committed: every instance applies it; aborted: too many refusals or too few answers in time, or
   * a racing proposal won; refused: not newer than the committed version (nothing was proposed).
   */
  readonly status: 'committed' | 'aborted' | 'refused'
  readonly version: number
  /** The proposal id (null when refused before proposing). */
  readonly proposal: string | null
  readonly committedVersion: number | null
  readonly reason: string | null
  readonly members: readonly string[]
  readonly required: number
  readonly acks: readonly AckRecord[]
}

export interface ProposeOptions {
  /** Who proposes: an instance id, or `user@host` for the CLI. */
  readonly proposer: string
  readonly quorum: QuorumRule
  readonly ackTimeoutMs: number
  /** How often acknowledgements are read while waiting (default 50 ms). */
  readonly pollMs?: number
  /** Finished proposals kept for `config status` (default 5). */
  readonly keep?: number
}

/**
 * Runs one round for `document` (a parsed config the caller validated) at `version`.
 * @example
 * const outcome = await proposeConfig(store, document, 7, { proposer: 'ops@laptop', quorum: 'majority', ackTimeoutMs: 5000 })
 * if (outcome.status !== 'committed') console.error(outcome.reason)
 */
export async function proposeConfig(
  store: FleetStore,
  document: unknown,
  version: number,
  options: ProposeOptions,
): Promise<ProposalOutcome> {
  const [base, members] = await Promise.all([store.committed(), store.members()])
  const committedVersion = base.value?.version ?? null
  const ids = members.map((m) => m.instance)
  if (committedVersion !== null && version <= committedVersion) {
    return {
      status: 'refused',
      version,
      proposal: null,
      committedVersion,
      reason: `version ${version} is not greater than the committed version ${committedVersion}`,
      members: ids,
      required: 0,
      acks: [],
    }
  }
  const required = requiredAcks(options.quorum, ids.length)
  const proposal: ProposalRecord = {
    id: proposalId(version, randomBytes(4).toString('hex')),
    version,
    proposer: options.proposer,
    created_at: new Date().toISOString(),
    deadline: Date.now() + options.ackTimeoutMs,
    quorum: options.quorum,
    members: ids,
    required,
    status: 'pending',
    reason: null,
  }
  const revision = await store.createProposal(proposal, document)
  const outcome = (
    status: ProposalOutcome['status'],
    reason: string | null,
    acks: readonly AckRecord[],
    at = committedVersion,
  ) =>
    ({
      status,
      version,
      proposal: proposal.id,
      committedVersion: at,
      reason,
      members: ids,
      required,
      acks,
    }) as const

  let acks: AckRecord[] = []
  let state = roundState(proposal, acks)
  if (ids.length === 0) state = { state: 'impossible', reason: 'no live instance in the fleet' }
  while (state.state === 'pending' && Date.now() < proposal.deadline) {
    await delay(options.pollMs ?? 50)
    acks = await store.acks(proposal.id)
    state = roundState(proposal, acks)
  }
  let result: ProposalOutcome
  if (state.state === 'quorum') {
    const won = await store.commit(proposal, revision, base.revision, {
      version,
      proposal: proposal.id,
      committed_at: new Date().toISOString(),
      proposer: options.proposer,
    })
    if (won) result = outcome('committed', null, acks, version)
    else {
      const now = await store.committed()
      const reason = `lost the race: the committed version moved to ${now.value?.version ?? 'none'} during the round`
      await store.abort(proposal, revision, reason)
      result = outcome('aborted', reason, acks, now.value?.version ?? null)
    }
  } else {
    const ok = acks.filter((a) => a.ok && ids.includes(a.instance)).length
    const reason =
      state.state === 'impossible'
        ? state.reason
        : `${ok} of ${required} acknowledgements within ${options.ackTimeoutMs} ms`
    await store.abort(proposal, revision, reason)
    result = outcome('aborted', reason, acks)
  }
  await forgetOld(store, options.keep ?? 5).catch(() => {})
  return result
}

/** Deletes finished proposals beyond the newest `keep`. */
async function forgetOld(store: FleetStore, keep: number): Promise<void> {
  // a pending round whose proposer died is over a minute past its deadline: finished too
  const over = (p: { status: string; deadline: number }) =>
    p.status !== 'pending' || Date.now() > p.deadline + 60_000
  const finished = (await store.proposals()).filter((p) => over(p.value))
  const old = finished.slice(0, Math.max(0, finished.length - keep))
  const committed = (await store.committed()).value?.proposal
  // the committed proposal's document is what instances (and a restart) apply: never delete it
  for (const p of old) if (p.value.id !== committed) await store.forget(p.value.id)
}
