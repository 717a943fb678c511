/**
 * The node adapter's service: stores, the composed app, the HTTP server, the sweeper and (with
 * CONSUL_HTTP_ADDR) the Consul registration, started and stopped together. `main.ts` runs it as a
 * process; tests start it in-process.
 */
import { OpenAPIHono } from '@hono/zod-openapi'
import { createFileStorageApp, DEFAULT_BASE_PATH, fileStorageNotFound, mount, onError } from '../../handlers/index.js'
import type { StoreRegistry } from '../../storage/index.js'
import type { Config } from './config.js'
import { accessOptions, urlOptions } from './access.js'
import { accessLog } from './access-log.js'
import { browserAccess } from './browser-access.js'
import { nodeRequestBody } from './request-body.js'
import { ConsulRegistration } from './consul-registration.js'
import { type RunningServer, serve } from './server.js'
import { serviceDefinition } from './service-definition.js'
import { openStores } from './stores.js'
import { VERSION } from '../../version.js'

export { VERSION }

export interface Service {
  config: Config
  stores: StoreRegistry
  http: RunningServer
  /** Present when CONSUL_HTTP_ADDR is set. */
  registration: ConsulRegistration | undefined
  /**
   * Graceful, in this order: deregister from Consul, stop accepting, finish the requests in flight
   * (up to SHUTDOWN_TIMEOUT_SECONDS), close the stores. Deregistering first lets discovery watchers
   * and the nginx upstream sync drop this instance while it still answers; stopping first would leave
   * Consul advertising an instance that refuses connections until its next check fails.
   */
  stop(): Promise<void>
}

/** What this process does besides serving: one process of an instance sweeps and registers (see cluster.ts). */
export interface ServiceRoles {
  /** Runs the sweeper (at start-up, then every SWEEP_INTERVAL_SECONDS). */
  sweeper: boolean
  /** Registers the instance with Consul, when CONSUL_HTTP_ADDR is set. */
  register: boolean
}

export async function startService(
  config: Config,
  log: (line: string) => void = console.log,
  roles: ServiceRoles = { sweeper: true, register: true },
): Promise<Service> {
  const stores = await openStores(config, log)
  const api = createFileStorageApp({
    stores,
    ...(config.MAX_UPLOAD_BYTES !== undefined ? { maxUploadBytes: config.MAX_UPLOAD_BYTES } : {}),
    jsonBodyTimeoutMs: config.REQUEST_TIMEOUT_SECONDS * 1000,
    service: { name: config.SERVICE_NAME, version: VERSION },
    access: accessOptions(config),
    urls: urlOptions(config),
    ...(config.ACCEL_REDIRECT_LOCATION ? { accelRedirect: config.ACCEL_REDIRECT_LOCATION } : {}),
  })
  const app = new OpenAPIHono()
  app.notFound(fileStorageNotFound(DEFAULT_BASE_PATH))
  app.onError(onError)
  if (config.LOG_REQUESTS) app.use(accessLog(log))
  app.use(nodeRequestBody({ idleTimeoutMs: config.BODY_IDLE_TIMEOUT_SECONDS * 1000 }))
  if (config.CORS_ORIGINS.length > 0) app.use(browserAccess(config.CORS_ORIGINS))
  mount(app, '/', api)

  const http = await serve(app.fetch, {
    host: config.HOST,
    port: config.PORT,
    headersTimeoutMs: config.HEADERS_TIMEOUT_SECONDS * 1000,
    maxConnections: config.MAX_CONNECTIONS,
    sendIdleTimeoutMs: config.SEND_IDLE_TIMEOUT_SECONDS * 1000,
  })
  const sweep = async () => {
    for (const [name, driver] of stores.entries()) {
      try {
        const { removed } = await driver.sweep()
        if (removed > 0) log(`[filestorage] sweeper: removed ${removed} leftovers from store "${name}"`)
      } catch (e) {
        log(`[filestorage] sweeper: store "${name}" failed: ${(e as Error).message}`)
      }
    }
  }
  let sweeper: NodeJS.Timeout | undefined
  if (roles.sweeper) {
    void sweep() // leftovers of a crash go at start-up
    sweeper = setInterval(sweep, config.SWEEP_INTERVAL_SECONDS * 1000)
    sweeper.unref()
  }

  // Registered only once the server listens, so the check can pass at its first run.
  const registration = roles.register ? registerWithConsul(config, { port: http.port, stores: stores.names() }, log) : undefined

  return {
    config,
    stores,
    http,
    registration,
    async stop() {
      clearInterval(sweeper)
      await registration?.stop()
      await http.stop(config.SHUTDOWN_TIMEOUT_SECONDS * 1000)
      await stores.close()
    },
  }
}

/** The instance's Consul registration, started; undefined without CONSUL_HTTP_ADDR. */
export function registerWithConsul(
  config: Config,
  instance: { port: number; stores: string[] },
  log: (line: string) => void,
): ConsulRegistration | undefined {
  if (!config.CONSUL_HTTP_ADDR) return undefined
  return new ConsulRegistration(
    serviceDefinition(config, { ...instance, version: VERSION, checkPath: `${DEFAULT_BASE_PATH}/check` }),
    {
      consulAddr: config.CONSUL_HTTP_ADDR,
      ...(config.CONSUL_HTTP_TOKEN ? { token: config.CONSUL_HTTP_TOKEN } : {}),
      resyncMs: config.CONSUL_RESYNC_INTERVAL,
      log,
    },
  ).start()
}
