// proxy.workers > 1, the primary process's side: forks the workers, passes them readings, config and controls, collects their metrics, pools and decisions.

import cluster, { type Worker } from 'node:cluster'
import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { RoutingEngine } from '../../routing/routing-engine.js'
import type { DecisionLog } from '../../telemetry/decision-log.js'
import type { MetricsJson } from '../../telemetry/metrics.js'
import type { PoolStats } from '../../telemetry/telemetry-source.js'
import type { ServerPoolStats } from '../server-pool.js'
import type { FromWorker, ToWorker } from './worker-protocol.js'

/** How long a scrape waits for a worker's metrics before leaving that worker out. */
const METRICS_TIMEOUT_MS = 2000
/** Pause before a worker that died is replaced (a worker failing at start must not spin). */
const RESTART_DELAY_MS = 1000

interface Slot {
  worker: Worker
  /** Sent its init: hears readings, config and controls from then on. */
  inited: boolean
  ready: boolean
  pools: Record<string, ServerPoolStats>
}

/**
 * The worker processes of one proxy. This process keeps the only set of probes and the admin API;
 * each worker runs a proxy server on the shared listener (node:cluster: this process accepts and hands
 * each connection to a worker in turn) with an engine that follows the readings passed here. A client
 * session, its pins and its read-your-writes token live in the one worker that accepted it.
 *
 * @example
 * const workers = new ProxyWorkers(engine, { count: 4, listen: '0.0.0.0:6432', decisions })
 * const { port } = await workers.start()
 */
export class ProxyWorkers {
  readonly #engine: RoutingEngine
  readonly #count: number
  readonly #listen: string
  readonly #decisions: DecisionLog
  readonly #slots: (Slot | null)[]
  readonly #pending = new Map<number, { got: MetricsJson[]; left: number; done: () => void }>()
  #nextId = 0
  #stopping = false
  readonly #detach: (() => void)[] = []

  constructor(engine: RoutingEngine, options: { count: number; listen: string; decisions: DecisionLog }) {
    this.#engine = engine
    this.#count = options.count
    this.#listen = options.listen
    this.#decisions = options.decisions
    this.#slots = new Array(options.count).fill(null)
  }

  /** Workers running now. */
  get count(): number {
    return this.#slots.filter((s) => s?.ready).length
  }

  /** Process ids of the workers running now. */
  pids(): number[] {
    return this.#slots.flatMap((s) => (s?.ready && s.worker.process.pid ? [s.worker.process.pid] : []))
  }

  /** Forks every worker; resolves with the shared address once all of them listen. */
  async start(): Promise<{ address: string; port: number; family: string }> {
    const engine = this.#engine
    const onReading = engine.onReading((name, reading) => this.#broadcast({ t: 'reading', name, reading }))
    const onConfig = () =>
      this.#broadcast({ t: 'config', config: engine.config, replicas: engine.replicaOverride })
    const onControls = (controls: typeof engine.config.controls) =>
      this.#broadcast({ t: 'controls', controls })
    engine.on('config', onConfig)
    engine.on('controls', onControls)
    this.#detach.push(
      onReading,
      () => engine.off('config', onConfig),
      () => engine.off('controls', onControls),
    )
    const self = fileURLToPath(import.meta.url)
    cluster.setupPrimary({
      exec: fileURLToPath(new URL(`./proxy-worker${extname(self)}`, import.meta.url)),
      // the loader flags (tsx in development), not a test runner's
      execArgv: process.execArgv.filter((a) => !a.startsWith('--test')),
      args: [],
    })
    try {
      const first = await Promise.all(this.#slots.map((_, i) => this.#fork(i)))
      return first[0]!
    } catch (err) {
      await this.stop()
      throw err
    }
  }

  /** Server pool counts summed over the workers, by node (as the workers last reported them). */
  poolStats(): Record<string, PoolStats> {
    const out: Record<string, { total: number; idle: number; active: number; waiting: number }> = {}
    for (const slot of this.#slots) {
      if (!slot?.ready) continue
      for (const [node, s] of Object.entries(slot.pools)) {
        out[node] ??= { total: 0, idle: 0, active: 0, waiting: 0 }
        const sum = out[node]
        sum.total += s.total
        sum.idle += s.idle
        sum.active += s.active
        sum.waiting += s.waiting
      }
    }
    return out
  }

  /** Each running worker's last reported server pool counts, by node. */
  poolStatsByWorker(): Record<string, ServerPoolStats>[] {
    return this.#slots.flatMap((s) => (s?.ready ? [s.pools] : []))
  }

  /** Every running worker's metrics (a worker that does not answer in 2 s is left out). */
  metricsJson(): Promise<MetricsJson[]> {
    const ready = this.#slots.filter((s): s is Slot => s?.ready === true)
    if (ready.length === 0) return Promise.resolve([])
    const id = this.#nextId++
    return new Promise((resolve) => {
      const got: MetricsJson[] = []
      const done = () => {
        clearTimeout(timer)
        this.#pending.delete(id)
        resolve(got)
      }
      const timer = setTimeout(done, METRICS_TIMEOUT_MS)
      this.#pending.set(id, { got, left: ready.length, done })
      for (const slot of ready) this.#send(slot.worker, { t: 'metrics?', id })
    })
  }

  /** Asks every worker to drain and exit (each closes its proxy server); resolves when all are gone. */
  async stop(): Promise<void> {
    this.#stopping = true
    for (const d of this.#detach.splice(0)) d()
    const graceMs = this.#engine.config.proxy.shutdown_timeout_ms + 5000
    await Promise.all(
      this.#slots.map(async (slot) => {
        if (!slot || slot.worker.isDead()) return
        const exited = new Promise<void>((r) => slot.worker.once('exit', () => r()))
        this.#send(slot.worker, { t: 'stop' })
        const timer = setTimeout(() => slot.worker.process.kill('SIGKILL'), graceMs)
        await exited
        clearTimeout(timer)
      }),
    )
  }

