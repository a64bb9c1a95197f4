// Structured JSON logs (pino) at telemetry.log_level, fed by the engine's 'log', breaker, health and
// primary events. Messages carry node names, never connection strings or secrets.

import { type DestinationStream, type Logger, pino } from 'pino'
import { redactUrl } from '../core/config/redact.js'
import type { FreshetConfig } from '../core/config/schema.js'
import type { TelemetrySource } from './telemetry-source.js'

/**
 * A pino logger honouring `telemetry.log_level`; `destination` defaults to stdout.
 * @example
 * const logger = createLogger(config.telemetry)
 * logger.info({ node: 'replica_1' }, 'replica back')
 */
export function createLogger(
  telemetry: Pick<FreshetConfig['telemetry'], 'log_level'>,
  destination?: DestinationStream,
): Logger {
  const options = {
    level: telemetry.log_level,
    base: { service: 'freshet' },
    // A field that may hold a secret is censored wherever it appears.
    redact: { paths: ['password', '*.password', 'token', '*.token', 'authorization', '*.authorization'] },
  }
  return destination ? pino(options, destination) : pino(options)
}

/**
 * Logs an engine's lifecycle events; follows `telemetry.log_level` across reloads. Returns a detach function.
 */
export function attachEngineLogs(engine: TelemetrySource, logger: Logger): () => void {
  const onLog = (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) =>
    logger[level](scrub(fields ?? {}), redactUrl(message))
  const onPrimary = (from: string, to: string) => logger.warn({ from, to }, 'primary changed')
  const onBreaker = (node: string, from: string, to: string) =>
    logger[to === 'open' ? 'warn' : 'info']({ node, from, to }, `circuit breaker ${to}`)
  const onHealth = (node: string, healthy: boolean) =>
    logger[healthy ? 'info' : 'warn']({ node, healthy }, healthy ? 'node healthy' : 'node unhealthy')
  const onConfig = (config: FreshetConfig) => {
    if (logger.level !== config.telemetry.log_level) logger.level = config.telemetry.log_level
  }
  engine.on('log', onLog)
  engine.on('primary_change', onPrimary)
  engine.on('breaker', onBreaker)
  engine.on('health', onHealth)
  engine.on('config', onConfig)
  return () => {
    engine.off('log', onLog)
    engine.off('primary_change', onPrimary)
    engine.off('breaker', onBreaker)
    engine.off('health', onHealth)
    engine.off('config', onConfig)
  }
}

/** Redacts passwords in string fields (an error message may quote a connection string). */
function scrub(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(fields)) out[k] = typeof v === 'string' ? redactUrl(v) : v
  return out
}
