/**
 * The service, whatever runtime serves it: stores, the composed app, the HTTP server the runtime
 * provides, the sweeper and (with CONSUL_HTTP_ADDR) the Consul registration, started and stopped
 * together. An adapter (src/adapters/node, src/adapters/bun) brings only its runtime's part: how
 * to listen and serve a fetch handler with the timeouts and the connection bound, the middleware
 * its request bodies need, and where a request's peer address is.
 */
import { OpenAPIHono } from '@hono/zod-openapi'
import type { Context, MiddlewareHandler } from 'hono'
import { EventsService } from '../../events/index.js'
import { createFileStorageApp, DEFAULT_BASE_PATH, fileStorageNotFound, type LocalFileSender, mount, onError, requestIdOf } from '../../handlers/index.js'
import type { StoreRegistry } from '../../storage/index.js'
import { VERSION } from '../../version.js'
import { accessOptions, trustedProxies, urlOptions } from './access.js'
import { accessLog } from './access-log.js'
import { browserAccess } from './browser-access.js'
import type { Config } from './config.js'
import { ConsulRegistration } from './consul-registration.js'
import { eventsOptions } from './events-config.js'
import { serviceDefinition } from './service-definition.js'
import { clientAddress } from './client-address.js'
import { rateLimitsOf } from './rate-limit-config.js'
import type { RateLimits } from './rate-limits.js'
import { rateLimiting } from './rate-limiting.js'
import { openStores } from './stores.js'

export { VERSION }

/** Where and how a runtime serves the app: the limits of SPEC 6 ("slow and stuck clients"). */
export interface ServeOptions {
  host: string
  port: number
  /** Request line and headers must arrive within this; `408` JSON, then the connection is closed. */
  headersTimeoutMs?: number
  /** Connections served at once; more are closed as they come until some end. */
  maxConnections?: number
  /** A response whose bytes the client has not taken for this long is cut. */
  sendIdleTimeoutMs?: number
}

/** A listening server, as every runtime's `serve` returns it. */
export interface HttpServer {
  /** The bound port (useful with port 0). */
  port: number
  /** `http://host:port`, with a loopback host when bound to every interface. */
  url: string
  /** Stops accepting, waits for requests in flight up to `timeoutMs`, then closes every connection. */
  stop(timeoutMs: number): Promise<void>
}

/** The app's fetch handler, as every runtime calls it. */
/** `env`: what the runtime passes along (node-server: the IncomingMessage and its response; Bun: the server). */
export type FetchHandler = (request: Request, env?: object) => Response | Promise<Response>

/** What an adapter brings: its runtime's way of serving HTTP. */
export interface Runtime<Http extends HttpServer = HttpServer> {
  /** Listens on `options.host:port` and serves `fetch`, holding the limits of `options`. */
  serve(fetch: FetchHandler, options: ServeOptions): Promise<Http>
  /** Middleware before CORS and the handlers: the runtime's request body reader (idle timeout, 408). */
  middleware(config: Config): MiddlewareHandler[]
  /** The address of the connection's peer (TRUSTED_PROXIES are matched against it). */
  remoteAddress(c: Context): string | undefined
  /** The runtime's own way of sending large files of a store's local folder, if it has one. */
  localFiles?(config: Config): LocalFileSender
}

export interface Service<Http extends HttpServer = HttpServer> {
  config: Config
  stores: StoreRegistry
  http: Http
  /** Present when CONSUL_HTTP_ADDR is set. */
  registration: ConsulRegistration | undefined
  /** Present when events are configured (WEBHOOK_URL, EVENTS_CONFIG, EVENTS_REDIS_URL, a hook). */
  events: EventsService | undefined
  /**
   * Graceful, in this order: deregister from Consul, stop accepting, finish the requests in flight
   * (up to SHUTDOWN_TIMEOUT_SECONDS), close the stores. Deregistering first lets discovery watchers
   * and the nginx upstream sync drop this instance while it still answers; stopping first would leave
   * Consul advertising an instance that refuses connections until its next check fails.
   */
  stop(): Promise<void>
}

