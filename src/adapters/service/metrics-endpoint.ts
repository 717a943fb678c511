/**
 * Where Prometheus scrapes: `GET /metrics` on METRICS_PORT (a listener of its own, on METRICS_HOST,
 * loopback unless said otherwise), and with METRICS_ON_MAIN_PORT on the main port behind the
 * operator's right (service.ts).
 *
 * One scrape covers the whole instance. Alone, a process answers with its own registry. With
 * WORKERS, the primary holds the METRICS_PORT listener and asks every worker for its registry over
 * node:cluster's channel (prom-client's AggregatorRegistry), adding them up (counters and histograms
 * summed, gauges as each declares); a worker asked on the main port has the primary do the same for
 * it. The same channel serves on Bun, whose workers are node:cluster workers too. (prom-client's
 * own `clusterMetrics` asks every forked worker and fails the whole scrape when one that is still
 * starting does not answer; here only serving workers are asked, and one that does not answer in
 * time is left out of that scrape.)
 */
import cluster, { type Worker } from 'node:cluster'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client'
import { registry } from '../../observability/metrics.js'
import { hostPort } from '../host-port.js'

export interface Scrape {
  contentType: string
  body: string
}

/** A worker asks the primary for the instance's metrics (main port); the primary asks each worker for its own. */
const ASK_SUM = 'filestorage:metrics?'
const SUM = 'filestorage:metrics'
const ASK_OWN = 'filestorage:own-metrics?'
const OWN = 'filestorage:own-metrics'
/** How long the primary waits for a worker's metrics; one that does not answer in time is left out of the scrape. */
const WORKER_TIMEOUT_MS = 3000
/** How long a worker waits for the primary's sum. */
const SUM_TIMEOUT_MS = 5000

interface Message {
  type: string
  id: number
  body?: string
  metrics?: MetricObjectWithValues<MetricValue<string>>[]
  error?: string
}

/** The instance's metrics in Prometheus's text format, from wherever this process stands. */
export async function scrape(): Promise<Scrape> {
  const body = cluster.isWorker ? await askPrimary() : aggregating ? await sumOfWorkers() : await registry.metrics()
  return { contentType: registry.contentType, body }
}

let aggregating = false
const ready = new Set<Worker>()
const waiting = new Map<number, (message: Message) => void>()
let lastId = 0

/** Waits for the answer `id` (a worker's metrics, the primary's sum), or undefined after `ms`. */
function answer(id: number, ms: number): Promise<Message | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      waiting.delete(id)
      resolve(undefined)
    }, ms)
    waiting.set(id, (message) => {
      clearTimeout(timer)
      waiting.delete(id)
      resolve(message)
    })
  })
}

/**
 * In the primary of WORKERS: sums the workers' metrics for every scrape, and answers workers that
 * ask for the sum. Only workers that serve (`workerReady`) are asked: one still starting has no
 * metrics yet and would not answer.
 */
export function aggregateWorkers(): void {
  if (aggregating) return
  aggregating = true
  cluster.on('message', (worker, message: Message) => {
    if (message?.type === OWN) waiting.get(message.id)?.(message)
    if (message?.type !== ASK_SUM) return
    sumOfWorkers().then(
      (body) => worker.isConnected() && worker.send({ type: SUM, id: message.id, body } satisfies Message),
      (e: Error) => worker.isConnected() && worker.send({ type: SUM, id: message.id, error: e.message } satisfies Message),
    )
  })
}

/** In the primary: `worker` serves, and has its answer to metrics requests installed. */
export function workerReady(worker: Worker): void {
  ready.add(worker)
  worker.once('exit', () => ready.delete(worker))
}

async function sumOfWorkers(): Promise<string> {
  const workers = [...ready].filter((w) => w.isConnected())
  const answers = await Promise.all(
    workers.map((w) => {
      const id = ++lastId
      const answered = answer(id, WORKER_TIMEOUT_MS)
      w.send({ type: ASK_OWN, id } satisfies Message)
      return answered
    }),
  )
  const metrics = answers.flatMap((a) => (a?.metrics ? [a.metrics] : []))
  if (metrics.length === 0 && workers.length > 0) throw new Error('no worker answered with its metrics in time')
  return AggregatorRegistry.aggregate(metrics).metrics()
}

let answering = false

/** In a worker (before it reports that it serves): answers the primary with this process's registry, and takes the sums it asks for. */
export function reportToPrimary(): void {
  if (answering) return
  answering = true
  process.on('message', (message: Message) => {
    if (message?.type === SUM) waiting.get(message.id)?.(message)
    if (message?.type !== ASK_OWN) return
    registry.getMetricsAsJSON().then(
      (metrics) => process.send?.({ type: OWN, id: message.id, metrics } satisfies Message),
      (e: Error) => process.send?.({ type: OWN, id: message.id, error: e.message } satisfies Message),
    )
  })
}

async function askPrimary(): Promise<string> {
  const id = ++lastId
  const answered = answer(id, SUM_TIMEOUT_MS)
  process.send?.({ type: ASK_SUM, id } satisfies Message)
  const message = await answered
  if (!message) throw new Error('the primary did not answer with the metrics in time')
  if (message.body === undefined) throw new Error(message.error ?? 'no metrics')
  return message.body
}

export interface MetricsServer {
  port: number
  url: string
  stop(): Promise<void>
}

/** The METRICS_PORT listener: `GET /metrics`, nothing else. */
export async function serveMetrics(host: string, port: number, log: (line: string) => void): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(path === '/metrics' ? 405 : 404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('metrics are at GET /metrics\n')
      return
    }
    scrape().then(
      ({ contentType, body }) => {
        res.writeHead(200, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' })
        res.end(req.method === 'HEAD' ? undefined : body)
      },
      (e: Error) => {
        log(`metrics: the scrape failed: ${e.message}`)
        res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`the metrics could not be gathered: ${e.message}\n`)
      },
    )
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const bound = (server.address() as AddressInfo).port
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
  return {
    port: bound,
    url: `http://${hostPort(shownHost, bound)}/metrics`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
