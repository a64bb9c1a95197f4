// `freshet proxy --config FILE`: config file -> routing engine -> proxy listener + admin API, with
// SIGTERM/SIGINT graceful shutdown, config reloads (file change, SIGHUP) and replica discovery.

import { parseArgs } from 'node:util'
import { startAdmin } from '../admin/admin-server.js'
import { applyControls, topologyView } from '../admin/admin-views.js'
import { AdminConsole } from '../admin/console/admin-console.js'
import { loadConfigFile } from '../backend/config-file.js'
import type { ConfigWatcher } from '../backend/config-watcher.js'
import { ReplicaDiscovery } from '../backend/discovery.js'
import { redactConfig } from '../core/config/redact.js'
import { isFreshetError } from '../core/errors.js'
import { FleetMember } from '../fleet/fleet-member.js'
import { ProxyServer } from '../proxy/proxy-server.js'
import { ProxyWorkers } from '../proxy/workers/proxy-workers.js'
import { workerCount } from '../proxy/workers/worker-protocol.js'
import { RoutingEngine } from '../routing/routing-engine.js'
import { DecisionLog } from '../telemetry/decision-log.js'
import { attachEngineLogs, createLogger } from '../telemetry/logger.js'
import { FreshetMetrics } from '../telemetry/metrics.js'
import { reloadFile, watchConfigFile } from './config-file-watch.js'
import { type RunningShardedProxy, startShardedProxy } from './proxy-sharded.js'

export const usage = 'freshet proxy --config FILE'

/** What {@link startProxy} started; `stop()` shuts everything down gracefully. */
export interface RunningProxy {
  readonly engine: RoutingEngine
  /** The proxy server, or null with `proxy.workers` above 1 (each worker process runs its own). */
  readonly proxy: ProxyServer | null
  /** The worker processes with `proxy.workers` above 1, else null. */
  readonly workers: ProxyWorkers | null
  /** `host:port` the proxy listens on. */
  readonly address: string
  readonly adminUrl: string | null
  /** Replica discovery (polls only while the config has `cluster.discovery`). */
  readonly discovery: ReplicaDiscovery
  /** The config file watcher (file changes and SIGHUP), when started from a config file. */
  readonly watcher: ConfigWatcher | null
  /** The fleet member when the config has a `fleet` section (then the file watcher is off). */
  readonly fleet: FleetMember | null
  /**
   * Re-reads the config file and applies it; throws ConfigError when it is refused (invalid or not
   * newer; logged and counted as `source="file"`). Does nothing without a config file.
   */
  reload(): Promise<void>
  stop(): Promise<void>
}

/**
 * Starts engine, proxy and admin API from a config file (or an engine already built, e.g. by the
 * sandbox), and replica discovery. From a config file it also reloads when the file changes or on
 * SIGHUP (an invalid or older file is refused and logged; the running config stays).
 * @example
 * const running = await startProxy({ configPath: 'freshet.yaml' })
 * console.log(`proxy on ${running.address}`)
 * await running.stop()
 */
