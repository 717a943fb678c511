/**
 * A store, observed: each operation a handler asks of it becomes a child span of the request's span
 * (`store put`, with the store, its driver and the path) and a sample of
 * `filestorage_store_operation_duration_seconds`. One thin wrapper at the `Store` level, so every
 * driver (disk, mongo, s3, and those to come) is observed alike without a line in any of them;
 * what the store offers besides its operations (`driver`, `kind`, `localVersion`...) passes through.
 */
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import type { Store } from '../storage/index.js'
import { metrics } from './metrics.js'
import { tracer, tracingEnabled } from './tracing.js'

/** The operations observed, and whether their first argument is a path (else an upload id). */
const OPERATIONS: Record<string, { path: boolean }> = {
  put: { path: true },
  read: { path: true },
  stat: { path: true },
  lookup: { path: true },
  list: { path: true },
  move: { path: true },
  delete: { path: true },
  createUpload: { path: true },
  putPart: { path: false },
  appendPart: { path: false },
  declareUploadSize: { path: false },
  uploadStatus: { path: false },
  completeUpload: { path: false },
  abortUpload: { path: false },
  sweep: { path: false },
  health: { path: false },
}

/** Codes that say the store failed, not that the request asked for something it cannot have. */
const STORE_FAULTS = new Set(['store_unavailable', 'insufficient_storage'])

const operationDuration = () =>
  metrics.histogram({
    name: 'filestorage_store_operation_duration_seconds',
    help: 'Time a store took to answer an operation (an upload: until its body was stored; a download: until it was opened), by store, operation and error code.',
    labelNames: ['filestorage_store', 'filestorage_store_operation', 'error_type'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120],
  })

export interface StoreObservation {
  /** Child spans (when tracing is on). */
  traces: boolean
  /** Durations in filestorage_store_operation_duration_seconds. */
  metrics: boolean
}

/** `store` under the name `name`, observed as `observe` asks; the store itself when it asks for nothing. */
export function observedStore<S extends Store>(name: string, store: S, observe: StoreObservation): S {
  if (!observe.traces && !observe.metrics) return store
  const durations = observe.metrics ? operationDuration() : undefined
  // Each method wrapped once (again if it is replaced on the store).
  const wrapped = new Map<PropertyKey, { of: unknown; fn: unknown }>()
  return new Proxy(store, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown
      if (typeof value !== 'function') return value
      let known = wrapped.get(property)
      if (known?.of !== value) {
        const operation = typeof property === 'string' ? OPERATIONS[property] : undefined
        const own = (value as (...args: unknown[]) => unknown).bind(target)
        known = { of: value, fn: operation ? observed(name, target.kind, property as string, operation.path, own, durations) : own }
        wrapped.set(property, known)
      }
      return known.fn
    },
  })
}

function observed(
  store: string,
  kind: string,
  operation: string,
  takesPath: boolean,
  call: (...args: unknown[]) => unknown,
  durations: ReturnType<typeof operationDuration> | undefined,
): (...args: unknown[]) => Promise<unknown> {
  const record = (started: number, error: unknown) =>
    durations?.observe(
      { filestorage_store: store, filestorage_store_operation: operation, error_type: error === undefined ? '' : errorType(error) },
      (performance.now() - started) / 1000,
    )
  return async (...args) => {
    const started = performance.now()
    const timed = async () => {
      try {
        const result = await call(...args)
        record(started, undefined)
        return result
      } catch (e) {
        record(started, e)
        throw e
      }
    }
    // Spans within a request or a job only: a scrape's health probes make no traces of their own.
    if (!tracingEnabled() || !trace.getActiveSpan()) return timed()
    const attributes: Record<string, string> = { 'filestorage.store': store, 'filestorage.store.driver': kind, 'filestorage.store.operation': operation }
    if (typeof args[0] === 'string') attributes[takesPath ? 'filestorage.path' : 'filestorage.upload_id'] = args[0]
    return tracer().startActiveSpan(`store ${operation}`, { kind: SpanKind.INTERNAL, attributes }, async (span) => {
      try {
        return await timed()
      } catch (e) {
        const type = errorType(e)
        span.setAttribute('error.type', type)
        if (STORE_FAULTS.has(type) || type === '_OTHER') span.setStatus({ code: SpanStatusCode.ERROR, message: (e as Error).message })
        throw e
      } finally {
        span.end()
      }
    })
  }
}

/** A StorageError's code (a fixed set), else `_OTHER`: bounded, as a label must be. */
function errorType(e: unknown): string {
  const code = (e as { code?: unknown } | undefined)?.code
  return typeof code === 'string' && /^[a-z_]{1,40}$/.test(code) ? code : '_OTHER'
}
