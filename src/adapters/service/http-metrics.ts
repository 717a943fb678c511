/**
 * The service's own metrics (docs/operations.md lists them with their meaning), declared through the
 * metrics facade. HTTP ones carry the names of the OpenTelemetry semantic conventions as Prometheus
 * renders them (`http.server.request.duration` in seconds is `http_server_request_duration_seconds`,
 * `http.request.method` is `http_request_method`); ours are `filestorage_*`. Every label comes from a
 * fixed set: methods (others are `_OTHER`), route templates, operationIds, store names, status
 * classes, error codes and refusal reasons.
 */
import { collectDefaultMetrics } from 'prom-client'
import type { EventsService } from '../../events/index.js'
import { probeHealth } from '../../handlers/check.js'
import type { HealthReport, StoreRegistry } from '../../storage/index.js'
import { metrics, registry } from '../../observability/metrics.js'

/** The OpenTelemetry convention's buckets for http.server.request.duration, and two longer ones for large transfers. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 120]
/** Body sizes from 1 KiB to 4 GiB, by fours. */
const SIZE_BUCKETS = [1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864, 268435456, 1073741824, 4294967296]

const REQUEST_LABELS = ['http_request_method', 'http_route', 'http_response_status_code', 'filestorage_operation', 'filestorage_store'] as const

export type RequestLabels = Record<(typeof REQUEST_LABELS)[number], string>

/** The metrics of the HTTP layer, for observe.ts. */
export function httpMetrics() {
  return {
    duration: metrics.histogram({
      name: 'http_server_request_duration_seconds',
      help:
        'Time from the request to its answer being ready (a download: its headers; the bytes then stream), by method, route, ' +
        'status class (2xx, 4xx...), operation, store and error code (the JSON error code of a 4xx or 5xx).',
      labelNames: [...REQUEST_LABELS, 'error_type'],
      buckets: DURATION_BUCKETS,
    }),
    active: metrics.gauge({
      name: 'http_server_active_requests',
      help: 'Requests being served (until their answer is ready), by method, operation and store.',
      labelNames: ['http_request_method', 'filestorage_operation', 'filestorage_store'],
    }),
    requestBody: metrics.histogram({
      name: 'http_server_request_body_size_bytes',
      help: 'Bytes of request bodies received (as read, so a cut upload counts what arrived), by method, route, status class, operation and store.',
      labelNames: REQUEST_LABELS,
      buckets: SIZE_BUCKETS,
    }),
    responseBody: metrics.histogram({
      name: 'http_server_response_body_size_bytes',
      help: 'Bytes of response bodies as announced by their Content-Length (answers without one are not counted), by method, route, status class, operation and store.',
      labelNames: REQUEST_LABELS,
      buckets: SIZE_BUCKETS,
    }),
    uploads: metrics.gauge({
      name: 'filestorage_uploads_in_flight',
      help: 'Uploads whose body is being received (PUT and form uploads, parts, tus creations and PATCHes), by store.',
      labelNames: ['filestorage_store'],
    }),
    uploadBytes: metrics.gauge({
      name: 'filestorage_upload_bytes_in_flight',
      help: 'Bytes received so far by the uploads in flight, by store.',
      labelNames: ['filestorage_store'],
    }),
    refusals: metrics.counter({
      name: 'filestorage_access_refusals_total',
      help:
        'Requests refused by access control, by status (401, 403) and reason: missing_credentials, invalid_token, ' +
        'insufficient_scope, signed_url, not_allowed.',
      labelNames: ['http_response_status_code', 'reason'],
    }),
  }
}

export type HttpMetrics = ReturnType<typeof httpMetrics>

/** The stores' health, probed as /check probes them, at every scrape (with WORKERS, by each worker). */
export function storeHealthMetrics(stores: StoreRegistry): () => void {
  const up = metrics.gauge({
    name: 'filestorage_store_up',
    help: '1 when the store answers, 0 when it does not (as /check sees it), by store and driver.',
    labelNames: ['filestorage_store', 'filestorage_store_driver'],
    aggregate: 'min',
  })
  const writable = metrics.gauge({
    name: 'filestorage_store_writable',
    help: '1 when the store takes writes, 0 when it is degraded (a full disk, a read-only file system) or down.',
    labelNames: ['filestorage_store', 'filestorage_store_driver'],
    aggregate: 'min',
  })
  const latency = metrics.gauge({
    name: 'filestorage_store_health_latency_seconds',
    help: "How long the store's health probe took (2 s when it did not answer in time).",
    labelNames: ['filestorage_store', 'filestorage_store_driver'],
    aggregate: 'max',
  })
  // One probe per scrape for the three gauges: the first to be collected starts it, the others share it.
  let probing: Promise<(readonly [string, string, HealthReport])[]> | undefined
  let probedAt = 0
  const shared = () => {
    if (!probing || performance.now() - probedAt > 1000) {
      probedAt = performance.now()
      probing = Promise.all(stores.entries().map(async ([name, store]) => [name, store.kind, await probeHealth(store)] as const))
    }
    return probing
  }
  const stops = [
    up.sample(async (set) => {
      for (const [name, kind, r] of await shared()) set({ filestorage_store: name, filestorage_store_driver: kind }, r.ok ? 1 : 0)
    }),
    writable.sample(async (set) => {
      for (const [name, kind, r] of await shared()) set({ filestorage_store: name, filestorage_store_driver: kind }, r.ok && r.writable !== false ? 1 : 0)
    }),
    latency.sample(async (set) => {
      for (const [name, kind, r] of await shared()) set({ filestorage_store: name, filestorage_store_driver: kind }, r.latencyMs / 1000)
    }),
  ]
  return () => stops.forEach((stop) => stop())
}

