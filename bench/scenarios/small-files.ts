/**
 * Section 2: 4 KiB downloads and uploads under load (wrk, 32 connections, fixed duration), every
 * server side by side in one rotation: our service (disk store) on Node and on Bun, each with one
 * process and with WORKERS=2, a bare `node:http` server with 1 and 2 workers (Node's ceiling),
 * nginx, and the SeaweedFS filer, against which every row's ratio is taken. Targets (issue 22): on
 * Node, one process, GET 1.0x and PUT 0.8x; on Bun, one process 2.5x and 1.25x, two 3.0x and 1.5x.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startBareNode } from '../lib/bare-node.js'
import { rotate, type Contender, type Measured } from '../lib/compare.js'
import type { BenchContext } from '../lib/context.js'
import { upload } from '../lib/curl.js'
import { startNginx } from '../lib/nginx.js'
import { comparedRow, unavailable, type Row } from '../lib/results.js'
import { loadSample } from '../lib/samples.js'
import { startSeaweedFs, WEED_INSTALL, weedVersion } from '../lib/seaweedfs.js'
import { type Runtime, startService } from '../lib/service.js'
import { sizeLabel } from '../lib/settings.js'
import { load, type LoadOptions } from '../lib/wrk.js'

const SECTION = '2. small files'
/** Upload paths cycle over this many names per wrk thread: most uploads replace a file. */
const NAMES = 1024
const PEER = 'SeaweedFS filer'
const OPERATIONS = ['GET', 'PUT'] as const
type Operation = (typeof OPERATIONS)[number]

/** A server under small-file load. */
interface SmallFileServer {
  name: string
  /** Every process of the server, for CPU time and peak RSS. */
  pids: number[]
  /** The 4 KiB file's URL. */
  getUrl: string
  /** Uploads go to `<origin><putPrefix><thread>-<n>`. */
  origin: string
  putPrefix: string
  /** Our service's bearer token (access control is on, as in production). */
  token?: string
  /** Our service: the ratio the issue asks of it against the SeaweedFS filer, per operation. */
  target?: Partial<Record<Operation, number>>
  /** Another server, measured for context. */
  reference?: boolean
  notes?: Partial<Record<Operation, string>>
}

/** A server that could not be measured, and why. */
interface Missing {
  name: string
  missing: string
}

/** Our service's setups: runtime, processes, and the targets of issue 22 (none for Node with two). */
const OURS: { runtime: Runtime; workers: number; target?: Record<Operation, number> }[] = [
  { runtime: 'node', workers: 1, target: { GET: 1.0, PUT: 0.8 } },
  { runtime: 'node', workers: 2 },
  { runtime: 'bun', workers: 1, target: { GET: 2.5, PUT: 1.25 } },
  { runtime: 'bun', workers: 2, target: { GET: 3.0, PUT: 1.5 } },
]

const ourName = (runtime: Runtime, workers: number) =>
  `filestorage on ${runtime === 'node' ? 'Node' : 'Bun'} (disk store), ${workers === 1 ? '1 process' : `WORKERS=${workers}`}`

export async function smallFiles(ctx: BenchContext): Promise<Row[]> {
  const { settings } = ctx
  const size = sizeLabel(settings.smallBytes)
  const stops: (() => Promise<void>)[] = []
  try {
    const servers = await startServers(ctx, stops)
    const measurable = servers.filter((s): s is SmallFileServer => !('missing' in s))
    const weed = weedVersion()
    const rows: Row[] = []
    for (const operation of OPERATIONS) {
      const label = operation === 'GET' ? `download ${size} (GET)` : `upload ${size} (PUT)`
      ctx.log(`${label} x ${settings.connections} connections: ${measurable.map((s) => s.name).join('; ')}`)
      const figures = await rotate(
        settings.runs,
        measurable.map((server) => contender(ctx, server, operation)),
      )
      const of = new Map(measurable.map((server, i) => [server.name, figures[i]!]))
      rows.push(...servers.flatMap((server) => rowsOf(server, operation, label, of, weed)))
    }
    return rows
  } finally {
    for (const stop of stops.reverse()) await stop()
  }
}

