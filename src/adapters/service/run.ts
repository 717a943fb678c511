/**
 * An adapter's `main`: the whole service, configured from the environment: in this process, or with
 * WORKERS > 1 in that many worker processes under this one (workers.ts).
 */
import { ConfigError, type Config, loadConfig } from './config.js'
import type { Service, ServiceRoles } from './service.js'
import { isWorker, reportListening, startPrimary, workerRoles } from './workers.js'

/** Starts the service in this process on the adapter's runtime. */
export type StartService = (config: Config, log: (line: string) => void, roles?: ServiceRoles) => Promise<Service>

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
function stopOnSignals(stop: () => Promise<void>, announce: boolean): void {
  let stopping = false
  const shutdown = (signal: string) => {
    if (stopping) return
    stopping = true
    if (announce) console.log(`[filestorage] ${signal}: finishing requests in flight, then exiting`)
    stop().then(
      () => process.exit(0),
      (e: unknown) => {
        console.error('[filestorage] shutdown failed:', e)
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
}

async function main(startService: StartService): Promise<void> {
  const config = readConfig()
  if (!isWorker() && config.WORKERS > 1) {
    const primary = startPrimary(config)
    stopOnSignals(() => primary.stop(), true)
    const { url, stores } = await primary.listening
    console.log(
      `[filestorage] serving stores ${stores.join(', ')} on ${url}/filestorage/v1 with ${config.WORKERS} workers ` +
        `(docs: ${url}/filestorage/v1/docs)`,
    )
    return
  }
  const worker = isWorker()
  const starting: Promise<Service> = startService(config, console.log, worker ? workerRoles() : undefined)
  stopOnSignals(async () => (await starting).stop(), !worker)
  const service = await starting
  if (worker) {
    reportListening(service)
    return
  }
  console.log(
    `[filestorage] serving stores ${service.stores.names().join(', ')} on ${service.http.url}/filestorage/v1 ` +
      `(docs: ${service.http.url}/filestorage/v1/docs)`,
  )
}

/** Runs the service as this process's whole job, exiting on a configuration error or a failed start. */
export function runService(startService: StartService): void {
  main(startService).catch(failedToStart)
}

function failedToStart(e: unknown): void {
  if (e instanceof ConfigError) {
    // Found while opening the stores (a MONGODB_URI the driver cannot parse).
    console.error(`[filestorage] ${e.message}`)
    process.exit(2)
  }
  console.error('[filestorage] failed to start:', e)
  process.exit(1)
}