/** The sweeper's runs and what they reclaimed. */
export function sweepMetrics() {
  return {
    runs: metrics.counter({
      name: 'filestorage_sweep_runs_total',
      help: 'Sweeper runs (expired uploads and crash leftovers reclaimed), by store and outcome (ok, failed).',
      labelNames: ['filestorage_store', 'outcome'],
    }),
    reclaimed: metrics.counter({
      name: 'filestorage_sweep_reclaimed_total',
      help: 'Leftovers the sweeper removed (expired uploads, temporary files and records of crashed writes), by store.',
      labelNames: ['filestorage_store'],
    }),
    lastSuccess: metrics.gauge({
      name: 'filestorage_sweep_last_success_timestamp_seconds',
      help: 'When the sweeper last finished a store without error (Unix time), by store.',
      labelNames: ['filestorage_store'],
      aggregate: 'max',
    }),
  }
}

let processMetrics = false

/** Node's (and Bun's) process metrics: CPU, memory, file descriptors, event loop lag, GC. Once per process. */
export function startProcessMetrics(): void {
  if (processMetrics) return
  processMetrics = true
  collectDefaultMetrics({ register: registry })
}

/**
 * The events' backlog, by store (as the recorder last counted it, each second), and by consumer what
 * waits to be delivered and what was given up (dead letters), counted at each scrape. Every process
 * sees the whole store's backlog, so with WORKERS the primary keeps one value, not their sum.
 */
export function eventsMetrics(events: EventsService): () => void {
  const backlog = metrics.gauge({
    name: 'filestorage_events_backlog',
    help: 'Event entries the store keeps (to deliver, and dead letters); at EVENTS_BACKLOG_MAX changes are refused with 507. By store.',
    labelNames: ['filestorage_store'],
    aggregate: 'max',
  })
  const limit = metrics.gauge({
    name: 'filestorage_events_backlog_limit',
    help: 'EVENTS_BACKLOG_MAX: the backlog at which the store refuses changes, by store.',
    labelNames: ['filestorage_store'],
    aggregate: 'max',
  })
  const lanes = {
    pending: metrics.gauge({
      name: 'filestorage_events_pending',
      help: 'Events waiting to be delivered to a consumer (a webhook endpoint, the Redis stream), by store and consumer.',
      labelNames: ['filestorage_store', 'filestorage_events_consumer'],
      aggregate: 'max',
    }),
    dead: metrics.gauge({
      name: 'filestorage_events_dead_letters',
      help: 'Events a consumer was given up on after WEBHOOK_RETRY_FOR (to replay or discard: docs/events.md), by store and consumer.',
      labelNames: ['filestorage_store', 'filestorage_events_consumer'],
      aggregate: 'max',
    }),
  }
  // One count per scrape for both per-consumer gauges; a store that cannot be read shows none.
  let counting: Promise<{ store: string; consumer: string; pending: number; dead: number }[]> | undefined
  let countedAt = 0
  const shared = () => {
    if (!counting || performance.now() - countedAt > 1000) {
      countedAt = performance.now()
      counting = Promise.all(
        [...events.relays].map(([store, relay]) =>
          relay.lanes().then(
            (found) => found.map(({ name, pending, dead }) => ({ store, consumer: name, pending, dead })),
            () => [],
          ),
        ),
      ).then((all) => all.flat())
    }
    return counting
  }
  const stops = [
    backlog.sample((set) => {
      for (const [store, { backlog: size }] of Object.entries(events.health().stores)) set({ filestorage_store: store }, size)
    }),
    limit.sample((set) => {
      for (const [store, { max }] of Object.entries(events.health().stores)) set({ filestorage_store: store }, max)
    }),
    ...(['pending', 'dead'] as const).map((which) =>
      lanes[which].sample(async (set) => {
        for (const lane of await shared()) set({ filestorage_store: lane.store, filestorage_events_consumer: lane.consumer }, lane[which])
      }),
    ),
  ]
  return () => stops.forEach((stop) => stop())
}
