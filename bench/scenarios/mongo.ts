/**
 * Section 4: the `mongo` store. GridFS upload and download through our HTTP API against the
 * driver's own GridFSBucket streams with no HTTP at all (the floor of our overhead), and 4 KiB
 * inline reads per second. Our side is measured once the service has a `mongo` store (issue-mongo);
 * the floor is measured whenever a MongoDB-wire server is at hand.
 *
 * FerretDB (the server the tests use) is slow with GridFS, so the transfer is smaller than in
 * section 1 (256 MiB) and the database is emptied before each upload.
 */
import { createReadStream, writeFileSync } from 'node:fs'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { join } from 'node:path'
import { GridFSBucket, MongoClient, type Db, type ObjectId } from 'mongodb'
import { compare } from '../lib/compare.js'
import type { BenchContext } from '../lib/context.js'
import { download, upload, type Transfer } from '../lib/curl.js'
import { mongodbServer } from '../lib/mongodb-server.js'
import { comparedRow, figureOf, unavailable, type Row, type RunSample } from '../lib/results.js'
import { loadSample, transferSample } from '../lib/samples.js'
import { startService, type RunningService } from '../lib/service.js'
import { sizeLabel } from '../lib/settings.js'
import { load } from '../lib/wrk.js'

const SECTION = '4. MongoDB'
const FLOOR = 'driver GridFSBucket, no HTTP'
const SERVICE_DB = 'filestorage_bench'
const FLOOR_DB = 'filestorage_bench_floor'

export async function mongo(ctx: BenchContext): Promise<Row[]> {
  const { gridfsBytes, smallBytes } = ctx.settings
  const names = {
    up: `GridFS upload ${sizeLabel(gridfsBytes)} (PUT)`,
    down: `GridFS download ${sizeLabel(gridfsBytes)} (GET)`,
    inline: `inline download ${sizeLabel(smallBytes)} (GET)`,
  }
  const server = mongodbServer(join(ctx.workDir, 'services'))
  if (server.uri === undefined) {
    return Object.values(names).map((n) => unavailable(SECTION, n, n === names.inline ? 'req/s' : 'MB/s', server.reason))
  }
  ctx.log(`MongoDB-wire server: ${server.what}`)
  const client = await MongoClient.connect(server.uri, { serverSelectionTimeoutMS: 10_000 })
  let service: RunningService | undefined
  try {
    await client.db(SERVICE_DB).dropDatabase() // what an earlier run left
    service = await startService({
      storageDir: join(ctx.workDir, 'store'),
      logFile: join(ctx.workDir, 'service.log'),
      mongodbUri: server.uri,
      mongodbDb: SERVICE_DB,
    })
    const storeMissing = await mongoStoreMissing(service.api, service.token)
    const source = ctx.sourceFile(gridfsBytes)
    const floorDb = client.db(FLOOR_DB)
    const rows: Row[] = []

    ctx.log(names.up)
    const floorUpload = () => timedFloorUpload(floorDb, source, gridfsBytes)
    const api = service.api
    const auth = { Authorization: `Bearer ${service.token}` }
    const oursUpload = async () => {
      // Into an empty bucket, as the floor: the previous copy goes first.
      await fetch(`${api}/mongo/delete/bench/gridfs.bin`, { method: 'DELETE', headers: auth }).then((r) => r.body?.cancel())
      return rate(await upload(`${api}/mongo/upload/bench/gridfs.bin`, source, 600, service!.token))
    }
    rows.push(await row(ctx, names.up, storeMissing, service.pid, oursUpload, floorUpload))

    ctx.log(names.down)
    const floorId = await floorUploadForRead(floorDb, source)
    const floorDownload = () => timedFloorDownload(floorDb, floorId)
    const oursDownload = async () => rate(await download(`${api}/mongo/download/bench/gridfs.bin`, 600, service!.token))
    rows.push(await row(ctx, names.down, storeMissing, service.pid, oursDownload, floorDownload))

    if (storeMissing) {
      rows.push(unavailable(SECTION, names.inline, 'req/s', storeMissing))
    } else {
      ctx.log(names.inline)
      const small = join(ctx.workDir, 'small.bin')
      writeFileSync(small, Buffer.alloc(smallBytes, 0x61))
      await upload(`${api}/mongo/upload/bench/inline.bin`, small, undefined, service.token)
      const settings = ctx.settings
      const url = `${api}/mongo/download/bench/inline.bin`
      const options = { url, method: 'GET' as const, connections: settings.connections, threads: settings.wrkThreads, token: service.token }
      const result = await compare(settings.runs, {
        pids: [service.pid],
        warmup: () => load({ ...options, seconds: settings.warmupSeconds }),
        measure: async () => {
          return loadSample(await load({ ...options, seconds: settings.loadSeconds }))
        },
      })
      rows.push({ section: SECTION, name: names.inline, unit: 'req/s', ...result })
    }
    return rows.map((r) => ({ ...r, note: [r.note, `server: ${server.what}`].filter(Boolean).join('; ') }))
  } finally {
    await service?.stop()
    await client.db(FLOOR_DB).dropDatabase().catch(() => {})
    await client.close()
    server.stop()
  }
}

