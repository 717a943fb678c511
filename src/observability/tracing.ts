/**
 * Traces as the rest of the code sees them: the OpenTelemetry API only, which does nothing until
 * tracing-sdk.ts registers the SDK (when an OTEL_* variable asks for traces). So these helpers cost
 * next to nothing when tracing is off, and the storage core, the events and the adapters can call
 * them without knowing whether it is on.
 *
 *   tracedFetch(url, init)          a fetch as a CLIENT span, with the W3C `traceparent` of the
 *                                   request (or job) it is made for: webhooks and hooks
 *   traceHeaders(headers)           adds `traceparent` (and `tracestate`) to a header object, for a
 *                                   client that is not fetch (Consul's)
 *   inSpan(name, attributes, fn)    runs `fn` in a child span of the current one
 */
import {
  context,
  propagation,
  type Attributes,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapSetter,
  trace,
  type Tracer,
} from '@opentelemetry/api'
import { VERSION } from '../version.js'

let enabled = false

/** True once tracing-sdk.ts has registered the SDK. */
export const tracingEnabled = (): boolean => enabled

/** Called by tracing-sdk.ts when it registers (and unregisters) the SDK. */
export function setTracingEnabled(on: boolean): void {
  enabled = on
}

export const tracer = (): Tracer => trace.getTracer('filestorage', VERSION)

/** The active span's trace id, for the request log; undefined without one. */
export function currentTraceId(): string | undefined {
  if (!enabled) return undefined
  const span = trace.getActiveSpan()
  return span?.isRecording() ? span.spanContext().traceId : undefined
}

/** Adds the W3C trace context of the active span to `headers` (nothing when tracing is off). */
export function traceHeaders<T extends Record<string, string>>(headers: T): T {
  if (enabled) propagation.inject(context.active(), headers)
  return headers
}

const headersSetter: TextMapSetter<Headers> = { set: (carrier, key, value) => carrier.set(key, value) }

/**
 * `fetch`, traced: a CLIENT span (`POST`, with the URL without its query or credentials, the status)
 * whose context goes out as `traceparent`, so the receiver's trace joins the caller's.
 */
export async function tracedFetch(input: string | URL, init: RequestInit = {}): Promise<Response> {
  if (!enabled) return fetch(input, init)
  const url = new URL(input)
  const method = (init.method ?? 'GET').toUpperCase()
  return tracer().startActiveSpan(
    method,
    {
      kind: SpanKind.CLIENT,
      attributes: {
        'http.request.method': method,
        'server.address': url.hostname,
        'server.port': Number(url.port) || (url.protocol === 'https:' ? 443 : 80),
        'url.full': `${url.origin}${url.pathname}`,
      },
    },
    async (span) => {
      const headers = new Headers(init.headers)
      propagation.inject(context.active(), headers, headersSetter)
      try {
        const response = await fetch(input, { ...init, headers })
        span.setAttribute('http.response.status_code', response.status)
        if (response.status >= 400) span.setStatus({ code: SpanStatusCode.ERROR })
        return response
      } catch (e) {
        failed(span, e)
        throw e
      } finally {
        span.end()
      }
    },
  )
}

/**
 * Runs `fn` in a child span of the active one (INTERNAL unless `kind` says otherwise); an error ends
 * it as failed. `root`: a trace of its own (a background job: a timer's callback would otherwise
 * join whatever trace set the timer).
 */
export async function inSpan<T>(
  name: string,
  attributes: Attributes,
  fn: () => Promise<T>,
  options: { kind?: SpanKind; root?: boolean } = {},
): Promise<T> {
  if (!enabled) return fn()
  return tracer().startActiveSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, attributes, root: options.root ?? false }, async (span) => {
    try {
      return await fn()
    } catch (e) {
      failed(span, e)
      throw e
    } finally {
      span.end()
    }
  })
}

/** Marks a span failed by `e`: its status, `error.type` (a StorageError's code, else the error's name). */
export function failed(span: Span, e: unknown): void {
  const error = e as { code?: unknown; name?: string; message?: string }
  span.setAttribute('error.type', typeof error?.code === 'string' ? error.code : (error?.name ?? 'Error'))
  span.setStatus({ code: SpanStatusCode.ERROR, ...(error?.message ? { message: error.message } : {}) })
}
