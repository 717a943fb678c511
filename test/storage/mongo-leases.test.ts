/**
 * The mongo store's leases by owner (src/storage/mongo/lease-owners.ts): what a dead process left
 * is reclaimed by the next sweep once its registration went silent, what a live one is writing is
 * kept, referenced bytes are never deleted, and a process the sweeper counted dead while it was
 * only stalled commits nothing that names bytes the sweeper deleted.
 */
import { ObjectId } from 'mongodb'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { MongoConnection, MongoDriver, type Store, withUploads } from '../../src/storage/index.js'
import { expectCode } from '../helpers/expect-error.js'
import { requireService } from '../helpers/external.js'
import { type TestDatabase, testDatabase } from '../helpers/mongo.js'
import { runStoreChild } from '../helpers/store-children.js'
import { readAll, sha256, streamOf } from '../helpers/streams.js'
import { waitFor } from '../helpers/wait.js'
import { CONTRACT_POLICY } from './contract.js'

const uri = requireService('MONGODB_URI', 'MongoDB')

const INLINE_MAX = 64 * 1024
/** The liveness window of these stores (their completion lease), short so that a dead owner is decided soon. */
const WINDOW_MS = 1500
const HOUR = 60 * 60 * 1000

/** A body that sends `head`, then `tail` once `gate` settles. */
function twoPhase(head: Uint8Array, gate: Promise<void>, tail: Uint8Array): ReadableStream<Uint8Array> {
  let step = 0
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (step === 0) controller.enqueue(head)
        else if (step === 1) {
          await gate
          controller.enqueue(tail)
        } else controller.close()
        step++
      },
    },
    { highWaterMark: 0 },
  )
}

function gate(): { opened: Promise<void>; open(): void } {
  let open!: () => void
  const opened = new Promise<void>((resolve) => (open = resolve))
  return { opened, open }
}

