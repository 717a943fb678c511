/**
 * The service, whatever runtime serves it: stores, the composed app, the HTTP server the runtime
 * provides, the sweeper and (with CONSUL_HTTP_ADDR) the Consul registration, started and stopped
 * together. An adapter (src/adapters/node, src/adapters/bun) brings only its runtime's part: how
 * to listen and serve a fetch handler with the timeouts and the connection bound, the middleware
 * its request bodies need, and where a request's peer address is.
 */
import cluster from 'node:cluster'
import { OpenAPIHono } from '@hono/zod-openapi'
import type { Context, MiddlewareHandler } from 'hono'
import { EventsService } from '../../events/index.js'
import { createFileStorageApp, DEFAULT_BASE_PATH, fileStorageNotFound, type LocalFileSender, mount, onError, requestIdOf } from '../../handlers/index.js'
import { onUnexpectedError } from '../../handlers/http-errors.js'
import { createLogger, lineLog, type Logger } from '../../observability/logger.js'
import { inSpan } from '../../observability/tracing.js'
import { startTracing, type Tracing } from '../../observability/tracing-sdk.js'
import type { StoreRegistry } from '../../storage/index.js'
import { VERSION } from '../../version.js'
import { accessOptions, trustedProxies, urlOptions } from './access.js'
import { browserAccess } from './browser-access.js'
import type { Config } from './config.js'
import { ConsulRegistration } from './consul-registration.js'
import { eventsOptions } from './events-config.js'
import { eventsMetrics, httpMetrics, startProcessMetrics, storeHealthMetrics, sweepMetrics } from './http-metrics.js'
import { type MetricsServer, reportToPrimary, serveMetrics } from './metrics-endpoint.js'
import { metricsRoute } from './metrics-route.js'
import { bodyCounter, observe } from './observe.js'
import { routeNames } from './route-names.js'
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

/** A request's byte counter, for the runtime's body reader to tell each chunk's size as it is read (observe.ts). */
export type BodyCounter = (c: Context) => ((bytes: number) => void) | undefined

