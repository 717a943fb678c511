/**
 * What the service records of each request, in one middleware before all others (so that a refusal,
 * a 404 and an error are seen like any answer):
 *
 * - the request's id (handlers/request-id.ts: the client's `X-Request-Id` when it is sane, else a new
 *   UUID), taken first so that the events and the hooks carry the same one; returned in `X-Request-Id`
 *   on every answer, errors and redirects included;
 * - a SERVER span (tracing on): its parent the client's `traceparent`, named `PUT /filestorage/v1/{store}/upload/{path}`,
 *   with the route, operation, store, status and error code; storage operations are its children;
 * - the metrics of http-metrics.ts (metrics on);
 * - one log line (LOG_REQUESTS): request id, method, path, query without its signature, status,
 *   operation, store, principal's subject, bytes in and out, duration and trace id.
 *
 * Bytes in are counted by the runtime's own body reader as the handler reads them (`bodyCounter`),
 * so an upload cut off counts what arrived; bytes out are the answer's Content-Length.
 */
import {
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  trace,
} from '@opentelemetry/api'
import type { Context, MiddlewareHandler } from 'hono'
import { AccessError } from '../../auth/index.js'
import { principalOf, requestIdOf } from '../../handlers/index.js'
import type { Logger } from '../../observability/logger.js'
import { safeQuery } from '../../observability/logger.js'
import { tracer } from '../../observability/tracing.js'
import type { HttpMetrics, RequestLabels } from './http-metrics.js'
import type { RouteName } from './route-names.js'
import { storeOf } from './route-names.js'

/** What observe keeps of a request while it is served. */
interface Observed {
  requestId: string
  /** Bytes of the body read so far. */
  bytesIn: number
  /** The upload's store, while its body counts in filestorage_upload_bytes_in_flight. */
  uploadStore: string | undefined
  uploads: UploadsInFlight
}

declare module 'hono' {
  interface ContextVariableMap {
    filestorageObserved?: Observed
  }
}

/** The methods a label may name (OpenTelemetry's list); others are `_OTHER`. */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE'])

/** The operations whose body is an upload's bytes (filestorage_uploads_in_flight). */
const UPLOADS = new Set(['upload', 'uploadForm', 'uploadPart', 'tusCreate', 'tusPatch'])

const statusClass = (status: number) => `${Math.floor(status / 100)}xx`

export interface ObserveOptions {
  basePath: string
  stores: readonly string[]
  routeName: (c: Context) => RouteName
  /** Metrics on. */
  metrics?: HttpMetrics
  /** The request log (LOG_REQUESTS). */
  log?: Logger
  /** Spans (tracing on). */
  traces: boolean
}

const headerGetter: TextMapGetter<Headers> = {
  get: (headers, key) => headers.get(key) ?? undefined,
  keys: (headers) => [...headers.keys()],
}

/** Requests being served, by label set: counted here, read by the gauge at a scrape (no metric work per request). */
class ActiveRequests {
  readonly #active = new Map<string, { labels: Record<string, string>; count: number }>()

  start(method: string, operation: string, store: string): string {
    const key = `${method} ${operation} ${store}`
    const entry = this.#active.get(key)
    if (entry) entry.count++
    else this.#active.set(key, { labels: { http_request_method: method, filestorage_operation: operation, filestorage_store: store }, count: 1 })
    return key
  }

  end(key: string): void {
    const entry = this.#active.get(key)
    if (entry) entry.count--
  }

  report(set: (labels: Record<string, string>, value: number) => void): void {
    for (const { labels, count } of this.#active.values()) set(labels, count)
  }
}

/** Per store, the uploads in flight and the bytes they have received. */
class UploadsInFlight {
  readonly count = new Map<string, number>()
  readonly bytes = new Map<string, number>()

  start(store: string): void {
    this.count.set(store, (this.count.get(store) ?? 0) + 1)
  }

  add(store: string, n: number): void {
    this.bytes.set(store, (this.bytes.get(store) ?? 0) + n)
  }