/** Starts every server of the section, each holding the 4 KiB file; pushes their stops onto `stops`. */
async function startServers(ctx: BenchContext, stops: (() => Promise<void>)[]): Promise<(SmallFileServer | Missing)[]> {
  const small = join(ctx.workDir, 'small.bin')
  writeFileSync(small, Buffer.alloc(ctx.settings.smallBytes, 0x61))
  /** Starts a server, stopped at the end of the section; stores the 4 KiB file through its own PUT. */
  const started = async <T extends { stop(): Promise<void>; token?: string }>(server: Promise<T>, storeAt?: (s: T) => string): Promise<T> => {
    const s = await server
    stops.push(() => s.stop())
    if (storeAt) await upload(storeAt(s), small, undefined, s.token)
    return s
  }
  const servers: (SmallFileServer | Missing)[] = []
  let ourStore = ''
  for (const { runtime, workers, target } of OURS) {
    const storageDir = join(ctx.workDir, `store-${runtime}-${workers}`)
    const service = await started(
      startService({ storageDir, workers, runtime, logFile: join(ctx.workDir, `service-${runtime}-${workers}.log`) }),
      (s) => `${s.api}/disk/upload/small/get.bin`,
    )
    if (runtime === 'node' && workers === 1) ourStore = storageDir
    if (workers > 1 && service.pids.length === 1) {
      await service.stop()
      servers.push({ name: ourName(runtime, workers), missing: `with WORKERS=${workers} the service ran as one process` })
      continue
    }
    servers.push({
      name: ourName(runtime, workers),
      pids: service.pids,
      getUrl: `${service.api}/disk/download/small/get.bin`,
      origin: new URL(service.api).origin,
      putPrefix: '/filestorage/v1/disk/upload/small/put/',
      token: service.token,
      ...(target ? { target } : {}),
    })
  }
  for (const workers of [1, 2]) {
    const peer = await started(
      startBareNode({ root: join(ctx.workDir, `bare-${workers}`), workers, logFile: join(ctx.workDir, `bare-${workers}.log`) }),
      (s) => `${s.url}/get.bin`,
    )
    servers.push({
      name: workers === 1 ? 'bare node:http, 1 process' : `bare node:http, ${workers} cluster workers`,
      pids: peer.pids,
      getUrl: `${peer.url}/get.bin`,
      origin: peer.url,
      putPrefix: '/put-',
      reference: true,
    })
  }
  // nginx serves our WORKERS=1 store's folder, as the bench's disk rows have it serve.
  const nginx = await started(startNginx({ staticRoot: ourStore, davRoot: join(ctx.workDir, 'dav'), prefix: join(ctx.workDir, 'nginx') }))
  servers.push({
    name: 'nginx, 1 worker',
    pids: [nginx.workerPid],
    getUrl: `${nginx.url}/static/small/get.bin`,
    origin: nginx.url,
    putPrefix: '/dav/small/put/',
    reference: true,
    notes: { GET: 'static, sendfile', PUT: 'WebDAV PUT (dav_methods)' },
  })
  if (!weedVersion()) return [...servers, { name: PEER, missing: `not built: run ${WEED_INSTALL}` }]
  const filer = await started(
    startSeaweedFs({ dataDir: join(ctx.workDir, 'seaweedfs'), logFile: join(ctx.workDir, 'seaweedfs.log') }),
    (s) => `${s.filer}/small/get.bin`,
  )
  return [...servers, { name: PEER, pids: filer.pids, getUrl: `${filer.filer}/small/get.bin`, origin: filer.filer, putPrefix: '/small/put/' }]
}

function contender(ctx: BenchContext, server: SmallFileServer, operation: Operation): Contender {
  const { settings } = ctx
  const options: Omit<LoadOptions, 'seconds'> = {
    ...(operation === 'GET'
      ? { method: 'GET', url: server.getUrl, connections: settings.connections, threads: settings.wrkThreads }
      : {
          method: 'PUT',
          url: `${server.origin}/`,
          pathPrefix: server.putPrefix,
          names: NAMES,
          bodyBytes: settings.smallBytes,
          connections: settings.connections,
          threads: settings.wrkThreads,
        }),
    ...(server.token ? { token: server.token } : {}),
  }
  return {
    pids: server.pids,
    warmup: () => load({ ...options, seconds: settings.warmupSeconds }),
    measure: async () => loadSample(await load({ ...options, seconds: settings.loadSeconds })),
  }
}

/** The server's row for one operation, against the SeaweedFS filer's figure when there is one. */
function rowsOf(server: SmallFileServer | Missing, operation: Operation, label: string, of: Map<string, Measured>, weed: string | undefined): Row[] {
  const name = `${label}: ${server.name}`
  if ('missing' in server) return [unavailable(SECTION, name, 'req/s', server.missing)]
  if (server.name === PEER) return [] // its figures are every other row's peer column
  const ours = of.get(server.name)!
  const peer = of.get(PEER)
  const notes = [server.notes?.[operation], operation === 'PUT' ? `${NAMES} names per wrk thread, so most uploads replace a file` : undefined]
  const target = server.target?.[operation]
  if (target !== undefined) notes.push(`target ${target}x the SeaweedFS filer`)
  if (!weed) notes.push(`no SeaweedFS figure: run ${WEED_INSTALL}`)
  return [
    comparedRow({
      section: SECTION,
      name,
      unit: 'req/s',
      ...(peer ? { peerName: PEER, peer: peer.figure, peerPeakRss: peer.peakRss } : {}),
      ours: ours.figure,
      oursPeakRss: ours.peakRss,
      ...(target !== undefined ? { target } : {}),
      ...(server.reference ? { reference: true } : {}),
      note: notes.filter(Boolean).join('; '),
    }),
  ]
}