/** What this process does besides serving: one process of an instance sweeps and registers (see workers.ts). */
export interface ServiceRoles {
  /** Runs the sweeper (at start-up, then every SWEEP_INTERVAL_SECONDS). */
  sweeper: boolean
  /** Registers the instance with Consul, when CONSUL_HTTP_ADDR is set. */
  register: boolean
}

/** Starts the service on `runtime`, configured by `config`. */
export async function startService<Http extends HttpServer>(
  runtime: Runtime<Http>,
  config: Config,
  log: (line: string) => void = console.log,
  roles: ServiceRoles = { sweeper: true, register: true },
): Promise<Service<Http>> {
  const eventsConfig = eventsOptions(config) // a bad EVENTS_CONFIG stops start-up before anything opens
  const stores = await openStores(config, log)
  const events = eventsConfig ? await EventsService.start(stores.entries(), eventsConfig, log) : undefined
  const limits = rateLimitsOf(config, log)
  const http = await runtime.serve(composeApp(runtime, config, stores, log, events, limits).fetch, {
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
    events,
    async stop() {
      clearInterval(sweeper)
      await registration?.stop()
      await http.stop(config.SHUTDOWN_TIMEOUT_SECONDS * 1000)
      await events?.stop(EVENTS_STOP_MS) // deliveries in flight end; what is left, another process (or the next start) delivers
      await stores.close()
      await limits?.close()
    },
  }
}

/** The handlers composed with the service's own middleware: access log, request id, the runtime's, CORS, rate limits. */
function composeApp(
  runtime: Runtime<HttpServer>,
  config: Config,
  stores: StoreRegistry,
  log: (line: string) => void,
  events: EventsService | undefined,
  limits: RateLimits | undefined,
): OpenAPIHono {
  const access = accessOptions(config)
  const api = createFileStorageApp({
    stores,
    ...(events ? { events, hooks: events.hooks } : {}),
    ...(config.MAX_UPLOAD_BYTES !== undefined ? { maxUploadBytes: config.MAX_UPLOAD_BYTES } : {}),
    jsonBodyTimeoutMs: config.REQUEST_TIMEOUT_SECONDS * 1000,
    service: { name: config.SERVICE_NAME, version: VERSION },
    access,
    ...(limits ? { rateLimits: limits } : {}),
    urls: urlOptions(config, runtime.remoteAddress),
    ...(config.ACCEL_REDIRECT_LOCATION ? { accelRedirect: config.ACCEL_REDIRECT_LOCATION } : {}),
    ...(runtime.localFiles ? { localFiles: runtime.localFiles(config) } : {}),
  })
  const app = new OpenAPIHono()
  app.notFound(fileStorageNotFound(DEFAULT_BASE_PATH))
  app.onError(onError)
  if (config.LOG_REQUESTS) app.use(accessLog(log))
  app.use(answersRequestId)
  for (const middleware of runtime.middleware(config)) app.use(middleware)
  if (config.CORS_ORIGINS.length > 0) app.use(browserAccess(config.CORS_ORIGINS))
  if (limits) {
    const clientOf = clientAddress(runtime.remoteAddress, trustedProxies(config))
    app.use(rateLimiting({ limits, authorizer: access.authorizer, clientAddress: clientOf, checkPath: `${DEFAULT_BASE_PATH}/check` }))
  }
  mount(app, '/', api)
  return app
}

/** How long a stopping service lets deliveries in flight end. */
const EVENTS_STOP_MS = 5000

/** Every answer says its request's id (`X-Request-Id`: the client's, or a new one), which events carry too. */
const answersRequestId: MiddlewareHandler = async (c, next) => {
  await next()
  try {
    c.res.headers.set('X-Request-Id', requestIdOf(c))
  } catch {
    // an answer whose headers cannot change (a response passed through as it is)
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