  end(store: string, received: number): void {
    this.count.set(store, (this.count.get(store) ?? 1) - 1)
    this.bytes.set(store, (this.bytes.get(store) ?? received) - received)
  }
}

export function observe(options: ObserveOptions): MiddlewareHandler {
  const { basePath, metrics, log, traces, routeName } = options
  if (!metrics && !log && !traces) {
    // Nothing observed: the request id alone.
    return async (c, next) => {
      const id = requestIdOf(c)
      await next()
      withRequestId(c, id)
    }
  }
  const stores = new Set(options.stores)
  const uploads = new UploadsInFlight()
  const active = new ActiveRequests()
  if (metrics) {
    metrics.active.sample((set) => active.report(set))
    metrics.uploads.sample((set) => {
      for (const store of stores) set({ filestorage_store: store }, uploads.count.get(store) ?? 0)
    })
    metrics.uploadBytes.sample((set) => {
      for (const store of stores) set({ filestorage_store: store }, uploads.bytes.get(store) ?? 0)
    })
  }

  return async (c, next) => {
    const started = performance.now()
    const name = routeName(c)
    const store = name.hasStore ? storeOf(c.req.path, basePath, stores) : ''
    const method = METHODS.has(c.req.method) ? c.req.method : '_OTHER'
    const observed: Observed = {
      requestId: requestIdOf(c),
      bytesIn: 0,
      uploadStore: store !== '' && UPLOADS.has(name.operation) ? store : undefined,
      uploads,
    }
    c.set('filestorageObserved', observed)
    const activeKey = metrics ? active.start(method, name.operation, store) : undefined
    if (observed.uploadStore !== undefined) uploads.start(observed.uploadStore)

    let span: Span | undefined
    try {
      if (traces) {
        const parent = propagation.extract(ROOT_CONTEXT, c.req.raw.headers, headerGetter)
        span = tracer().startSpan(
          name.route ? `${c.req.method} ${name.route}` : c.req.method,
          {
            kind: SpanKind.SERVER,
            attributes: {
              'http.request.method': c.req.method,
              'url.path': c.req.path,
              'url.scheme': c.req.url.startsWith('https:') ? 'https' : 'http',
              ...(name.route ? { 'http.route': name.route } : {}),
              ...(name.operation ? { 'filestorage.operation': name.operation } : {}),
              ...(store ? { 'filestorage.store': store } : {}),
              'filestorage.request_id': observed.requestId,
            },
          },
          parent,
        )
        await context.with(trace.setSpan(parent, span), next)
      } else {
        await next()
      }
    } finally {
      if (activeKey !== undefined) active.end(activeKey)
      if (observed.uploadStore !== undefined) {
        uploads.end(observed.uploadStore, observed.bytesIn)
        observed.uploadStore = undefined // bytes read after the answer (rare) no longer count as in flight
      }
    }

    const seconds = (performance.now() - started) / 1000
    const res = withRequestId(c, observed.requestId)
    const status = res.status
    const length = res.headers.get('content-length')
    const bytesOut = c.req.method === 'HEAD' || status === 304 ? 0 : length === null ? undefined : Number(length)
    const error = c.error
    const code = (error as { code?: unknown } | undefined)?.code
    const errorType = status < 400 ? '' : typeof code === 'string' ? code : String(status)

    if (metrics) {
      const labels: RequestLabels = {
        http_request_method: method,
        http_route: name.route,
        http_response_status_code: statusClass(status),
        filestorage_operation: name.operation,
        filestorage_store: store,
      }
      metrics.duration.observe({ ...labels, error_type: errorType }, seconds)
      if (observed.bytesIn > 0) metrics.requestBody.observe(labels, observed.bytesIn)
      if (bytesOut !== undefined) metrics.responseBody.observe(labels, bytesOut)
      if (error instanceof AccessError) {
        metrics.refusals.inc({ http_response_status_code: String(status), reason: refusalReason(c, error) })
      }
    }
    if (span) {
      span.setAttribute('http.response.status_code', status)
      if (observed.bytesIn > 0) span.setAttribute('http.request.body.size', observed.bytesIn)
      if (bytesOut !== undefined) span.setAttribute('http.response.body.size', bytesOut)
      if (errorType) span.setAttribute('error.type', errorType)
      // A server span fails on a 5xx only: a 4xx is the client's (OpenTelemetry's HTTP conventions).
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, ...(error?.message ? { message: error.message } : {}) })
      span.end()
    }
    if (log) {
      const entry = {
        requestId: observed.requestId,
        method: c.req.method,
        path: c.req.path,
        query: safeQuery(c.req.url),
        status,
        operation: name.operation || undefined,
        store: store || undefined,
        sub: principalOf(c)?.sub ?? '-',
        bytesIn: observed.bytesIn,
        bytesOut,
        durationMs: Math.round(seconds * 10000) / 10,
        traceId: span?.spanContext().traceId,
        ...(status >= 500 && error ? { err: error } : {}),
      }
      log[status >= 500 ? 'error' : 'info'](entry, `${c.req.method} ${c.req.path} ${status}`)
    }
  }
}

/**
 * The counter `observe` gives the runtime's body reader for a request: called with each chunk's
 * size as the handler reads it. Undefined outside observe.
 */
export function bodyCounter(c: Context): ((bytes: number) => void) | undefined {
  const observed = c.get('filestorageObserved')
  if (!observed) return undefined
  return (bytes) => {
    observed.bytesIn += bytes
    if (observed.uploadStore !== undefined) observed.uploads.add(observed.uploadStore, bytes)
  }
}

/** The answer, with the request id in `X-Request-Id` (a copy of it when its headers cannot change: a redirect). */
function withRequestId(c: Context, id: string): Response {
  try {
    c.res.headers.set('X-Request-Id', id)
  } catch {
    const res = c.res
    c.res = new Response(res.body, { status: res.status, statusText: res.statusText, headers: new Headers(res.headers) })
    c.res.headers.set('X-Request-Id', id)
  }
  return c.res
}

/** Why access control refused: what the refusal's challenge says, or what the request carried. */
function refusalReason(c: Context, error: AccessError): string {
  const challenge = error.headers['WWW-Authenticate'] ?? ''
  if (error.code === 'unauthorized') return challenge.includes('invalid_token') ? 'invalid_token' : 'missing_credentials'
  if (challenge.includes('insufficient_scope')) return 'insufficient_scope'
  if (c.req.url.includes('sig=')) return 'signed_url'
  return 'not_allowed'
}
