/**
 * The MongoDB drivers: the storage contract, unchanged, on each way of keeping the bytes
 * (mongo-inline, gridfs, and the combined mongo store), against the server MONGODB_URI points at;
 * then what only MongoDB shows: where the bytes are, what a move or a range read touches, the
 * catalog's folder records, leftovers the sweeper reclaims, parts shared by instances.
 */
import { type CommandStartedEvent, type Document, type Filter, GridFSBucket, ObjectId, type Sort } from 'mongodb'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import {
  compareCodePoints,
  compareEntries,
  MAX_INLINE_BYTES,
  MongoConnection,
  MongoDriver,
  type MongoDriverKind,
  type Store,
  type StoredEntry,
  withUploads,
} from '../../src/storage/index.js'
import { expectCode } from '../helpers/expect-error.js'
import { requireService } from '../helpers/external.js'
import { type TestDatabase, testDatabase, watchChunkReads, watchChunkWrites } from '../helpers/mongo.js'
import { runStoreChild } from '../helpers/store-children.js'
import { failingAfter, generated, heldUntil, readAll, sha256, streamOf, text } from '../helpers/streams.js'
import { CONTRACT_POLICY, describeStorageContract } from './contract.js'

const uri = requireService('MONGODB_URI', 'MongoDB')

/** Small enough that the contract's files fall on both sides of it. */
const INLINE_MAX = 64 * 1024
const CHUNK = 255 * 1024 // GridFSBucket's default chunk size
const HOUR = 60 * 60 * 1000