/** What an adapter brings: its runtime's way of serving HTTP. */
export interface Runtime<Http extends HttpServer = HttpServer> {
  /** Listens on `options.host:port` and serves `fetch`, holding the limits of `options`. */
  serve(fetch: FetchHandler, options: ServeOptions): Promise<Http>
  /**
   * Middleware before CORS and the handlers: the runtime's request body reader (idle timeout, 408),
   * telling `counter` the bytes it reads when there is one.
   */
  middleware(config: Config, counter?: BodyCounter): MiddlewareHandler[]
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
  /** The METRICS_PORT listener, when this process has it (alone; with WORKERS the primary has it). */
  metrics: MetricsServer | undefined
  /** The service's logger (pino). */
  logger: Logger
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

/** Starts the service on `runtime`, configured by `config`, logging to `logger` (by default as LOG_LEVEL and LOG_FORMAT say). */
export async function startService<Http extends HttpServer>(
  runtime: Runtime<Http>,
  config: Config,
  logger: Logger = createLogger({ level: config.LOG_LEVEL, format: config.LOG_FORMAT }),
  roles: ServiceRoles = { sweeper: true, register: true },
): Promise<Service<Http>> {
  const eventsConfig = eventsOptions(config) // a bad EVENTS_CONFIG stops start-up before anything opens
  const log = lineLog(logger)
  const unexpectedToStderr = onUnexpectedError((e, c) =>
    logger.error({ err: e, requestId: requestIdOf(c), method: c.req.method, path: c.req.path }, `unexpected error on ${c.req.method} ${c.req.path}`),
  )
  const metricsOn = config.METRICS_PORT !== undefined || config.METRICS_ON_MAIN_PORT
  // A worker answers the primary's metrics requests from before it reports that it serves (workers.ts).
  if (metricsOn && cluster.isWorker) reportToPrimary()
  const tracing = await startTracing(config, { name: config.SERVICE_NAME, version: VERSION })
  if (tracing) logger.info(`tracing: spans go to ${tracing.exporter}`)
  const stores = await openStores(config, log, { traces: tracing !== undefined, metrics: metricsOn })
  const events = eventsConfig ? await EventsService.start(stores.entries(), eventsConfig, log) : undefined
  const limits = rateLimitsOf(config, log)
  const stopHealthMetrics = metricsOn ? storeHealthMetrics(stores) : undefined
  const stopEventsMetrics = metricsOn && events ? eventsMetrics(events) : undefined
  if (metricsOn) startProcessMetrics()
  const http = await runtime.serve(composeApp(runtime, config, stores, logger, events, { metrics: metricsOn, traces: tracing }, limits).fetch, {
    host: config.HOST,
    port: config.PORT,
    headersTimeoutMs: config.HEADERS_TIMEOUT_SECONDS * 1000,
    maxConnections: config.MAX_CONNECTIONS,
    sendIdleTimeoutMs: config.SEND_IDLE_TIMEOUT_SECONDS * 1000,
  })
  // With WORKERS, the primary serves METRICS_PORT for all of them (workers.ts).
  const metrics = config.METRICS_PORT !== undefined && !cluster.isWorker ? await serveMetrics(config.METRICS_HOST, config.METRICS_PORT, log) : undefined
  if (metrics) logger.info(`metrics on ${metrics.url}`)
  const swept = metricsOn ? sweepMetrics() : undefined
  const sweep = async () => {
    for (const [name, driver] of stores.entries()) {
      try {
        const { removed } = await inSpan('sweep', { 'filestorage.store': name }, () => driver.sweep(), { root: true })
        swept?.runs.inc({ filestorage_store: name, outcome: 'ok' })
        swept?.reclaimed.inc({ filestorage_store: name }, removed)
        swept?.lastSuccess.set({ filestorage_store: name }, Date.now() / 1000)
        if (removed > 0) logger.info({ store: name, removed }, `sweeper: removed ${removed} leftovers from store "${name}"`)
      } catch (e) {
        swept?.runs.inc({ filestorage_store: name, outcome: 'failed' })
        logger.warn({ store: name, err: e }, `sweeper: store "${name}" failed: ${(e as Error).message}`)
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
    metrics,
    logger,
    events,
    async stop() {
      clearInterval(sweeper)
      await registration?.stop()
      await http.stop(config.SHUTDOWN_TIMEOUT_SECONDS * 1000)
      await metrics?.stop()
      stopHealthMetrics?.()
      stopEventsMetrics?.()
      await events?.stop(EVENTS_STOP_MS) // deliveries in flight end; what is left, another process (or the next start) delivers
      await stores.close()
      await tracing?.flush()
      await limits?.close()
      unexpectedToStderr()
    },
  }
}

/**
 * The handlers composed with the service's own middleware: observe (request id, metrics, traces,
 * the request log), the runtime's, CORS, rate limits; /metrics on the main port when asked.
 */
function composeApp(
  runtime: Runtime<HttpServer>,
  config: Config,
  stores: StoreRegistry,
  logger: Logger,
  events: EventsService | undefined,
  observed: { metrics: boolean; traces: Tracing | undefined },
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
  const log = config.LOG_REQUESTS ? logger : undefined
  app.use(
    observe({
      basePath: DEFAULT_BASE_PATH,
      stores: stores.names(),
      routeName: routeNames(api, DEFAULT_BASE_PATH),
      ...(observed.metrics ? { metrics: httpMetrics() } : {}),
      ...(log ? { log } : {}),
      traces: observed.traces !== undefined,
    }),
  )
  const counting = observed.metrics || log !== undefined || observed.traces !== undefined
  for (const middleware of runtime.middleware(config, counting ? bodyCounter : undefined)) app.use(middleware)
  if (config.CORS_ORIGINS.length > 0) app.use(browserAccess(config.CORS_ORIGINS))
  if (config.METRICS_ON_MAIN_PORT) mount(app, '/', metricsRoute(access))
  if (limits) {
    const clientOf = clientAddress(runtime.remoteAddress, trustedProxies(config))
    app.use(rateLimiting({ limits, authorizer: access.authorizer, clientAddress: clientOf, checkPath: `${DEFAULT_BASE_PATH}/check` }))
  }
  mount(app, '/', api)
  return app
}

/** How long a stopping service lets deliveries in flight end. */
const EVENTS_STOP_MS = 5000

/** The instance's Consul registration, started; undefined without CONSUL_HTTP_ADDR. */
export function registerWithConsul(
  config: Config,
  instance: { port: number; stores: string[] },
  log: (line: string, level?: 'info' | 'warn') => void,
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
