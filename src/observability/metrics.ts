/**
 * The process's metrics: one prom-client registry, and a small facade over it that every module uses
 * to declare its own metrics without knowing prom-client (the events backlog, quota refusals...):
 *
 *   import { metrics } from '../observability/metrics.js'
 *   const refusals = metrics.counter({ name: 'filestorage_quota_refusals_total', help: '...', labelNames: ['filestorage_store'] })
 *   refusals.inc({ filestorage_store: 'disk' })
 *   metrics.gauge({ name: 'filestorage_events_backlog', help: '...', labelNames: ['filestorage_store'], aggregate: 'max' })
 *     .sample((set) => set({ filestorage_store: 'disk' }, backlog.size))   // read at every scrape
 *
 * Declaring a metric twice (two services in one process, a module loaded by two stores) returns the
 * first one. Label values must come from a small fixed set (store names, operations, reasons, status
 * classes): never a path, a principal or an id, so that the number of series stays bounded
 * (docs/operations.md). Updating a metric costs a few hundred nanoseconds and is harmless when
 * metrics are not served; nothing is exported unless METRICS_PORT or METRICS_ON_MAIN_PORT is set.
 *
 * With WORKERS, each process keeps its own values and the primary adds them up at every scrape
 * (metrics-endpoint.ts): counters and histograms are summed, gauges as their `aggregate` says.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'

export type Labels = Record<string, string | number>

/** How the values of the WORKERS processes combine into one: summed (the default), or one of them. */
export type Aggregate = 'sum' | 'max' | 'min' | 'average' | 'first'

export interface MetricOptions {
  /** Prometheus name: `filestorage_` for ours, the OpenTelemetry convention's name where there is one; counters end in `_total`. */
  name: string
  help: string
  labelNames?: readonly string[]
}

export interface CounterMetric {
  inc(labels?: Labels, value?: number): void
}

export interface GaugeMetric {
  set(labels: Labels, value: number): void
  inc(labels?: Labels, value?: number): void
  dec(labels?: Labels, value?: number): void
  /**
   * Calls `read` at every scrape, before the gauge is read (a backlog counted where it lives); a
   * sampled gauge then shows what its readers reported, and nothing else. Returns the function that
   * stops it (a store closed).
   */
  sample(read: (set: (labels: Labels, value: number) => void) => void | Promise<void>): () => void
}

export interface HistogramMetric {
  observe(labels: Labels, value: number): void
}

/** This process's registry: what /metrics shows (summed over the workers with WORKERS). */
export const registry = new Registry()

const declared = new Map<string, { kind: string; metric: unknown }>()

function declare<T>(kind: string, name: string, make: () => T): T {
  const known = declared.get(name)
  if (known) {
    if (known.kind !== kind) throw new Error(`metric ${name} is already declared as a ${known.kind}`)
    return known.metric as T
  }
  const metric = make()
  declared.set(name, { kind, metric })
  return metric
}

const labelsOf = (options: MetricOptions) => [...(options.labelNames ?? [])]

export const metrics = {
  counter(options: MetricOptions): CounterMetric {
    return declare('counter', options.name, () => {
      const counter = new Counter({ name: options.name, help: options.help, labelNames: labelsOf(options), registers: [registry] })
      return { inc: (labels: Labels = {}, value = 1) => counter.inc(labels, value) }
    })
  },

  gauge(options: MetricOptions & { aggregate?: Aggregate }): GaugeMetric {
    return declare('gauge', options.name, () => {
      const readers = new Set<(set: (labels: Labels, value: number) => void) => void | Promise<void>>()
      let sampled = false
      const gauge: Gauge = new Gauge({
        name: options.name,
        help: options.help,
        labelNames: labelsOf(options),
        registers: [registry],
        aggregator: options.aggregate ?? 'sum',
        async collect() {
          if (!sampled) return
          const values: [Labels, number][] = []
          await Promise.all([...readers].map(async (read) => read((labels, value) => values.push([labels, value]))))
          // What the readers report now, and only that (a consumer gone leaves no stale series), set at once.
          gauge.reset()
          for (const [labels, value] of values) gauge.set(labels, value)
        },
      })
      return {
        set: (labels: Labels, value: number) => gauge.set(labels, value),
        inc: (labels: Labels = {}, value = 1) => gauge.inc(labels, value),
        dec: (labels: Labels = {}, value = 1) => gauge.dec(labels, value),
        sample(read) {
          sampled = true
          readers.add(read)
          return () => void readers.delete(read)
        },
      } satisfies GaugeMetric
    })
  },

  histogram(options: MetricOptions & { buckets: number[] }): HistogramMetric {
    return declare('histogram', options.name, () => {
      const histogram = new Histogram({
        name: options.name,
        help: options.help,
        labelNames: labelsOf(options),
        buckets: options.buckets,
        registers: [registry],
      })
      return { observe: (labels: Labels, value: number) => histogram.observe(labels, value) }
    })
  },
}
