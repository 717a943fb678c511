/**
 * The OpenTelemetry SDK, registered only when the standard variables ask for traces
 * (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or `OTEL_TRACES_EXPORTER`
 * set to `otlp` or `console`; `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` keep it off).
 * Off, not one module of the SDK is loaded and the request path does not look at traces at all.
 *
 * On: spans go through a batch processor to an OTLP/HTTP exporter (protobuf, or JSON with
 * `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`; gRPC is not offered: config.ts refuses it by name).
 * Everything else the specification's variables set is read by the SDK itself: the exporter's
 * headers, timeout and compression (`OTEL_EXPORTER_OTLP_HEADERS`...), the sampler
 * (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`), the batch processor (`OTEL_BSP_*`), and the
 * resource (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`). Context travels with
 * AsyncLocalStorage, on Node and on Bun alike; `traceparent` and `baggage` are read and written as
 * W3C Trace Context says.
 */
import { setTracingEnabled } from './tracing.js'

export interface TracingSettings {
  OTEL_SDK_DISABLED?: boolean | undefined
  OTEL_TRACES_EXPORTER?: 'otlp' | 'console' | 'none' | undefined
  OTEL_EXPORTER_OTLP_ENDPOINT?: string | undefined
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?: string | undefined
  OTEL_EXPORTER_OTLP_PROTOCOL?: 'http/protobuf' | 'http/json' | undefined
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL?: 'http/protobuf' | 'http/json' | undefined
}

export interface Tracing {
  /** Where spans go (`console`, or the OTLP traces URL). */
  exporter: string
  /** Sends the spans still waiting (before a stop). */
  flush(): Promise<void>
  /** Flushes, then unregisters the SDK. */
  shutdown(): Promise<void>
}

/** Whether the settings ask for traces. */
export function tracingWanted(s: TracingSettings): boolean {
  if (s.OTEL_SDK_DISABLED || s.OTEL_TRACES_EXPORTER === 'none') return false
  return s.OTEL_TRACES_EXPORTER !== undefined || Boolean(s.OTEL_EXPORTER_OTLP_ENDPOINT || s.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
}

/** The OTLP/HTTP traces URL: the traces endpoint as given, else the general one with `/v1/traces` (the specification's rule). */
export function tracesUrl(s: TracingSettings): string {
  if (s.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return s.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
  const base = s.OTEL_EXPORTER_OTLP_ENDPOINT ?? 'http://localhost:4318'
  return `${base.replace(/\/+$/, '')}/v1/traces`
}

let running: Promise<Tracing | undefined> | undefined

/**
 * Registers the SDK for this process when the settings ask for traces (once: later calls get the
 * same one); undefined when they do not.
 */
export function startTracing(settings: TracingSettings, service: { name: string; version: string }): Promise<Tracing | undefined> {
  if (!tracingWanted(settings)) return Promise.resolve(undefined)
  running ??= register(settings, service)
  return running
}

async function register(settings: TracingSettings, service: { name: string; version: string }): Promise<Tracing> {
  const [{ NodeTracerProvider }, { BatchSpanProcessor, ConsoleSpanExporter }, resources] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/resources'),
  ])
  const console = settings.OTEL_TRACES_EXPORTER === 'console'
  const url = tracesUrl(settings)
  const protocol = settings.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? settings.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf'
  const exporter = console
    ? new ConsoleSpanExporter()
    : protocol === 'http/json'
      ? new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter({ url })
      : new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter({ url })
  // The service's own name and version, unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say otherwise.
  const resource = resources
    .resourceFromAttributes({ 'service.name': service.name, 'service.version': service.version })
    .merge(resources.detectResources({ detectors: [resources.envDetector] }))
  const provider = new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(exporter)] })
  provider.register()
  setTracingEnabled(true)
  return {
    exporter: console ? 'console' : url,
    flush: () => provider.forceFlush(),
    async shutdown() {
      setTracingEnabled(false)
      running = undefined
      await provider.shutdown()
      // The API takes one registration per process: released, so that a later start can register again.
      const api = await import('@opentelemetry/api')
      api.trace.disable()
      api.context.disable()
      api.propagation.disable()
    },
  }
}
