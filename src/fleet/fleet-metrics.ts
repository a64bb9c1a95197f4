// Prometheus metrics of a fleet member, registered in the admin API's registry: the etcd link, the
// committed and running versions, flag changes and acknowledgements.

import type { EventEmitter } from 'node:events'
import { Counter, Gauge, type Registry } from 'prom-client'
import type { FleetInstanceState, FleetMemberEvents } from './fleet-member-state.js'

/** What the metrics read of a fleet member (a FleetMember is one). */
export interface FleetMetricsSource extends Pick<EventEmitter<FleetMemberEvents>, 'on' | 'off'> {
  state(): FleetInstanceState
  /** Events counted before the metrics were attached, by `kind:label`. */
  counts(): ReadonlyMap<string, number>
}

/** Names this module registers (for docs/operations.md and tests). */
export const FLEET_METRIC_NAMES = Object.freeze([
  'freshet_fleet_etcd_connected',
  'freshet_fleet_committed_version',
  'freshet_fleet_flag_changes_total',
  'freshet_fleet_acks_total',
  'freshet_fleet_applied_total',
] as const)

/**
 * Registers the member's metrics in `registry`; returns a function that removes them again.
 * @example
 * const detach = attachFleetMetrics(admin.metrics.registry, member)
 */
export function attachFleetMetrics(registry: Registry, member: FleetMetricsSource): () => void {
  const registers = [registry]
  new Gauge({
    name: 'freshet_fleet_etcd_connected',
    help: 'Fleet: 1 while this instance reaches etcd, 0 while it is cut off (it keeps its last committed config)',
    registers,
    collect() {
      this.set(member.state().etcd === 'connected' ? 1 : 0)
    },
  })
  new Gauge({
    name: 'freshet_fleet_committed_version',
    help: 'Fleet: the committed config version this instance last saw (config_version is the one it runs)',
    registers,
    collect() {
      const v = member.state().committed_version
      if (v !== null) this.set(v)
    },
  })
  const flags = new Counter({
    name: 'freshet_fleet_flag_changes_total',
    help: 'Fleet: emergency flag changes this instance applied, by flag',
    labelNames: ['flag'],
    registers,
  })
  const acks = new Counter({
    name: 'freshet_fleet_acks_total',
    help: 'Fleet: answers this instance gave to proposals (ok or refused)',
    labelNames: ['result'],
    registers,
  })
  const applied = new Counter({
    name: 'freshet_fleet_applied_total',
    help: 'Fleet: committed versions applied, by source (etcd, cache)',
    labelNames: ['source'],
    registers,
  })
  // what happened before the registry existed (a proxy joins the fleet before its admin API starts)
  const counters: Record<string, Counter> = { flag: flags, ack: acks, applied }
  for (const [key, n] of member.counts()) {
    const [kind, label] = key.split(':') as [string, string]
    counters[kind]?.labels(label).inc(n)
  }
  const onFlag = (flag: string) => flags.labels(flag).inc()
  const onAck = (_p: string, ok: boolean) => acks.labels(ok ? 'ok' : 'refused').inc()
  const onApplied = (_v: number, source: string) => applied.labels(source).inc()
  member.on('flag', onFlag)
  member.on('ack', onAck)
  member.on('applied', onApplied)
  return () => {
    member.off('flag', onFlag)
    member.off('ack', onAck)
    member.off('applied', onApplied)
    for (const name of FLEET_METRIC_NAMES) registry.removeSingleMetric(name)
  }
}
