/**
 * Where Prometheus scrapes: `GET /metrics` on METRICS_PORT (a listener of its own, on METRICS_HOST,
 * loopback unless said otherwise), and with METRICS_ON_MAIN_PORT on the main port behind the
 * operator's right (service.ts).
 *
 * One scrape covers the whole instance. Alone, a process answers with its own registry. With
 * WORKERS, the primary holds the METRICS_PORT listener and asks every worker for its registry over
 * node:cluster's channel (prom-client's AggregatorRegistry), adding them up (counters and histograms
 * summed, gauges as each declares); a worker asked on the main port has the primary do the same for
 * it. The same channel serves on Bun, whose workers are node:cluster workers too.
 */
import cluster from 'node:cluster'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { AggregatorRegistry, type PrometheusContentType } from 'prom-client'
import { registry } from '../../observability/metrics.js'
import { hostPort } from '../host-port.js'

export interface Scrape {
  contentType: string
  body: string
}

const ASK = 'filestorage:metrics?'
const ANSWER = 'filestorage:metrics'
/** prom-client gives up on workers after 5 s; a worker asking the primary waits a little longer. */
const ASK_TIMEOUT_MS = 6000

interface Asked {
  type: typeof ASK
  id: number
}
interface Answered {
  type: typeof ANSWER
  id: number
  body?: string
  error?: string
}

/** The instance's metrics in Prometheus's text format, from wherever this process stands. */
export function scrape(): Promise<Scrape> {
  if (cluster.isWorker) return askPrimary()
  if (aggregator) return aggregator.clusterMetrics().then((body: string) => ({ contentType: registry.contentType, body }))
  return registry.metrics().then((body) => ({ contentType: registry.contentType, body }))
}

let aggregator: AggregatorRegistry<PrometheusContentType> | undefined

/** In the primary of WORKERS: sums the workers' metrics for every scrape, and answers workers that ask for them. */
export function aggregateWorkers(): void {
  if (aggregator) return
  aggregator = new AggregatorRegistry<PrometheusContentType>()
  const sum = aggregator
  cluster.on('message', (worker, message: Asked) => {
    if (message?.type !== ASK) return
    sum.clusterMetrics().then(
      (body: string) => worker.isConnected() && worker.send({ type: ANSWER, id: message.id, body } satisfies Answered),
      (e: Error) => worker.isConnected() && worker.send({ type: ANSWER, id: message.id, error: e.message } satisfies Answered),
    )
  })
}

let answering = false

/** In a worker: lets the primary read this process's registry (and is ready to ask it for the sum). */
export function reportToPrimary(): void {
  if (answering) return
  answering = true
  AggregatorRegistry.setRegistries([registry])
  new AggregatorRegistry<PrometheusContentType>() // its constructor installs the worker's answer to the primary
  process.on('message', (message: Answered) => {
    if (message?.type !== ANSWER) return
    const waiting = asked.get(message.id)
    asked.delete(message.id)
    waiting?.(message)
  })
}

const asked = new Map<number, (answer: Answered) => void>()
let lastId = 0

function askPrimary(): Promise<Scrape> {
  const id = ++lastId
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      asked.delete(id)
      reject(new Error('the primary did not answer with the metrics in time'))
    }, ASK_TIMEOUT_MS)
    asked.set(id, (answer) => {
      clearTimeout(timer)
      if (answer.error !== undefined || answer.body === undefined) reject(new Error(answer.error ?? 'no metrics'))
      else resolve({ contentType: registry.contentType, body: answer.body })
    })
    process.send?.({ type: ASK, id } satisfies Asked)
  })
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
