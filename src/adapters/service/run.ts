/**
 * An adapter's `main`: the whole service, configured from the environment: in this process, or with
 * WORKERS > 1 in that many worker processes under this one (workers.ts).
 */
import { createLogger, lineLog, type Logger } from '../../observability/logger.js'
import { ConfigError, type Config, loadConfig } from './config.js'
import type { Service, ServiceRoles } from './service.js'
import { isWorker, reportListening, startPrimary, workerRoles } from './workers.js'

/** Starts the service in this process on the adapter's runtime. */
export type StartService = (config: Config, logger: Logger, roles?: ServiceRoles) => Promise<Service>

function readConfig(): Config {
  try {
    return loadConfig()
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`[filestorage] ${e.message}`)
      process.exit(2)
    }
    throw e
  }
}

/** Stops on SIGTERM and SIGINT, handled from the first moment so one that arrives while starting is not lost. */
function stopOnSignals(stop: () => Promise<void>, announce: boolean, logger: Logger): void {
  let stopping = false
  const shutdown = (signal: string) => {
    if (stopping) return
    stopping = true
    if (announce) logger.info(`${signal}: finishing requests in flight, then exiting`)
    stop().then(
      () => process.exit(0),
      (e: unknown) => {
        logger.error({ err: e }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
}

async function main(startService: StartService, config: Config, logger: Logger): Promise<void> {
  if (!isWorker() && config.WORKERS > 1) {
    const primary = startPrimary(config, lineLog(logger))
    stopOnSignals(() => primary.stop(), true, logger)
    const { url, stores } = await primary.listening
    logger.info(`serving stores ${stores.join(', ')} on ${url}/filestorage/v1 with ${config.WORKERS} workers (docs: ${url}/filestorage/v1/docs)`)
    return
  }
  const worker = isWorker()
  const starting: Promise<Service> = startService(config, logger, worker ? workerRoles() : undefined)
  stopOnSignals(async () => (await starting).stop(), !worker, logger)
  const service = await starting
  if (worker) {
    reportListening(service)
    return
  }
  logger.info(
    `serving stores ${service.stores.names().join(', ')} on ${service.http.url}/filestorage/v1 (docs: ${service.http.url}/filestorage/v1/docs)`,
  )
}

/** Runs the service as this process's whole job, exiting on a configuration error or a failed start. */
export function runService(startService: StartService): void {
  const config = readConfig()
  // A process's lines, its workers' included, go through one logger: JSON, or readable on a terminal.
  const logger = createLogger({ level: config.LOG_LEVEL, format: config.LOG_FORMAT })
  main(startService, config, logger).catch((e: unknown) => failedToStart(e, logger))
}

function failedToStart(e: unknown, logger: Logger): void {
  if (e instanceof ConfigError) {
    // Found while opening the stores (a MONGODB_URI the driver cannot parse).
    console.error(`[filestorage] ${e.message}`)
    process.exit(2)
  }
  logger.fatal({ err: e }, `failed to start: ${(e as Error)?.message ?? String(e)}`)
  process.exit(1)
}
