/**
 * A 256 MiB file through HTTP on the mongo store, where it goes to GridFS, with the service as its
 * own process: memory stays flat both ways (measured from /proc, never time), and a Range read of
 * the last KiB fetches only the chunk that holds it (seen through the driver's command monitoring).
 *
 * 256 MiB, not a gigabyte: what a GridFS transfer holds is a chunk (255 KiB) and a cursor batch (up
 * to FerretDB's 40 MB when uncapped), whatever the file's size, and the bound below is a quarter of
 * the file, so a store that held the file, or a quarter of it, or an uncapped batch, fails. The
 * gigabyte runs are the disk and s3 stores' (disk-large-file, s3-large-file). On FerretDB every
 * query not by `_id` scans the whole chunks collection (docs/mongo.md), so that a gigabyte here
 * costs minutes of scanning and proves nothing more.
 */
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MongoClient } from 'mongodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MongoConnection, MongoDriver } from '../../src/storage/index.js'
import { requireService } from '../helpers/external.js'
import { dropDatabase, randomDbName, watchChunkReads } from '../helpers/mongo.js'
import { type ProcessService, spawnService } from '../helpers/process-service.js'
import { generated, readAll } from '../helpers/streams.js'

const uri = requireService('MONGODB_URI', 'MongoDB')
const MiB = 1024 ** 2
const SIZE = 256 * MiB
/**
 * How much the service's resident memory may grow while moving the file, whatever its size (a chunk
 * and a cursor batch, plus what the allocator keeps): under the file itself, and under what an
 * uncapped cursor batch takes (157 MiB measured with the cap removed). A download grew 72 MiB on a
 * loaded CI machine.
 */
const FLAT = 100 * MiB
const CHUNK = 255 * 1024 // GridFSBucket's default chunk size
const PATH = 'big/quarter-gib.bin'

describe.runIf(uri !== undefined)('256 MiB through HTTP on the mongo store (GridFS)', () => {
  const db = randomDbName('large')
  let dir: string
  let svc: ProcessService
  let sha256: string
  let tail: Buffer

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'filestorage-mongo-1g-'))
    svc = await spawnService({ STORAGE_DIR: dir, MONGODB_URI: uri!, MONGODB_DB: db })
    // Warm up: the first requests load code, connect and fill pools; what follows must not grow.
    for (let i = 0; i < 3; i++) {
      await fetch(`${svc.api}/mongo/upload/warm.bin`, { method: 'PUT', body: new Uint8Array(4 * MiB) })
      await (await fetch(`${svc.api}/mongo/download/warm.bin`)).arrayBuffer()
    }
  }, 120_000)
  afterAll(async () => {
    await svc?.stop()
    await dropDatabase(uri!, db)
    await rm(dir, { recursive: true, force: true })
  }, 120_000)

  it('uploads and downloads 256 MiB with flat memory and the right sha256', { timeout: 300_000 }, async () => {
    const source = generated(SIZE, 2025)
    await svc.resetPeakRss()
    const before = await svc.rss()
    // A body of unknown length: held only up to the inline threshold, then streamed into GridFS.
    const res = await fetch(`${svc.api}/mongo/upload/${PATH}`, { method: 'PUT', body: source.stream, duplex: 'half' } as RequestInit)
    expect(res.status).toBe(201)
    const info = (await res.json()) as { size: number; sha256: string; driver: string }
    expect(info).toMatchObject({ size: SIZE, sha256: source.digest(), driver: 'gridfs' })
    sha256 = info.sha256
    const uploadGrowth = (await svc.peakRss()) - before
    console.log(`256 MiB upload to GridFS: service RSS before ${(before / MiB).toFixed(0)} MiB, peak growth ${(uploadGrowth / MiB).toFixed(1)} MiB`)
    expect(uploadGrowth).toBeLessThan(FLAT)

    await svc.resetPeakRss()
    const beforeDownload = await svc.rss()
    const download = await fetch(`${svc.api}/mongo/download/${PATH}`)
    expect(download.headers.get('content-length')).toBe(String(SIZE))
    const hash = createHash('sha256')
    let received = 0
    let last = Buffer.alloc(0)
    for await (const chunk of download.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk)
      received += chunk.length
      last = Buffer.concat([last, chunk]).subarray(-1024) // keeps the last KiB for the range test
    }
    tail = last
    expect(received).toBe(SIZE)
    expect(hash.digest('hex')).toBe(sha256)
    const downloadGrowth = (await svc.peakRss()) - beforeDownload
    console.log(`256 MiB download from GridFS: peak growth ${(downloadGrowth / MiB).toFixed(1)} MiB`)
    expect(downloadGrowth).toBeLessThan(FLAT)
  })

  it('reads the last KiB of it through a Range, fetching only the last chunk', { timeout: 180_000 }, async () => {
    expect(tail).toHaveLength(1024)
    const res = await fetch(`${svc.api}/mongo/download/${PATH}`, { headers: { range: 'bytes=-1024' } })
    expect(res.status).toBe(206)
    expect(res.headers.get('content-range')).toBe(`bytes ${SIZE - 1024}-${SIZE - 1}/${SIZE}`)
    expect(Buffer.from(await res.arrayBuffer()).equals(tail)).toBe(true)

    // The same read through the driver, on the same database, watching what it asks MongoDB for.
    const client = new MongoClient(uri!, { monitorCommands: true, serverSelectionTimeoutMS: 10_000 })
    const store = MongoDriver.open({ connection: new MongoConnection(client), db })
    const reads = watchChunkReads(client)
    try {
      const { file, body } = await store.read(PATH, { start: SIZE - 1024, end: SIZE - 1 })
      expect(file.sha256).toBe(sha256)
      expect((await readAll(body)).equals(tail)).toBe(true)
      const lastChunk = Math.floor((SIZE - 1024) / CHUNK)
      console.log(`range of the last KiB: ${reads.documents} chunk document(s) read, find ${JSON.stringify(reads.finds)}`)
      expect(reads.documents).toBe(1)
      expect(reads.finds).toEqual([{ filter: expect.objectContaining({ n: { $gte: lastChunk } }), limit: 1 }])
    } finally {
      reads.stop()
      await store.close()
      await client.close()
    }
  })
})
