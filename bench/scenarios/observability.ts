/**
 * Section 7: what observing the service costs on 4 KiB downloads and uploads under load (wrk, as
 * section 2): our service on Node (one process, disk store, access control on) with nothing on
 * (the peer of every row), then with metrics (METRICS_PORT), with the request log (LOG_REQUESTS,
 * one JSON line per request to a file), with traces (OTEL_EXPORTER_OTLP_ENDPOINT, every request
 * sampled, spans sent in batches to a local OTLP sink that takes them and answers 200, so that the
 * cost measured is the service's alone), and with all three; on Bun, nothing against all three.
 * All in one rotation, so each row's ratio is against the same run's figure.
 *
 * BENCH_OBS_BASE=<dir> adds the service as built in <dir> (a checkout of the commit before
 * observability, built) as the peer of "Node, nothing on": what the code costs when all is off.
 */
import { writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { rotate, type Contender, type Measured } from '../lib/compare.js'
import type { BenchContext } from '../lib/context.js'
import { upload } from '../lib/curl.js'
import { freePort } from '../lib/ports.js'
import { comparedRow, type Row } from '../lib/results.js'
import { loadSample } from '../lib/samples.js'
import { type Runtime, startService, type RunningService } from '../lib/service.js'
import { sizeLabel } from '../lib/settings.js'
import { load, type LoadOptions, putLoad } from '../lib/wrk.js'

const SECTION = '8. observability'
const NAMES = 1024
const OPERATIONS = ['GET', 'PUT'] as const
type Operation = (typeof OPERATIONS)[number]

interface Setup {
  name: string
  runtime: Runtime
  /** The setup every other row of its runtime is compared with. */
  baseline?: boolean
  /** Compared with this setup instead of its runtime's baseline. */
  peer?: string
  env: (sink: string) => Promise<Record<string, string>>
  projectDir?: string
}

const BEFORE = 'Node, before observability (BENCH_OBS_BASE)'

const OFF = { LOG_REQUESTS: 'false' }
const metricsOn = async () => ({ METRICS_PORT: String(await freePort()) })
const logsOn = { LOG_REQUESTS: 'true', LOG_FORMAT: 'json' }
const tracesOn = (sink: string) => ({ OTEL_EXPORTER_OTLP_ENDPOINT: sink })

const SETUPS: Setup[] = [
  { name: 'Node, nothing on', runtime: 'node', baseline: true, env: async () => OFF },
  { name: 'Node, metrics', runtime: 'node', env: async () => ({ ...OFF, ...(await metricsOn()) }) },
  { name: 'Node, request log', runtime: 'node', env: async () => logsOn },
  { name: 'Node, traces', runtime: 'node', env: async (sink) => ({ ...OFF, ...tracesOn(sink) }) },
  { name: 'Node, all three', runtime: 'node', env: async (sink) => ({ ...logsOn, ...(await metricsOn()), ...tracesOn(sink) }) },
  { name: 'Bun, nothing on', runtime: 'bun', baseline: true, env: async () => OFF },
  { name: 'Bun, all three', runtime: 'bun', env: async (sink) => ({ ...logsOn, ...(await metricsOn()), ...tracesOn(sink) }) },
]

function setups(): Setup[] {
  const base = process.env.BENCH_OBS_BASE
  if (!base) return SETUPS
  const before: Setup = { name: BEFORE, runtime: 'node', env: async () => OFF, projectDir: base }
  const nothingOn = { ...SETUPS[0]!, peer: BEFORE }
  return [before, nothingOn, ...SETUPS.slice(1)]
}

export async function observability(ctx: BenchContext): Promise<Row[]> {
  const { settings } = ctx
  const small = join(ctx.workDir, 'small.bin')
  writeFileSync(small, Buffer.alloc(settings.smallBytes, 0x61))
  const sink = await startOtlpSink()
  const services: RunningService[] = []
  const all = setups()
  try {
    for (const [i, setup] of all.entries()) {
      const service = await startService({
        storageDir: join(ctx.workDir, `store-${i}`),
        runtime: setup.runtime,
        logFile: join(ctx.workDir, `service-${i}.log`),
        env: await setup.env(sink.url),
        ...(setup.projectDir ? { projectDir: setup.projectDir } : {}),
      })
      services.push(service)
      await upload(`${service.api}/disk/upload/small/get.bin`, small, undefined, service.token)
    }
    const rows: Row[] = []
    const size = sizeLabel(settings.smallBytes)
    for (const operation of OPERATIONS) {
      const label = operation === 'GET' ? `download ${size} (GET)` : `upload ${size} (PUT)`
      ctx.log(`${label}: ${all.map((s) => s.name).join('; ')}`)
      const figures = await rotate(
        settings.runs,
        services.map((service) => contender(ctx, service, operation)),
      )
      rows.push(...rowsOf(all, label, figures))
    }
    ctx.log(`OTLP sink took ${sink.requests()} batches`)
    return rows
  } finally {
    for (const service of services) await service.stop()
    await sink.stop()
  }
}

function rowsOf(all: Setup[], label: string, figures: Measured[]): Row[] {
  return all.flatMap((setup, i) => {
    if (setup.name === BEFORE || (setup.baseline && !setup.peer)) return []
    const peerIndex = setup.peer ? all.findIndex((s) => s.name === setup.peer) : all.findIndex((s) => s.baseline && s.runtime === setup.runtime)
    const peer = figures[peerIndex]!
    const ours = figures[i]!
    return [
      comparedRow({
        section: SECTION,
        name: `${label}: ${setup.name}`,
        unit: 'req/s',
        peerName: all[peerIndex]!.name,
        peer: peer.figure,
        ...(peer.peakRss !== undefined ? { peerPeakRss: peer.peakRss } : {}),
        ours: ours.figure,
        ...(ours.peakRss !== undefined ? { oursPeakRss: ours.peakRss } : {}),
        note: setup.peer ? 'the code of observability, all of it off' : 'against the same runtime with nothing on',
      }),
    ]
  })
}

function contender(ctx: BenchContext, service: RunningService, operation: Operation): Contender {
  const { settings } = ctx
  const wrk = { connections: settings.connections, threads: settings.wrkThreads }
  const options: Omit<LoadOptions, 'seconds'> =
    operation === 'GET'
      ? { method: 'GET', url: `${service.api}/disk/download/small/get.bin`, ...wrk, token: service.token }
      : putLoad(service, '/filestorage/v1/disk/upload/small/put/', { names: NAMES, bodyBytes: settings.smallBytes, ...wrk })
  return {
    pids: service.pids,
    warmup: () => load({ ...options, seconds: settings.warmupSeconds }),
    measure: async () => loadSample(await load({ ...options, seconds: settings.loadSeconds })),
  }
}

/** An OTLP/HTTP receiver that takes every batch and keeps nothing. */
async function startOtlpSink(): Promise<{ url: string; requests(): number; stop(): Promise<void> }> {
  let requests = 0
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      requests++
      res.writeHead(200, { 'Content-Type': 'application/x-protobuf', 'Content-Length': 0 }).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  }
}
