/**
 * Section 2: 4 KiB downloads and uploads under load (wrk, 32 connections, fixed duration), every
 * server side by side in one rotation: our service (disk store) with WORKERS=1 and WORKERS=2, a
 * bare `node:http` server with 1 and 2 workers (Node's ceiling), nginx, and the SeaweedFS filer,
 * against which every row's ratio is taken (issue 12's targets: 1.0x with one worker, 1.5x with two).
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
import { startService } from '../lib/service.js'
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
  /** Our service: the ratio the issue asks of it against the SeaweedFS filer. */
  target?: number
  /** Another server, measured for context. */
  reference?: boolean
  notes?: Partial<Record<Operation, string>>
}

/** A server that could not be measured, and why. */
interface Missing {
  name: string
  missing: string
}

const ourName = (workers: number) => `filestorage (disk store), WORKERS=${workers}`

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
  for (const workers of [1, 2]) {
    const storageDir = join(ctx.workDir, `store-${workers}`)
    const service = await started(
      startService({ storageDir, workers, logFile: join(ctx.workDir, `service-${workers}.log`) }),
      (s) => `${s.api}/disk/upload/small/get.bin`,
    )
    if (workers === 1) ourStore = storageDir
    if (workers > 1 && service.pids.length === 1) {
      await service.stop()
      servers.push({ name: ourName(workers), missing: `not supported yet: with WORKERS=${workers} the service ran as one process` })
      continue
    }
    servers.push({
      name: ourName(workers),
      pids: service.pids,
      getUrl: `${service.api}/disk/download/small/get.bin`,
      origin: new URL(service.api).origin,
      putPrefix: '/filestorage/v1/disk/upload/small/put/',
      token: service.token,
      target: workers === 1 ? 1.0 : 1.5,
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
  if (server.target !== undefined) notes.push(`target ${server.target.toFixed(1)}x the SeaweedFS filer`)
  if (!weed) notes.push(`no SeaweedFS figure: run ${WEED_INSTALL}`)
  return [
    comparedRow({
      section: SECTION,
      name,
      unit: 'req/s',
      ...(peer ? { peerName: PEER, peer: peer.figure, peerPeakRss: peer.peakRss } : {}),
      ours: ours.figure,
      oursPeakRss: ours.peakRss,
      ...(server.target !== undefined ? { target: server.target } : {}),
      ...(server.reference ? { reference: true } : {}),
      note: notes.filter(Boolean).join('; '),
    }),
  ]
}