export async function startProxy(options: {
  configPath?: string
  engine?: RoutingEngine
  /** Overrides `proxy.listen`. */
  listen?: string
  /** Overrides `admin.listen`; false: no admin API. */
  adminListen?: string | false
  /** Quiet time after the last change of the config file before it is read (default 200 ms). */
  watchDebounceMs?: number
}): Promise<RunningProxy> {
  let engine = options.engine
  if (!engine) {
    if (!options.configPath) throw new TypeError('startProxy needs configPath or engine')
    engine = new RoutingEngine(await loadConfigFile(options.configPath))
  }
  // one logger from the start: what the fleet logs while joining is not lost before the admin API is up
  // (as before: without the admin API and without a fleet, nothing is logged here)
  const logger =
    options.adminListen !== false || engine.config.fleet ? createLogger(engine.config.telemetry) : null
  const detachLogs = logger ? attachEngineLogs(engine, logger) : () => {}
  // Before the engine starts: the fleet's committed config (or the local cache of it) may replace
  // the file's, so monitors and pools begin on the fleet's topology.
  const fleet = engine.config.fleet ? new FleetMember(engine, { kind: 'proxy' }) : null
  await fleet?.start()
  await engine.start()
  // one registry for the engine's metrics and the proxy's own (backend errors, failovers, latency)
  const metrics = new FreshetMetrics()
  let watcher: ConfigWatcher | null = null
  const routing = engine
  // the admin console answers from the admin API's own views (src/admin/admin-views.ts); served by a
  // single-process proxy only (with workers, logins to proxy.admin.database are refused)
  const adminConsole = () =>
    new AdminConsole({
      topology: () => topologyView(routing, () => proxy!.poolStats()),
      config: () => redactConfig(routing.config),
      servers: () => proxy!.serverConnections(),
      clients: () => proxy!.clientList(),
      setControls: (patch) =>
        applyControls(routing, patch, (control, from, to) =>
          routing.emit('log', 'warn', 'control changed', { control, from, to, source: 'admin_console' }),
        ),
      reload: async () => {
        if (!watcher) throw new Error('this proxy runs without a config file (freshet proxy --config FILE)')
        await reloadFile(watcher)
        return { version: routing.config.version }
      },
    })
  const count = workerCount(engine.config)
  let proxy: ProxyServer | null = null
  let workers: ProxyWorkers | null = null
  // with workers, their sampled decisions land here; without, the admin API attaches its own log
  const decisions = count > 1 ? new DecisionLog() : null
  let detachMetrics: () => void
  let bound: { address: string; port: number; family: string }
  if (decisions !== null) {
    // this process probes and serves the admin API; the workers serve the clients
    const w = new ProxyWorkers(engine, {
      count,
      listen: options.listen ?? engine.config.proxy.listen,
      decisions,
    })
    workers = w
    detachMetrics = metrics.attachEngine(engine)
    metrics.setWorkerSource(() => w.metricsJson())
    bound = await w.start().catch(async (err: unknown) => {
      detachMetrics()
      detachLogs()
      await fleet?.stop()
      throw err
    })
  } else {
    const p = new ProxyServer(engine, {
      ...(options.listen ? { listen: options.listen } : {}),
      observer: metrics,
      adminConsole: adminConsole(),
    })
    proxy = p
    detachMetrics = metrics.attachEngine(engine, () => p.poolStats())
    bound = await p.listen().catch(async (err: unknown) => {
      detachMetrics()
      detachLogs()
      await fleet?.stop()
      throw err
    })
  }
  const poolStats = () => (workers ? workers.poolStats() : proxy!.poolStats())
  const closeFront = (timeoutMs?: number) => (workers ? workers.stop() : proxy!.close(timeoutMs))
  const discovery = new ReplicaDiscovery(engine)
  let admin: Awaited<ReturnType<typeof startAdmin>> | null = null
  try {
    if (options.adminListen !== false) {
      admin = await startAdmin({
        engine,
        metrics,
        ...(decisions ? { decisions } : {}),
        poolStats,
        extraTopology: () => ({ discovery: discovery.state() }),
        ...(logger ? { logger } : {}),
        fleet,
        ...(options.adminListen ? { admin: { listen: options.adminListen } } : {}),
      })
    }
  } catch (err) {
    detachMetrics()
    detachLogs()
    await fleet?.stop()
    await closeFront(0)
    throw err
  }
  // After the admin API: its logger hears what discovery and reloads log.
  discovery.start()
  let stopSighup = () => {}
  if (fleet) {
    // a local file change applied here alone is the split brain the fleet exists to prevent
    engine.emit(
      'log',
      'info',
      'fleet: config file changes are not applied; roll out with freshet config push',
      {
        instance: fleet.instance,
      },
    )
  } else if (options.configPath) {
    const watch = watchConfigFile(options.configPath, engine, metrics, options.watchDebounceMs)
    watcher = watch.watcher
    stopSighup = watch.stop
  }
  const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address
  const running: RunningProxy = {
    engine,
    proxy,
    workers,
    address: `${host}:${bound.port}`,
    adminUrl: admin?.url ?? null,
    discovery,
    watcher,
    fleet,
    reload: async () => {
      if (watcher) await reloadFile(watcher)
    },
    stop: async () => {
      stopSighup()
      discovery.stop()
      await fleet?.stop()
      await closeFront()
      await admin?.close()
      detachMetrics()
      detachLogs()
      await engine.stop()
    },
  }
  return running
}

/** Entry point of `freshet proxy`. */
export async function run(argv: string[]): Promise<number> {
  let values: { config?: string; help?: boolean }
  try {
    ;({ values } = parseArgs({
      args: argv,
      options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
    }))
  } catch (err) {
    console.error(`${(err as Error).message}\nusage: ${usage}`)
    return 2
  }
  if (values.help) {
    console.log(`usage: ${usage}`)
    return 0
  }
  if (!values.config) {
    console.error(`freshet proxy: --config FILE is required\nusage: ${usage}`)
    return 2
  }
  let running: RunningProxy | RunningShardedProxy
  try {
    const config = await loadConfigFile(values.config)
    running = config.shards
      ? await startShardedProxy(config, { configPath: values.config })
      : await startProxy({ configPath: values.config })
  } catch (err) {
    if (isFreshetError(err)) {
      console.error(err.message)
      return 1
    }
    throw err
  }
  console.log(`freshet proxy listening on ${running.address}`)
  if (running.adminUrl) console.log(`admin API and dashboard on ${running.adminUrl}/`)
  // Reloads (file change, SIGHUP) and discovery run inside startProxy until stop().
  const sig = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', resolve)
    process.once('SIGINT', resolve)
  })
  console.log(`${sig}: draining (up to ${running.engine.config.proxy.shutdown_timeout_ms} ms)...`)
  process.once('SIGINT', () => process.exit(130))
  await running.stop()
  return 0
}