  #fork(index: number): Promise<{ address: string; port: number; family: string }> {
    const worker = cluster.fork({ FRESHET_WORKER_INDEX: String(index) })
    const slot: Slot = { worker, inited: false, ready: false, pools: {} }
    this.#slots[index] = slot
    return new Promise((resolve, reject) => {
      worker.on('message', (message: FromWorker) => {
        if (message.t === 'hello') {
          slot.inited = true
          this.#send(worker, {
            t: 'init',
            index,
            count: this.#count,
            listen: this.#listen,
            config: this.#engine.config,
            replicas: this.#engine.replicaOverride,
            readings: this.#engine.readings(),
          })
        } else if (message.t === 'listening') {
          slot.ready = true
          resolve({ address: message.address, port: message.port, family: message.family })
        } else if (message.t === 'failed') reject(new Error(`proxy worker ${index}: ${message.message}`))
        else this.#onMessage(slot, message)
      })
      worker.once('exit', (code, signal) => {
        slot.ready = false
        slot.inited = false
        reject(new Error(`proxy worker ${index} exited (${signal ?? code}) before listening`))
        if (this.#stopping) return
        this.#engine.emit(
          'log',
          'error',
          `proxy worker ${index} exited (${signal ?? code}); starting another`,
        )
        setTimeout(() => {
          if (!this.#stopping) this.#fork(index).catch(() => {})
        }, RESTART_DELAY_MS).unref()
      })
    })
  }

  #onMessage(slot: Slot, message: FromWorker): void {
    switch (message.t) {
      case 'refresh':
        this.#engine
          .refreshReadings()
          .catch(() => {})
          .then(() => this.#send(slot.worker, { t: 'refreshed', id: message.id }))
        return
      case 'metrics': {
        const pending = this.#pending.get(message.id)
        if (!pending) return
        pending.got.push(message.json)
        if (--pending.left === 0) pending.done()
        return
      }
      case 'pools':
        slot.pools = message.stats
        return
      case 'decision':
        this.#decisions.store(message.record)
        return
      case 'cancel':
        for (const other of this.#slots)
          if (other && other !== slot && other.ready) this.#send(other.worker, message)
        return
      case 'log':
        this.#engine.emit('log', message.level, message.message, message.fields)
        return
    }
  }

  #broadcast(message: ToWorker): void {
    for (const slot of this.#slots) if (slot?.inited) this.#send(slot.worker, message)
  }

  #send(worker: Worker, message: ToWorker): void {
    if (worker.isConnected()) worker.send(message)
  }
}
