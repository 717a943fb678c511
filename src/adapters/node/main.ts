/**
 * `npm start`: the whole service in one process, configured from the environment.
 */
import { ConfigError, loadConfig } from './config.js'
import { startService } from './service.js'

async function main(): Promise<void> {
  let config
  try {
    config = loadConfig()
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`[filestorage] ${e.message}`)
      process.exit(2)
    }
    throw e
  }
  const service = await startService(config)
  console.log(
    `[filestorage] serving stores ${service.stores.names().join(', ')} on ${service.http.url}/filestorage/v1 ` +
      `(docs: ${service.http.url}/filestorage/v1/docs)`,
  )

  let stopping = false
  const shutdown = (signal: string) => {
    if (stopping) return
    stopping = true
    console.log(`[filestorage] ${signal}: finishing requests in flight, then exiting`)
    service.stop().then(
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

main().catch((e: unknown) => {
  console.error('[filestorage] failed to start:', e)
  process.exit(1)
})
