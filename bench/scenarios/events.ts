/**
 * Section 7: what events cost a 4 KiB upload (PUT) under load (wrk, 32 connections, fixed
 * duration): the service with events delivered to one endpoint (a node:http receiver in the bench's
 * process answering 204) against the same service without events, in one rotation, on the disk
 * store and, when a MongoDB-wire server is at hand, on the mongo store. An event is recorded with
 * each change (its intent written and confirmed) and delivered by the relay in the same process, so
 * the difference is recording plus delivery. The note says how many events reached the endpoint
 * during the measured runs and how long the rest took to arrive once the load stopped.
 */
import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { rotate, type Contender } from '../lib/compare.js'
import type { BenchContext } from '../lib/context.js'
import { mongodbServer } from '../lib/mongodb-server.js'
import { comparedRow, unavailable, type Row } from '../lib/results.js'
import { loadSample } from '../lib/samples.js'
import { startService, type RunningService } from '../lib/service.js'
import { sizeLabel } from '../lib/settings.js'
import { load, putLoad } from '../lib/wrk.js'

const SECTION = '7. events'
const PEER = 'the same service, no events'
/** Upload paths cycle over this many names per wrk thread (most uploads replace a file: file.replaced). */
const NAMES = 1024

/** An endpoint that takes every event and counts them. */
interface Sink {
  url: string
  received: number
  close(): Promise<void>
}

async function startSink(): Promise<Sink> {
  const sink = { url: '', received: 0 } as Sink
  const server: Server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      sink.received++
      res.writeHead(204).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  sink.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`
  sink.close = () => new Promise<void>((resolve) => server.close(() => resolve()))
  return sink
}

export async function events(ctx: BenchContext): Promise<Row[]> {
  const label = `upload ${sizeLabel(ctx.settings.smallBytes)} (PUT)`
  const rows = [await measureStore(ctx, 'disk', label)]
  const server = mongodbServer(join(ctx.workDir, 'services'))
  const name = `${label}, mongo store: events to one endpoint`
  if (server.uri === undefined) return [...rows, unavailable(SECTION, name, 'req/s', server.reason)]
  try {
    rows.push(await measureStore(ctx, 'mongo', label, server.uri))
  } finally {
    server.stop()
  }
  return rows
}

async function measureStore(ctx: BenchContext, store: 'disk' | 'mongo', label: string, mongodbUri?: string): Promise<Row> {
  const { settings } = ctx
  const sink = await startSink()
  const secret = `whsec_${randomBytes(32).toString('base64')}`
  const services: RunningService[] = []
  try {
    const start = async (events: boolean) => {
      const name = `${store}-${events ? 'events' : 'plain'}`
      const service = await startService({
        storageDir: join(ctx.workDir, name),
        logFile: join(ctx.workDir, `${name}.log`),
        ...(mongodbUri ? { mongodbUri, mongodbDb: `filestorage_bench_${name.replace('-', '_')}` } : {}),
        ...(events ? { env: { WEBHOOK_URL: sink.url, WEBHOOK_SECRET: secret } } : {}),
      })
      services.push(service)
      return service
    }
    const withEvents = await start(true)
    const plain = await start(false)
    let requested = 0
    const contender = (service: RunningService, counted: boolean): Contender => {
      const options = putLoad(service, `/filestorage/v1/${store}/upload/bench/`, {
        names: NAMES,
        bodyBytes: settings.smallBytes,
        connections: settings.connections,
        threads: settings.wrkThreads,
      })
      return {
        pids: service.pids,
        warmup: async () => {
          const r = await load({ ...options, seconds: settings.warmupSeconds })
          if (counted) requested += r.requests - r.errors
        },
        measure: async () => {
          const r = await load({ ...options, seconds: settings.loadSeconds })
          if (counted) requested += r.requests - r.errors
          return loadSample(r)
        },
      }
    }
    ctx.log(`${label} on the ${store} store, ${settings.connections} connections: events to one endpoint, against none`)
    const loadEnded = { at: 0, received: 0 }
    const [ours, peer] = await rotate(settings.runs, [contender(withEvents, true), contender(plain, false)])
    loadEnded.at = performance.now()
    loadEnded.received = sink.received
    // The rest of the events, delivered once the load stopped (bounded: the bench must end).
    const deadline = Date.now() + 120_000
    while (sink.received < requested && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
    const drainMs = performance.now() - loadEnded.at
    // wrk counts as failed an upload it gave up waiting for, which the service may still have stored
    // (and announced): the events can outnumber the uploads it counted.
    const note =
      `${requested} uploads answered 2xx to wrk on the side with events, ${sink.received} events received` +
      (sink.received >= requested ? `, the last ${Math.round(drainMs)} ms after the load stopped` : ', not all within 2 minutes') +
      `; ${NAMES} names per wrk thread, so most uploads replace a file`
    return comparedRow({
      section: SECTION,
      name: `${label}, ${store} store: events to one endpoint`,
      unit: 'req/s',
      peerName: PEER,
      peer: peer!.figure,
      ...(peer!.peakRss !== undefined ? { peerPeakRss: peer!.peakRss } : {}),
      ours: ours!.figure,
      oursPeakRss: ours!.peakRss ?? 0,
      note,
    })
  } finally {
    for (const service of services) await service.stop()
    await sink.close()
  }
}
