/**
 * A real OTLP receiver for the tracing tests: Jaeger (v2, `cmd/jaeger`, an OpenTelemetry Collector
 * build) as `scripts/test-services.sh install-jaeger` builds it, started by the test with an
 * in-memory store on free loopback ports: OTLP/HTTP in, its query API (`/api/traces/{id}`) to read
 * the traces back. JAEGER_BIN points at another binary.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnChild, type TestChild } from './child-process.js'
import { requireBinary } from './external.js'
import { freePorts } from './ports.js'
import { GiveUp, waitFor } from './wait.js'

const CACHE = process.env.FILESTORAGE_CACHE ?? join(homedir(), '.cache', 'filestorage')

/** The Jaeger binary, or undefined (the suite is skipped; under CI=true it fails). */
export const JAEGER = requireBinary('JAEGER_BIN', [join(CACHE, 'bin', 'jaeger')], 'Jaeger', 'scripts/test-services.sh install-jaeger')

export interface JaegerSpan {
  traceID: string
  spanID: string
  operationName: string
  references: { refType: string; traceID: string; spanID: string }[]
  tags: { key: string; type: string; value: unknown }[]
  processID: string
}

export interface JaegerTrace {
  traceID: string
  spans: JaegerSpan[]
  processes: Record<string, { serviceName: string; tags: { key: string; value: unknown }[] }>
}

export interface Jaeger {
  /** For OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:port` (the exporter adds /v1/traces). */
  otlpEndpoint: string
  /** The query API's base: `http://127.0.0.1:port`. */
  queryUrl: string
  /** The trace `traceId` once it holds at least `minSpans` spans (spans arrive in batches), waiting up to `timeoutMs`. */
  trace(traceId: string, minSpans: number, timeoutMs?: number): Promise<JaegerTrace>
  output(): string
  stop(): Promise<void>
}

export async function startJaeger(bin: string): Promise<Jaeger> {
  const dir = await mkdtemp(join(tmpdir(), 'filestorage-jaeger-'))
  const [otlp, query, queryGrpc, health] = await freePorts(4)
  const config = join(dir, 'jaeger.yaml')
  await writeFile(
    config,
    `service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      memory_store:
        memory:
          max_traces: 10000
  jaeger_query:
    storage:
      traces: memory_store
    http:
      endpoint: 127.0.0.1:${query}
    grpc:
      endpoint: 127.0.0.1:${queryGrpc}
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:${health}
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:${otlp}
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memory_store
`,
  )
  const child: TestChild = spawnChild(bin, ['--config', `file:${config}`], { cwd: dir })
  const queryUrl = `http://127.0.0.1:${query}`
  const stop = async () => {
    await child.stop('SIGTERM', 5000)
    await rm(dir, { recursive: true, force: true })
  }
  try {
    await waitFor(
      'Jaeger to answer',
      async () => {
        if (!child.running()) throw new GiveUp(`Jaeger exited:\n${child.output()}`)
        const [api, receiver] = await Promise.all([
          fetch(`${queryUrl}/api/services`).then((r) => r.ok),
          // The receiver answers a GET on its traces path with 405: listening.
          fetch(`http://127.0.0.1:${otlp}/v1/traces`).then((r) => r.status === 405),
        ])
        return api && receiver
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    )
  } catch (e) {
    await stop()
    throw e
  }
  return {
    otlpEndpoint: `http://127.0.0.1:${otlp}`,
    queryUrl,
    output: child.output,
    stop,
    trace: (traceId, minSpans, timeoutMs = 20_000) =>
      waitFor(
        `the trace ${traceId} with ${minSpans} spans in Jaeger`,
        async () => {
          const res = await fetch(`${queryUrl}/api/traces/${traceId}`)
          if (res.status === 404) return undefined
          const { data } = (await res.json()) as { data: JaegerTrace[] }
          const trace = data?.[0]
          return trace && trace.spans.length >= minSpans ? trace : undefined
        },
        { timeoutMs, intervalMs: 200 },
      ),
  }
}

/** A span's tag value, by key. */
export const tagOf = (span: JaegerSpan, key: string): unknown => span.tags.find((t) => t.key === key)?.value
