// A proxy worker process (proxy.workers > 1): serves clients on the shared listener, following the primary process's readings.

import { revivedConfig } from '../../core/config/parse-config.js'
import { RoutingEngine } from '../../routing/routing-engine.js'
import { DecisionLog } from '../../telemetry/decision-log.js'
import { FreshetMetrics, type MetricsJson } from '../../telemetry/metrics.js'
import { ProxyServer } from '../proxy-server.js'
import { type FromWorker, type ToWorker, workerConfig } from './worker-protocol.js'

/** How often a worker reports its server pool counts to the admin process. */
const POOL_REPORT_MS = 500

const send = (message: FromWorker): void => {
  if (process.connected) process.send!(message)
}

/**
 * Runs one worker: builds an engine that takes no readings of its own (the primary process probes and
 * passes them on), a proxy server listening on the shared port (node:cluster hands out the
 * connections), metrics and a decision log whose records go to the primary process.
 */
function runWorker(): void {
  let engine: RoutingEngine | null = null
  let proxy: ProxyServer | null = null
  let metrics: FreshetMetrics | null = null
  let count = 1
  let nextRefresh = 0
  const refreshes = new Map<number, () => void>()
  let stopping = false
  const stop = async (code: number) => {
    if (stopping) return
    stopping = true
    await proxy?.close().catch(() => {})
    await engine?.stop().catch(() => {})
    process.exit(code)
  }
  // the primary process coordinates shutdown: a terminal's Ctrl-C reaches the whole process group
  process.on('SIGINT', () => {})
  process.on('SIGTERM', () => {})
  process.on('disconnect', () => void stop(0))
  process.on('message', (message: ToWorker) => {
    switch (message.t) {
      case 'init':
        count = message.count
        void start(message).catch((err: unknown) => {
          send({ t: 'failed', message: (err as Error).message })
          void stop(1)
        })
        return
      case 'reading':
        engine?.applyReading(message.name, message.reading)
        return
      case 'config': {
        if (!engine) return
        const replicas = message.replicas
        if (JSON.stringify(replicas) !== JSON.stringify(engine.replicaOverride)) engine.setReplicas(replicas)
        const next = workerConfig(revivedConfig(message.config), count)
        if (next.version > engine.config.version) engine.reload(next)
        return
      }
      case 'controls':
        if (engine && JSON.stringify(engine.config.controls) !== JSON.stringify(message.controls))
          engine.setControls(message.controls)
        return
      case 'refreshed':
        refreshes.get(message.id)?.()
        refreshes.delete(message.id)
        return
      case 'metrics?':
        void (metrics?.registry.getMetricsAsJSON() ?? Promise.resolve([])).then((json) =>
          send({ t: 'metrics', id: message.id, json: json as MetricsJson }),
        )
        return
      case 'cancel':
        proxy?.cancelLocal(message.pid, Buffer.from(message.secret, 'hex'))
        return
      case 'stop':
        void stop(0)
        return
    }
  })
  // listening now: the primary process sends init in answer (a message sent before would be lost)
  send({ t: 'hello' })

  async function start(init: Extract<ToWorker, { t: 'init' }>): Promise<void> {
    const e = new RoutingEngine(workerConfig(revivedConfig(init.config), init.count))
    engine = e
    if (init.replicas !== null) e.setReplicas(init.replicas)
    for (const [name, reading] of init.readings) e.applyReading(name, reading)
    await e.start({
      follow: {
        refresh: () =>
          new Promise<void>((resolve) => {
            const id = nextRefresh++
            refreshes.set(id, resolve)
            send({ t: 'refresh', id })
          }),
      },
    })
    e.on('log', (level, message, fields) => {
      if (level === 'error') send({ t: 'log', level, message, ...(fields ? { fields } : {}) })
    })
    metrics = new FreshetMetrics()
    const p = new ProxyServer(e, {
      listen: init.listen,
      observer: metrics,
      log: (level, message, fields) => send({ t: 'log', level, message, ...(fields ? { fields } : {}) }),
      onForeignCancel: (pid, secret) => send({ t: 'cancel', pid, secret: secret.toString('hex') }),
    })
    proxy = p
    metrics.attachEngine(e, () => p.poolStats())
    new DecisionLog({ capacity: 1, onRecord: (record) => send({ t: 'decision', record }) }).attach(e)
    const address = await p.listen()
    setInterval(() => send({ t: 'pools', stats: p.poolStats() }), POOL_REPORT_MS).unref()
    send({ t: 'pools', stats: p.poolStats() })
    send({ t: 'listening', address: address.address, port: address.port, family: address.family })
  }
}

runWorker()
