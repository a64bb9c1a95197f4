// What `freshet config status` shows: the committed version, the flags, each live instance with the
// version it runs and its answer to the latest proposal (with the reasons of a refusal).

import type {
  AckRecord,
  CommittedRecord,
  FlagsRecord,
  MemberRecord,
  ProposalRecord,
} from './fleet-records.js'
import type { FleetStore } from './fleet-store.js'

/** One instance's row. */
export interface InstanceStatus {
  readonly instance: string
  readonly kind: string
  readonly version: number
  readonly healthy: boolean
  /** Its answer to the latest proposal: null when it gave none (not live then, or did not answer). */
  readonly ack: { readonly ok: boolean; readonly issues: AckRecord['issues'] } | null
  readonly apply_error: string | null
}

export interface FleetStatus {
  readonly committed: CommittedRecord | null
  readonly flags: FlagsRecord | null
  readonly latest: ProposalRecord | null
  readonly instances: readonly InstanceStatus[]
  /** Instances that answered the latest proposal but are no longer live. */
  readonly departed: readonly AckRecord[]
}

/**
 * Reads the fleet's state.
 * @example
 * console.log(formatFleetStatus(await readFleetStatus(store)))
 */
export async function readFleetStatus(store: FleetStore): Promise<FleetStatus> {
  const [committed, flags, members, proposals] = await Promise.all([
    store.committed(),
    store.flags(),
    store.members(),
    store.proposals(),
  ])
  const latest = proposals.at(-1)?.value ?? null
  const acks = latest ? await store.acks(latest.id) : []
  const byInstance = new Map(acks.map((a) => [a.instance, a]))
  const live = new Set(members.map((m) => m.instance))
  return {
    committed: committed.value,
    flags: flags.value,
    latest,
    instances: members.map((m: MemberRecord) => {
      const a = byInstance.get(m.instance)
      return {
        instance: m.instance,
        kind: m.kind,
        version: m.version,
        healthy: m.healthy,
        ack: a ? { ok: a.ok, issues: a.issues } : null,
        apply_error: m.apply_error,
      }
    }),
    departed: acks.filter((a) => !live.has(a.instance)),
  }
}

/** The status as a plain-text table. */
export function formatFleetStatus(s: FleetStatus): string {
  const lines: string[] = []
  lines.push(
    s.committed
      ? `committed: version ${s.committed.version} (${s.committed.proposal}, by ${s.committed.proposer} at ${s.committed.committed_at})`
      : 'committed: none yet',
  )
  if (s.flags) {
    const on = Object.entries(s.flags.controls).map(([k, v]) => `${k}=${v}`)
    lines.push(`flags: ${on.join(' ') || '(none)'} (set by ${s.flags.set_by} at ${s.flags.at})`)
  }
  if (s.latest) {
    const expired = s.latest.status === 'pending' && Date.now() > s.latest.deadline
    const why = s.latest.reason
      ? `: ${s.latest.reason}`
      : expired
        ? ' past its deadline (the proposer is gone; never committed)'
        : ''
    lines.push(
      `latest proposal: version ${s.latest.version} (${s.latest.id}) by ${s.latest.proposer}, quorum ${s.latest.quorum} = ${s.latest.required} of ${s.latest.members.length}, ${s.latest.status}${why}`,
    )
  }
  const rows = s.instances.map((i) => [
    i.instance,
    i.kind,
    String(i.version),
    i.healthy ? 'yes' : 'no',
    i.ack === null ? '-' : i.ack.ok ? `acked ${s.latest?.version}` : `refused ${s.latest?.version}`,
    [
      ...(i.ack && !i.ack.ok ? i.ack.issues.map((x) => `${x.path || '(root)'}: ${x.message}`) : []),
      ...(i.apply_error ? [`cannot apply: ${i.apply_error}`] : []),
    ].join('; '),
  ])
  const header = ['INSTANCE', 'KIND', 'VERSION', 'HEALTHY', 'LATEST', 'REASONS']
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)))
  const fmt = (r: string[]) =>
    r
      .map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd()
  lines.push('', fmt(header), ...rows.map(fmt))
  if (rows.length === 0) lines.push('(no live instance)')
  for (const a of s.departed) {
    lines.push(
      `gone since: ${a.instance} ${a.ok ? 'acked' : `refused: ${a.issues.map((x) => x.message).join('; ')}`}`,
    )
  }
  return lines.join('\n')
}
