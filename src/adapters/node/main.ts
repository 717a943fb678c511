/**
 * `npm start`: the whole service in one process, configured from the environment.
 */
import { ConfigError, type Config, loadConfig } from './config.js'
import { type Service, startService } from './service.js'

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

async function main(): Promise<void> {
  const config = readConfig()
  // Signals are handled from the first moment, so one that arrives while starting is not lost.
  let stopping = false
  const shutdown = (signal: string) => {
    if (stopping) return
    stopping = true
    console.log(`[filestorage] ${signal}: finishing requests in flight, then exiting`)
    void starting
      .then((service) => service.stop())
      .then(
        () => process.exit(0),
        (e: unknown) => {
          console.error('[filestorage] shutdown failed:', e)
          process.exit(1)
        },
      )
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))

  const starting: Promise<Service> = startService(config)
  const service = await starting
  console.log(
    `[filestorage] serving stores ${service.stores.names().join(', ')} on ${service.http.url}/filestorage/v1 ` +
      `(docs: ${service.http.url}/filestorage/v1/docs)`,
  )
}

main().catch((e: unknown) => {
  if (e instanceof ConfigError) {
    // Found while opening the stores (a MONGODB_URI the driver cannot parse).
    console.error(`[filestorage] ${e.message}`)
    process.exit(2)
  }
  console.error('[filestorage] failed to start:', e)
  process.exit(1)
})