describe.runIf(uri !== undefined)('mongo store: leases by owner', () => {
  let database: TestDatabase
  const stores: Store[] = []
  const open = (completionLeaseMs = WINDOW_MS) => {
    const driver = MongoDriver.open({
      connection: new MongoConnection(database.client),
      db: database.name,
      kind: 'mongo',
      inlineMaxBytes: INLINE_MAX,
      livenessWindowMs: completionLeaseMs,
    })
    const store = withUploads(driver, { ...CONTRACT_POLICY, completionLeaseMs })
    stores.push(store)
    return store
  }
  const count = (collection: string, filter = {}) => database.db.collection(collection).countDocuments(filter)
  const leaseIds = async () => (await database.db.collection<{ _id: ObjectId }>('byte_leases').find().toArray()).map((l) => l._id)
  const child = (command: Record<string, unknown>) => ({ mongo: { uri: uri!, db: database.name }, uploads: { completionLeaseMs: WINDOW_MS }, ...command })
  /** Longer than the window, so that a process killed before it is silent for a whole window after. */
  const outliveTheWindow = () => new Promise((r) => setTimeout(r, WINDOW_MS + 500))

  if (uri !== undefined) database = testDatabase(uri, 'leases')
  beforeEach(() => database.clear())
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()))
  })
  afterAll(() => database.drop())

  it("reclaims a dead owner's unreferenced bytes on the first sweep after its window: a cut PUT, and a completion killed before its commit", async () => {
    const store = open()
    // A completion killed after writing the assembled file, before the catalog names it (over the
    // child's inline threshold of 1 MiB, so in GridFS).
    const content = Buffer.alloc(5 * 250_000, 7)
    const { uploadId } = await store.createUpload('dead/assembled.bin')
    for (let i = 0; i < 5; i++) await store.putPart(uploadId, i + 1, streamOf(content.subarray(i * 250_000, (i + 1) * 250_000)))
    const partBytes = (await database.db.collection<{ gridfsId: ObjectId }>('upload_parts').find().toArray()).map((p) => p.gridfsId)
    expect((await runStoreChild(child({ op: 'complete', uploadId }), ['upload.complete.journaled'])).exit.signal).toBe('SIGKILL')
    // A PUT of 3 MiB killed after 2 MiB of its body: chunks in GridFS, no files document yet.
    const cut = await runStoreChild(child({ op: 'put', path: 'dead/cut.bin', size: 3 * 1024 * 1024, fill: 3, dieAfterBytes: 2 * 1024 * 1024 }))
    expect(cut.exit.signal).toBe('SIGKILL')
    const orphans = { files_id: { $nin: partBytes } }
    expect(await count('fs.files', { _id: { $nin: partBytes } })).toBe(1) // the assembled file
    expect(await count('fs.chunks', orphans)).toBeGreaterThan(0)
    expect(await count('lease_owners')).toBeGreaterThanOrEqual(2) // the two dead children, and this store

    await outliveTheWindow()
    const { removed } = await store.sweep()
    expect(removed).toBe(2)
    expect(await count('fs.chunks', orphans)).toBe(0)
    expect(await count('fs.files')).toBe(5) // the parts', which their records name
    // What stays leased is the parts' bytes, leased by this store, which is alive.
    expect((await leaseIds()).every((id) => partBytes.some((p) => p.equals(id)))).toBe(true)
    expect(await count('lease_owners')).toBe(1) // the dead children's registrations went first
    // The upload is intact: completing it now stores the file.
    const { file } = await store.completeUpload(uploadId)
    expect(file.sha256).toBe(sha256(content))
  })

  it("keeps the bytes a live owner is writing, however long it takes, and reclaims an ownerless lease only after an hour", async () => {
    const writer = open()
    const sweeper = open() // another instance's sweeper
    const released = gate()
    const content = Buffer.alloc(4 * INLINE_MAX, 9)
    const half = 2 * INLINE_MAX
    const putting = writer.put('live/slow.bin', twoPhase(content.subarray(0, half), released.opened, content.subarray(half)))
    await waitFor('the write to lease its GridFS file', async () => (await count('byte_leases')) === 1)
    await outliveTheWindow() // its heartbeat keeps it alive meanwhile
    expect((await sweeper.sweep()).removed).toBe(0)
    expect(await count('byte_leases')).toBe(1)
    released.open()
    const { file } = await putting
    expect(file.sha256).toBe(sha256(content))
    expect((await readAll((await sweeper.read('live/slow.bin')).body)).equals(content)).toBe(true)
    expect((await sweeper.sweep()).removed).toBe(0)
    // Bytes whose lease has no owner (taken by an older version) keep the hour rule.
    const ownerless = new ObjectId()
    await database.db.collection('fs.chunks').insertOne({ files_id: ownerless, n: 0, data: Buffer.alloc(1) })
    await database.db.collection<{ _id: ObjectId; since: Date }>('byte_leases').insertOne({ _id: ownerless, since: new Date() })
    expect((await sweeper.sweep()).removed).toBe(0)
    expect(await count('fs.chunks', { files_id: ownerless })).toBe(1)
    expect((await sweeper.sweep(new Date(Date.now() + HOUR + 1000))).removed).toBe(1)
    expect(await count('fs.chunks', { files_id: ownerless })).toBe(0)
  })

  it("never deletes referenced bytes: a dead owner's committed file and parts keep them, only the leases go", async () => {
    const store = open()
    const done = await runStoreChild(child({ op: 'put', path: 'ref/file.bin', size: 3 * 1024 * 1024, fill: 5 }))
    expect(done.exit.code).toBe(0) // exits without close: its registration goes silent, its leases stay
    const { uploadId } = await store.createUpload('ref/parts.bin')
    await store.putPart(uploadId, 1, streamOf(Buffer.alloc(2 * INLINE_MAX, 1)))
    const [part] = await database.db.collection<{ gridfsId: ObjectId }>('upload_parts').find().toArray()
    const [record] = await database.db.collection<{ gridfsId: ObjectId }>('catalog').find({ path: 'ref/file.bin' }).toArray()
    // Leases a dead replace or delete took before letting go of them (it died before the record did).
    await database.db
      .collection('byte_leases')
      .updateMany({ _id: { $in: [part!.gridfsId, record!.gridfsId] } }, { $set: { owner: 'a-process-long-gone', since: new Date() } })
    await outliveTheWindow()

    expect((await store.sweep()).removed).toBe(0)
    expect(await leaseIds()).toEqual([])
    expect(await count('fs.files')).toBe(2)
    const read = await readAll((await store.read('ref/file.bin')).body)
    expect(read.equals(Buffer.alloc(3 * 1024 * 1024, 5))).toBe(true)
    expect((await store.completeUpload(uploadId)).file.size).toBe(2 * INLINE_MAX)
  })

  it('a process counted dead while stalled commits nothing naming the bytes the sweeper deleted, and writes again after', async () => {
    const stalled = open(CONTRACT_POLICY.completionLeaseMs) // its own heartbeat does not come round during the test
    const sweeper = open()
    const released = gate()
    const content = Buffer.alloc(4 * INLINE_MAX, 4)
    const half = 2 * INLINE_MAX
    await stalled.put('stall/file.bin', streamOf('the previous version'))
    const { uploadId } = await stalled.createUpload('stall/tus.bin')
    const putting = stalled.put('stall/file.bin', twoPhase(content.subarray(0, half), released.opened, content.subarray(half)), {
      expectedSize: content.length,
    })
    const appending = stalled.appendPart(uploadId, twoPhase(content.subarray(0, half), released.opened, content.subarray(half)), { offset: 0 })
    await waitFor('both writes to lease their GridFS files', async () => (await count('byte_leases')) === 2)

    // The stalled process has not renewed its registration for an hour, as far as the sweeper sees.
    await database.db.collection('lease_owners').updateMany({}, { $set: { heartbeat: new Date(Date.now() - HOUR), silentAfter: new Date(Date.now() - HOUR + 30_000) } })
    expect((await sweeper.sweep()).removed).toBe(2)
    expect(await count('lease_owners')).toBe(0)

    released.open()
    await expectCode(putting, 'store_unavailable')
    await expectCode(appending, 'store_unavailable')
    // Nothing names missing bytes: the previous version is intact, the upload has nothing, no chunk is left.
    expect(await readAll((await sweeper.read('stall/file.bin')).body).then(String)).toBe('the previous version')
    expect((await stalled.uploadStatus(uploadId)).received).toBe(0)
    expect(await count('fs.chunks')).toBe(0)
    expect(await count('byte_leases')).toBe(0)

    // Awake again, it registers under a new id and writes as before.
    const { file } = await stalled.put('stall/file.bin', streamOf(content))
    expect(file.sha256).toBe(sha256(content))
    expect((await readAll((await sweeper.read('stall/file.bin')).body)).equals(content)).toBe(true)
    expect(await count('lease_owners')).toBe(1)
  })
})