/** A reason when the service has no `mongo` store; undefined when it has one. */
async function mongoStoreMissing(api: string, token: string): Promise<string | undefined> {
  const res = await fetch(`${api}/mongo/list/`, { headers: { Authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) })
  await res.body?.cancel()
  if (res.status === 200) return undefined
  return `our service has no \`mongo\` store yet with MONGODB_URI set (GET /filestorage/v1/mongo/list/ answered ${res.status}; issue-mongo)`
}

async function row(
  ctx: BenchContext,
  name: string,
  storeMissing: string | undefined,
  pid: number,
  ours: () => Promise<RunSample>,
  floor: () => Promise<RunSample>,
): Promise<Row> {
  const base = { section: SECTION, name, unit: 'MB/s' as const, peerName: FLOOR }
  if (storeMissing) {
    const samples: RunSample[] = []
    for (let i = 0; i < ctx.settings.runs; i++) samples.push(await floor())
    return { ...base, notAvailable: storeMissing, peer: figureOf(samples) }
  }
  // No warm-up transfer of the full size: FerretDB makes each one long; the first run warms up.
  return comparedRow({ ...base, ...(await compare(ctx.settings.runs, { pids: [pid], measure: ours }, { pids: [], measure: floor })) })
}

const rate = (t: Transfer): RunSample => transferSample(t.bytes, t.seconds)

/** Drops the floor's bucket, so each upload starts from an empty one. */
async function emptyBucket(db: Db): Promise<GridFSBucket> {
  const bucket = new GridFSBucket(db)
  await bucket.drop().catch(() => {}) // NamespaceNotFound when already empty
  return bucket
}

async function timedFloorUpload(db: Db, source: string, bytes: number): Promise<RunSample> {
  const bucket = await emptyBucket(db)
  return ownCpu(async () => {
    const started = performance.now()
    await pipeline(createReadStream(source, { highWaterMark: 1024 * 1024 }), bucket.openUploadStream('floor.bin'))
    return transferSample(bytes, (performance.now() - started) / 1000)
  })
}

async function floorUploadForRead(db: Db, source: string): Promise<ObjectId> {
  const stream = (await emptyBucket(db)).openUploadStream('floor.bin')
  await pipeline(createReadStream(source, { highWaterMark: 1024 * 1024 }), stream)
  return stream.id
}

async function timedFloorDownload(db: Db, id: ObjectId): Promise<RunSample> {
  let bytes = 0
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length
      callback()
    },
  })
  return ownCpu(async () => {
    const started = performance.now()
    await pipeline(new GridFSBucket(db).openDownloadStream(id), sink)
    return transferSample(bytes, (performance.now() - started) / 1000)
  })
}

/**
 * The floor runs in this process, which does nothing else meanwhile (the RSS watch aside), so its
 * CPU is this process's own over the run: comparable with our service's, FerretDB's not counted in either.
 */
async function ownCpu(run: () => Promise<RunSample>): Promise<RunSample> {
  const before = process.cpuUsage()
  const sample = await run()
  const used = process.cpuUsage(before)
  return { ...sample, cpuMs: (used.user + used.system) / 1000 }
}