describe.runIf(uri !== undefined)('MongoDB drivers', () => {
  // Without a server the suite is collected (and reported skipped) but opens nothing.
  for (const kind of uri === undefined ? [] : (['mongo-inline', 'gridfs', 'mongo'] as MongoDriverKind[])) {
    const database = testDatabase(uri!, kind.replace('-', '_'))
    const connection = new MongoConnection(database.client)
    describeStorageContract(kind, {
      async open(policy) {
        await database.clear()
        return withUploads(MongoDriver.open({ connection, db: database.name, kind, inlineMaxBytes: INLINE_MAX }), policy)
      },
      cleanup: () => database.drop(),
    })
  }

  describe('the mongo store on its own', () => {
    let database: TestDatabase
    let store: Store
    const open = (kind: MongoDriverKind = 'mongo') =>
      withUploads(MongoDriver.open({ connection: new MongoConnection(database.client), db: database.name, kind, inlineMaxBytes: INLINE_MAX }), CONTRACT_POLICY)
    const catalog = () => database.db.collection('catalog')
    const count = (collection: string, filter = {}) => database.db.collection(collection).countDocuments(filter)
    const put = (path: string, content: string | Uint8Array, options = {}) =>
      store.put(path, streamOf(content), options).then((r) => r.file)

    if (uri !== undefined) database = testDatabase(uri, 'own', { monitorCommands: true })
    beforeEach(async () => {
      await store?.close()
      await database.clear()
      store = open()
    })
    afterAll(async () => {
      await store?.close()
      await database.drop()
    })

    for (const point of ['upload.complete.journaled', 'upload.complete.committed', 'upload.complete.finished']) {
      it(`a completion killed at ${point}: a retry answers the stored file once the dead one's lease runs out`, async () => {
        const content = Buffer.alloc(300_000, 5)
        const { uploadId } = await store.createUpload('crash/done.bin', { metadata: { crash: point } })
        await store.putPart(uploadId, 1, streamOf(content.subarray(0, 150_000)))
        await store.putPart(uploadId, 2, streamOf(content.subarray(150_000)))
        const child = { mongo: { uri: uri!, db: database.name }, uploads: { completionLeaseMs: 1500 }, op: 'complete', uploadId }
        expect((await runStoreChild(child, [point])).exit.signal).toBe('SIGKILL')
        const { file } = await store.completeUpload(uploadId)
        expect(file).toMatchObject({ sha256: sha256(content), size: content.length, metadata: { crash: point } })
        expect((await readAll((await store.read('crash/done.bin')).body)).equals(content)).toBe(true)
        expect((await store.completeUpload(uploadId)).file.sha256).toBe(sha256(content))
        await expectCode(store.uploadStatus(uploadId), 'not_found')
        expect(await count('upload_parts', { uploadId })).toBe(0)
      })
    }

    it('keeps files up to the threshold inline in their record, larger ones in GridFS', async () => {
      const under = await store.put('t/under', generated(INLINE_MAX - 1).stream, { expectedSize: INLINE_MAX - 1 })
      const at = await store.put('t/at', generated(INLINE_MAX).stream)
      const over = await store.put('t/over', generated(INLINE_MAX + 1).stream, { expectedSize: INLINE_MAX + 1 })
      const spilled = await store.put('t/spilled', generated(INLINE_MAX + 1).stream)
      expect([under, at, over, spilled].map((r) => r.file.driver)).toEqual(['mongo-inline', 'mongo-inline', 'gridfs', 'gridfs'])
      const records = await catalog().find({ type: 'file' }).sort({ path: 1 }).toArray()
      expect(records.map((r) => [r.path, r.data !== undefined, r.gridfsId !== undefined])).toEqual([
        ['t/at', true, false],
        ['t/over', false, true],
        ['t/spilled', false, true],
        ['t/under', true, false],
      ])
      expect(await count('fs.files')).toBe(2)
      expect(sha256(await readAll((await store.read('t/spilled')).body))).toBe(spilled.file.sha256)
    })

    it('mongo-inline refuses files over 15 MiB; gridfs keeps even an empty file in GridFS', async () => {
      const inline = open('mongo-inline')
      await expectCode(inline.put('big', generated(MAX_INLINE_BYTES + 1).stream), 'payload_too_large')
      await expectCode(inline.put('big', generated(8).stream, { expectedSize: MAX_INLINE_BYTES + 1 }), 'payload_too_large')
      expect(await count('fs.chunks')).toBe(0)
      const gridfs = open('gridfs')
      expect((await gridfs.put('empty', streamOf('')).then((r) => r.file)).driver).toBe('gridfs')
      expect(await text((await gridfs.read('empty')).body)).toBe('')
      expect(await count('fs.files')).toBe(1)
    })

    it('replacing a file deletes its old bytes once the record points at the new ones', async () => {
      await store.put('r.bin', generated(3 * INLINE_MAX).stream)
      const [first] = await database.db.collection('fs.files').find().toArray()
      await store.put('r.bin', generated(2 * INLINE_MAX, 5).stream)
      const files = await database.db.collection('fs.files').find().toArray()
      expect(files).toHaveLength(1)
      expect(files[0]!._id.equals(first!._id)).toBe(false)
      await put('r.bin', 'now inline')
      expect(await count('fs.files')).toBe(0)
      expect(await count('fs.chunks')).toBe(0)
      expect(await count('byte_leases')).toBe(0)
    })

    it('a cut-off upload into GridFS deletes its chunks at once', async () => {
      await expect(store.put('cut.bin', failingAfter(3 * CHUNK))).rejects.toThrow()
      expect(await count('fs.chunks')).toBe(0)
      expect(await store.lookup('cut.bin')).toBeNull()
    })

    it('a move is a catalog update: the record and its bytes stay where they are', async () => {
      await store.put('from/big.bin', generated(3 * CHUNK).stream)
      await put('from/sub/small.txt', 'small')
      const before = await catalog().find({ type: 'file' }).sort({ path: 1 }).toArray()
      const writes = watchChunkWrites(database.client)
      try {
        await store.move('from/big.bin', 'to/big.bin')
        await store.move('from', 'elsewhere/from')
      } finally {
        writes.stop()
      }
      expect(writes.writes).toBe(0)
      const after = await catalog().find({ type: 'file' }).sort({ path: 1 }).toArray()
      expect(after.map((r) => r.path)).toEqual(['elsewhere/from/sub/small.txt', 'to/big.bin'])
      const byId = new Map(before.map((r) => [r._id.toHexString(), r]))
      for (const record of after) {
        const was = byId.get(record._id.toHexString())!
        expect(record.sha256).toBe(was.sha256)
        expect(String(record.gridfsId)).toBe(String(was.gridfsId))
      }
      expect(await count('fs.files')).toBe(1)
    })

    it('reads a range with only the chunks that hold it', async () => {
      const size = 12 * CHUNK + 5000 // the last KiB lies in the last chunk
      const g = generated(size, 3)
      await store.put('chunks.bin', g.stream, { expectedSize: size })
      const whole = await readAll((await store.read('chunks.bin')).body)
      const reads = watchChunkReads(database.client)
      try {
        const tail = await readAll((await store.read('chunks.bin', { start: size - 1024, end: size - 1 })).body)
        expect(tail.equals(whole.subarray(size - 1024))).toBe(true)
        expect(reads.documents).toBe(1)
        expect(reads.finds).toEqual([{ filter: expect.objectContaining({ n: { $gte: 12 } }), limit: 1 }])

        reads.reset()
        const across = await readAll((await store.read('chunks.bin', { start: 5 * CHUNK - 10, end: 5 * CHUNK + 9 })).body)
        expect(across.equals(whole.subarray(5 * CHUNK - 10, 5 * CHUNK + 10))).toBe(true)
        expect(reads.documents).toBe(2)
      } finally {
        reads.stop()
      }
    })

    it('keeps a record per folder while it holds something, and drops it when emptied', async () => {
      await put('a/b/c.txt', 'c')
      await put('a/d.txt', 'd')
      const folders = async () => (await catalog().find({ type: 'directory' }).sort({ path: 1 }).toArray()).map((f) => f.path)
      expect(await folders()).toEqual(['a', 'a/b'])
      await store.delete('a/b/c.txt')
      expect(await folders()).toEqual(['a'])
      await store.move('a/d.txt', 'x/y/d.txt')
      expect(await folders()).toEqual(['x', 'x/y'])
    })

    it('of a file and a file under it written at once, never both are stored', async () => {
      for (let round = 0; round < 8; round++) {
        const results = await Promise.allSettled([put(`race${round}`, 'file'), put(`race${round}/inner`, 'under')])
        expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected'])
        const fileWon = results[0]!.status === 'fulfilled'
        expect((await store.lookup(`race${round}`))?.type).toBe(fileWon ? 'file' : 'directory')
        expect((await store.lookup(`race${round}/inner`))?.type).toBe(fileWon ? undefined : 'file')
      }
    })

    it('lists in the core order: folders first, names by code point, recursive by full path', async () => {
      const names = ['b', 'B', 'a-b', 'a b', 'a.b', 'é', 'e\u0301', 'ﬀ', '😀', '\uffff', 'Z', '_', '~', 'a0', 'ä']
      for (const [i, name] of names.entries()) {
        await put(`o/${name}`, name)
        if (i % 3 === 0) await put(`o/${name}-dir/${name}`, name)
      }
      const expected = (await store.list('o')).entries
      const sorted = [...expected].sort(compareEntries)
      expect(expected.map((e) => `${e.type}:${e.name}`)).toEqual(sorted.map((e) => `${e.type}:${e.name}`))
      expect(expected.filter((e) => e.type === 'directory')).toHaveLength(5)
      const paged: StoredEntry[] = []
      let cursor: string | undefined
      for (let page = 0; page < 20; page++) {
        const result = await store.list('o', { limit: 4, ...(cursor ? { cursor } : {}) })
        paged.push(...result.entries)
        if (!result.nextCursor) break
        cursor = result.nextCursor
      }
      expect(paged.map((e) => e.path)).toEqual(expected.map((e) => e.path))
      const recursive = (await store.list('o', { recursive: true })).entries.map((e) => e.path)
      expect(recursive).toEqual([...recursive].sort(compareCodePoints))
      expect(recursive).toHaveLength(names.length + 5)
    })

    it('lists with bounded queries on its indexes, never a scan of the collection', async () => {
      for (const name of ['a', 'b', 'c']) await put(`ix/${name}.txt`, name)
      for (const name of ['d1', 'd2']) await put(`ix/${name}/inner.txt`, name)
      await put('elsewhere/other.txt', 'not listed')
      const finds: { filter: unknown; sort: unknown; limit: unknown }[] = []
      const onStarted = (e: CommandStartedEvent) => {
        if (e.commandName === 'find' && e.command.find === 'catalog') {
          const sort = e.command.sort instanceof Map ? Object.fromEntries(e.command.sort) : e.command.sort
          finds.push({ filter: e.command.filter, sort, limit: e.command.limit })
        }
      }
      database.client.on('commandStarted', onStarted)
      try {
        const page = await store.list('ix', { limit: 3 })
        expect(page.entries.map((e) => e.name)).toEqual(['d1', 'd2', 'a.txt'])
        await store.list('ix', { limit: 3, cursor: page.nextCursor! })
        await store.list('ix', { recursive: true, limit: 2 })
      } finally {
        database.client.off('commandStarted', onStarted)
      }
      // One level: equality on (parent, type), a range on name, in name order, at most a page (and one more).
      expect(finds).toEqual([
        { filter: { parent: 'ix', type: 'directory' }, sort: { name: 1 }, limit: 4 },
        { filter: { parent: 'ix', type: 'file' }, sort: { name: 1 }, limit: 2 },
        { filter: { parent: 'ix', type: 'file', name: { $gt: 'a.txt' } }, sort: { name: 1 }, limit: 4 },
        // Recursive: a range of the path index, in path order.
        { filter: { type: 'file', path: { $gt: 'ix/', $lt: 'ix0' } }, sort: { path: 1 }, limit: 3 },
      ])
      // A MongoDB server shows its plan: index scans only. (FerretDB v1 on SQLite uses its indexes
      // for uniqueness only and scans for every query; see docs/mongo.md.)
      const info = await database.db.admin().command({ buildInfo: 1 })
      if (info.ferretdbVersion === undefined) {
        for (const find of finds) {
          const plan = JSON.stringify(
            await catalog()
              .find(find.filter as Filter<Document>)
              .sort(find.sort as Sort)
              .limit(find.limit as number)
              .explain('queryPlanner'),
          )
          expect(plan).toContain('IXSCAN')
          expect(plan).not.toContain('COLLSCAN')
        }
      }
    })

    it('takes parts at any instance: they live in MongoDB, not on a local disk', async () => {
      const other = open()
      try {
        const { uploadId } = await store.createUpload('shared/parts.bin')
        await store.putPart(uploadId, 2, streamOf('-second'))
        await other.putPart(uploadId, 1, streamOf('first'))
        expect((await other.uploadStatus(uploadId)).parts.map((p) => p.part)).toEqual([1, 2])
        expect(await count('upload_parts', { uploadId })).toBe(2)
        const { file } = await other.completeUpload(uploadId)
        expect(file.sha256).toBe(sha256('first-second'))
        expect(await text((await store.read('shared/parts.bin')).body)).toBe('first-second')
        expect(await count('upload_parts')).toBe(0)
        // The upload stays, finished, only to answer a completion sent again, until it expires.
        expect(await count('uploads', { finished: { $ne: true } })).toBe(0)
        expect(await count('fs.files')).toBe(0) // the parts' GridFS files went; the file itself is inline
      } finally {
        await other.close()
      }
    })

    it('appends at any instance; of appends at one offset on two instances one is kept, and no other bytes stay', async () => {
      const other = open()
      try {
        const { uploadId } = await store.createUpload('shared/appended.bin')
        await store.appendPart(uploadId, streamOf('first-'), { offset: 0 })
        expect(await other.declareUploadSize(uploadId, 6 + CHUNK + 10)).toMatchObject({ totalSize: 6 + CHUNK + 10, received: 6 })
        // Four appends at offset 6, two on each instance, every one past the offset check before any body arrives.
        let release!: () => void
        const gate = new Promise<void>((resolve) => (release = resolve))
        const bodies = [1, 2, 3, 4].map((n) => heldUntil(gate, Buffer.alloc(CHUNK + 10, n)))
        const appends = Promise.allSettled(
          bodies.map((body, i) => (i % 2 === 0 ? store : other).appendPart(uploadId, body.stream, { offset: 6 })),
        )
        await Promise.all(bodies.map((body) => body.reading))
        release()
        const results = await appends
        const won = results.filter((r) => r.status === 'fulfilled')
        expect(won).toHaveLength(1)
        for (const lost of results.filter((r) => r.status === 'rejected')) {
          expect(lost.reason).toMatchObject({ code: 'offset_mismatch', details: { offset: 6 + CHUNK + 10 } })
        }
        const { part } = (won[0] as PromiseFulfilledResult<{ part: { sha256: string } }>).value
        const status = await store.uploadStatus(uploadId)
        expect(status.parts.map((p) => p.part)).toEqual([1, 2])
        expect(status.parts[1]!.sha256).toBe(part.sha256)
        // The losers' GridFS files went at once: only the two parts' remain.
        expect(await count('fs.files')).toBe(2)
        const partFiles = (await database.db.collection('upload_parts').find().toArray()).map((p) => p.gridfsId as ObjectId)
        expect(await count('fs.chunks', { files_id: { $nin: partFiles } })).toBe(0)

        const { file } = await other.completeUpload(uploadId)
        expect(file).toMatchObject({ size: 6 + CHUNK + 10, driver: 'gridfs' })
        expect(await count('upload_parts')).toBe(0)
        expect(await count('fs.files')).toBe(1) // the file's own; the parts' went with the upload
      } finally {
        await other.close()
      }
    })

    it('keeps the prefix of a broken append in GridFS only with keepPartial; an append that outlives its upload keeps nothing', async () => {
      const { uploadId } = await store.createUpload('cut/appended.bin')
      await expectCode(store.appendPart(uploadId, failingAfter(CHUNK + 100), { offset: 0 }), 'invalid_request')
      expect([await count('fs.files'), await count('fs.chunks')]).toEqual([0, 0])
      const kept = await store.appendPart(uploadId, failingAfter(CHUNK + 100), { offset: 0, keepPartial: true })
      expect(kept).toMatchObject({ part: { part: 1, size: CHUNK + 100 }, offset: CHUNK + 100, partial: true })
      expect(await count('fs.files')).toBe(1)

      let release!: () => void
      const gate = new Promise<void>((resolve) => (release = resolve))
      const body = heldUntil(gate, Buffer.alloc(CHUNK, 2))
      const late = store.appendPart(uploadId, body.stream, { offset: CHUNK + 100 })
      await body.reading
      const other = open()
      try {
        await other.abortUpload(uploadId)
      } finally {
        await other.close()
      }
      release()
      await expectCode(late, 'not_found')
      expect([await count('uploads'), await count('upload_parts'), await count('fs.files'), await count('fs.chunks')]).toEqual([0, 0, 0, 0])
    })

    it('refuses whole an append held while another instance declares a size it would exceed', async () => {
      const { uploadId } = await store.createUpload('declared/appended.bin')
      await store.appendPart(uploadId, streamOf('0123456789'), { offset: 0 })
      let release!: () => void
      const gate = new Promise<void>((resolve) => (release = resolve))
      const body = heldUntil(gate, Buffer.alloc(CHUNK, 3))
      const held = store.appendPart(uploadId, body.stream, { offset: 10 })
      await body.reading
      const other = open()
      try {
        expect(await other.declareUploadSize(uploadId, 60)).toMatchObject({ totalSize: 60, received: 10 })
      } finally {
        await other.close()
      }
      release()
      await expectCode(held, 'payload_too_large')
      expect(await store.uploadStatus(uploadId)).toMatchObject({ totalSize: 60, received: 10 })
      expect(await count('fs.files')).toBe(1) // the first part's; the refused append's bytes went
      await store.appendPart(uploadId, streamOf('x'.repeat(50)), { offset: 10 })
      expect((await store.completeUpload(uploadId)).file.size).toBe(60)
    })

    it('assembles parts into a GridFS file when the whole is over the threshold', async () => {
      const { uploadId } = await store.createUpload('parts/large.bin')
      await store.putPart(uploadId, 1, generated(INLINE_MAX, 1).stream)
      await store.putPart(uploadId, 2, generated(INLINE_MAX, 2).stream)
      const { file } = await store.completeUpload(uploadId)
      expect(file).toMatchObject({ size: 2 * INLINE_MAX, driver: 'gridfs' })
      expect(await count('fs.files')).toBe(1)
    })

    it('sweeps GridFS files a crash left without a record, and only those', async () => {
      const kept = await store.put('kept.bin', generated(2 * INLINE_MAX).stream)
      const bucket = new GridFSBucket(database.db, { bucketName: 'fs' })
      // A write that finished its bytes, then crashed before the catalog pointed at them.
      const orphan = bucket.openUploadStream('orphan')
      await new Promise((resolve, reject) => orphan.on('finish', resolve).on('error', reject).end(Buffer.alloc(CHUNK + 10, 1)))
      // One that crashed mid-upload: chunks, no files document.
      const halfway = new ObjectId()
      await database.db.collection('fs.chunks').insertOne({ files_id: halfway, n: 0, data: Buffer.alloc(10) })
      const leases = database.db.collection<{ _id: ObjectId; since: Date }>('byte_leases')
      const now = new Date()
      await leases.insertMany([
        { _id: orphan.id, since: now },
        { _id: halfway, since: now },
      ])
      await leases.updateOne({ _id: (await catalog().findOne({ path: 'kept.bin' }))!.gridfsId }, { $set: { since: now } }, { upsert: true })

      expect((await store.sweep(now)).removed).toBe(0) // leases younger than an hour: writes that may still be live
      expect(await count('fs.files')).toBe(2)
      const { removed } = await store.sweep(new Date(now.getTime() + HOUR + 1000))
      expect(removed).toBe(2)
      expect(await count('fs.files')).toBe(1)
      expect(await count('fs.chunks', { files_id: { $in: [orphan.id, halfway] } })).toBe(0)
      expect(await count('byte_leases')).toBe(0)
      expect(sha256(await readAll((await store.read('kept.bin')).body))).toBe(kept.file.sha256)
    })

    it('deletes the GridFS bytes of a write whose sha256 does not match, at once', async () => {
      const wrong = { expectedSha256: sha256('something else') }
      await expectCode(store.put('wrong.bin', generated(2 * INLINE_MAX).stream, wrong), 'checksum_mismatch')
      const { uploadId } = await store.createUpload('parts/wrong.bin')
      await expectCode(store.putPart(uploadId, 1, generated(2 * INLINE_MAX).stream, wrong), 'checksum_mismatch')
      expect(await count('fs.files')).toBe(0)
      await store.putPart(uploadId, 1, generated(2 * INLINE_MAX).stream)
      await expectCode(store.completeUpload(uploadId, wrong), 'checksum_mismatch')
      expect(await count('fs.files')).toBe(1) // the part's, kept for another try
      expect(await count('byte_leases', { _id: { $nin: (await database.db.collection('upload_parts').find().toArray()).map((p) => p.gridfsId) } })).toBe(0)
    })

    it('sweeps the parts of an upload that is gone, an hour after they arrived', async () => {
      const { uploadId } = await store.createUpload('parts/orphan.bin')
      await store.appendPart(uploadId, streamOf('x'.repeat(100)), { offset: 0 })
      const live = await store.createUpload('parts/live.bin')
      await store.appendPart(live.uploadId, streamOf('y'.repeat(100)), { offset: 0 })
      // An append committed its part as the upload ended, and died before taking it back.
      await database.db.collection('uploads').deleteOne({ _id: uploadId as never })
      await store.sweep()
      expect(await count('upload_parts', { uploadId })).toBe(1) // young: an append may still take it back
      const twoHoursAgo = new Date(Date.now() - 2 * HOUR)
      await database.db.collection('upload_parts').updateMany({}, { $set: { received: twoHoursAgo } })
      await store.sweep()
      expect(await count('upload_parts', { uploadId })).toBe(0)
      expect(await count('fs.files')).toBe(1) // the live upload's part, which stays
      expect((await store.uploadStatus(live.uploadId)).received).toBe(100)
    })

    it('sweeps folder records a crash left empty', async () => {
      await put('real/file.txt', 'x')
      await catalog().insertMany([
        { type: 'directory', path: 'ghost', parent: '', name: 'ghost' },
        { type: 'directory', path: 'ghost/deeper', parent: 'ghost', name: 'deeper' },
      ])
      expect((await store.list('')).entries.map((e) => e.name)).toEqual(['ghost', 'real'])
      expect((await store.sweep()).removed).toBe(2)
      expect((await store.list('')).entries.map((e) => e.name)).toEqual(['real'])
    })

    it('creates its indexes at start-up, again without harm', async () => {
      const again = open()
      await again.lookup('anything')
      await again.close()
      const indexes = await catalog().listIndexes().toArray()
      expect(indexes.find((i) => i.name === 'path')).toMatchObject({ key: { path: 1 }, unique: true })
      expect(indexes.find((i) => i.name === 'listing')).toMatchObject({ key: { parent: 1, type: 1, name: 1 } })
      const chunks = await database.db.collection('fs.chunks').listIndexes().toArray()
      expect(chunks.find((i) => i.name === 'files_id_1_n_1')).toMatchObject({ unique: true })
    })
  })
})
