/**
 * Events are recorded with their changes (issue 21): a process killed (a failpoint, as kill -9)
 * after writing a change's intent and before the change became visible leaves no event; one killed
 * after the change and before confirming it leaves an event that is settled from what the store
 * shows. On disk the dead process's intents are settled while it is reaped, before its locks let a
 * later change of the path through; on MongoDB by the relay once its registration is gone, or at
 * once by the next change of the same file (which also cancels a delete that died half way), and a
 * folder move cut part way is finished. Each store's own events come out in order.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { DiskDriver, type DriverStore, firstEntries, type LogEntry, MongoDriver, READY, type S3Driver, type StorageDriver, withUploads } from '../../src/storage/index.js'
import { requireService } from '../helpers/external.js'
import { CATALOG, type FileDoc, OWNERS, type OwnerDoc } from '../../src/storage/mongo/schema.js'
import { randomDbName } from '../helpers/mongo.js'
import { openS3Store, s3TestTarget, uniquePrefix } from '../helpers/s3-store.js'
import { runStoreChild, spawnStoreChild, waitForOutput } from '../helpers/store-children.js'

const uri = requireService('MONGODB_URI', 'events recorded on the mongo store')
const s3 = s3TestTarget()
const WINDOW_MS = 1000

interface Setup {
  name: string
  /** The store in this process (alive through the test, as a service would be). */
  store: DriverStore<StorageDriver>
  /** The command a child needs to open the same store. */
  where: Record<string, unknown>
  /** Settles what dead children left: disk reaps them, MongoDB waits for their registrations to go silent. */
  settle(): Promise<void>
  close(): Promise<void>
}

const setups: Record<string, () => Promise<Setup>> = {
  async disk() {
    const dir = await mkdtemp(join(tmpdir(), 'filestorage-events-'))
    const driver = await DiskDriver.open({ dir })
    const store = withUploads(driver)
    return {
      name: 'disk',
      store,
      where: { dir },
      settle: async () => void (await driver.sweep()),
      close: async () => {
        await store.close()
        await rm(dir, { recursive: true, force: true })
      },
    }
  },
  async mongo() {
    const db = randomDbName('events')
    const driver = MongoDriver.open({ uri: uri!, db, livenessWindowMs: WINDOW_MS })
    const store = withUploads(driver, { completionLeaseMs: WINDOW_MS })
    return {
      name: 'mongo',
      store,
      where: { mongo: { uri, db }, uploads: { completionLeaseMs: WINDOW_MS } },
      async settle() {
        await new Promise((resolve) => setTimeout(resolve, WINDOW_MS + 300))
        await driver.sweep() // removes the registrations gone silent
        await store.events!.settleOrphans()
      },
      async close() {
        await driver.db.dropDatabase()
        await store.close()
      },
    }
  },
  async s3() {
    const prefix = uniquePrefix('events')
    const store = openS3Store(s3!, { prefix, livenessWindowMs: WINDOW_MS, uploads: { completionLeaseMs: WINDOW_MS } })
    const driver = store.driver as S3Driver
    return {
      name: 's3',
      store: store as DriverStore<StorageDriver>,
      where: { s3: { endpoint: s3!.endpoint, region: s3!.region, bucket: s3!.bucket, prefix, accessKeyId: s3!.accessKeyId, secretAccessKey: s3!.secretAccessKey }, uploads: { completionLeaseMs: WINDOW_MS } },
      async settle() {
        // A dead child's heartbeat is stale once a liveness window passed after its last one (S3 times are in whole seconds).
        await new Promise((resolve) => setTimeout(resolve, WINDOW_MS + 2100))
        await driver.events.settleOrphans()
      },
      async close() {
        await store.close()
      },
    }
  },
}

const stores = ['disk', ...(uri ? ['mongo'] : []), ...(s3 ? ['s3'] : [])]

describe.each(stores)('events recorded with the changes on the %s store', (name) => {
  let s: Setup
  beforeAll(async () => {
    s = await setups[name]!()
    await s.store.events!.enable({ maxBacklog: 100_000 })
  })
  afterAll(async () => {
    await s?.close()
  })

  const log = () => s.store.events!.log
  const ready = async () => (await firstEntries(log(), READY, 10_000)).flatMap((e: LogEntry) => e.events.map((ev) => ({ key: e.key, type: ev.type, path: ev.data.path, sha256: ev.data.sha256, from: ev.data.from, files: ev.data.files })))
  const text = (s: string) => new Blob([s]).stream()
  const put = (path: string, body: string) => s.store.put(path, text(body))
  /** Runs `op` in a child with events on, killed at `failpoint`; returns the child's owner id (none on MongoDB until it registered). */
  const crash = async (op: Record<string, unknown>, failpoint: string) => {
    const { exit, output } = await runStoreChild({ ...s.where, events: true, ...op }, [failpoint])
    expect(exit.signal, output).toBe('SIGKILL')
  }
  const intentsLeft = async () => {
    let n = 0
    for (const queue of await log().queues('intents/')) n += (await firstEntries(log(), queue, 100)).length
    return n
  }

  test.each([
    ['events.intent.written', false],
    ['events.change.visible', true],
  ] as const)('a put killed at %s: its event exists exactly when its file does', async (failpoint, visible) => {
    const path = `put/${failpoint}.txt`
    await crash({ op: 'put', path, size: 5, fill: 65 }, failpoint)
    await s.settle()
    expect(await intentsLeft()).toBe(0)
    const events = (await ready()).filter((e) => e.path === path)
    expect(events.map((e) => e.type)).toEqual(visible ? ['file.created'] : [])
    expect((await s.store.lookup(path)) !== null).toBe(visible)
  })

  test.each([
    ['events.intent.written', false],
    ['events.change.visible', true],
  ] as const)('a move and a delete killed at %s: their events exist exactly when they happened', async (failpoint, visible) => {
    const from = `mv/${failpoint}/a.txt`
    const to = `mv/${failpoint}/b.txt`
    const doomed = `del/${failpoint}/c.txt`
    await put(from, 'a')
    await put(doomed, 'c')
    await crash({ op: 'move', path: from, to }, failpoint)
    await s.settle()
    await crash({ op: 'delete', path: doomed }, failpoint)
    await s.settle()
    expect(await intentsLeft()).toBe(0)
    const events = await ready()
    expect(events.filter((e) => e.type === 'file.moved' && e.from === from).length).toBe(visible ? 1 : 0)
    expect(events.filter((e) => e.type === 'file.deleted' && e.path === doomed).length).toBe(visible ? 1 : 0)
    expect((await s.store.lookup(to)) !== null).toBe(visible)
    expect((await s.store.lookup(from)) === null).toBe(visible)
    expect((await s.store.lookup(doomed)) === null).toBe(visible)
  })

  // On MongoDB and S3 a folder's change is file by file: one that was begun is finished by the settler.
  test.each([
    ['events.intent.written', name !== 'disk'],
    ['events.change.visible', true],
  ] as const)('a folder delete killed at %s: one event with its count, exactly when the folder went', async (failpoint, visible) => {
    const dir = `tree/${failpoint}`
    for (const f of ['1', '2', 'sub/3']) await put(`${dir}/${f}`, f)
    await crash({ op: 'delete', path: dir, recursive: true }, failpoint)
    await s.settle()
    expect(await intentsLeft()).toBe(0)
    const events = (await ready()).filter((e) => e.type === 'file.deleted' && e.path === dir)
    expect(events.map((e) => e.files)).toEqual(visible ? [3] : [])
    expect((await s.store.lookup(dir)) === null).toBe(visible)
  })

  test('a change of a path whose last writer died before confirming comes after that writer\'s event, which stands', async () => {
    const path = 'successor/x.txt'
    await crash({ op: 'put', path, size: 3, fill: 66 }, 'events.change.visible')
    // No settling first: on disk the put waits for the dead writer's lock, which reaping (settling
    // its intents first) lets go; on MongoDB the put finds the version its entry announced.
    await put(path, 'later')
    await s.settle()
    const events = (await ready()).filter((e) => e.path === path)
    expect(events.map((e) => e.type)).toEqual(['file.created', 'file.replaced'])
    expect(events[0]!.key < events[1]!.key).toBe(true)
    expect(await intentsLeft()).toBe(0)
  })

  if (name !== 'disk') {
    test.each(name === 'mongo' ? ['mongo.delete.marked', 'events.intent.written'] : ['events.intent.written'])('a delete killed at %s, then a write of that file: the delete never happened, and has no event', async (failpoint) => {
      const path = `marked/${failpoint}.txt`
      await put(path, 'before')
      await crash({ op: 'delete', path }, failpoint)
      await put(path, 'after') // replaces the very version the delete had marked
      await s.settle()
      expect((await ready()).filter((e) => e.path === path).map((e) => e.type)).toEqual(['file.created', 'file.replaced'])
      expect(await intentsLeft()).toBe(0)
      expect((await s.store.stat(path)).size).toBe(5)
    })
  }

  if (name === 'mongo') {
    test('a delete killed half way, then another delete of that version killed once it removed it: one event, the second\'s', async () => {
      const path = 'marked/twice.txt'
      await put(path, 'before')
      await crash({ op: 'delete', path }, 'events.intent.written') // marked, its intent written, the file still there
      // The first child is counted dead (its registration silent, then swept), its intent not settled yet.
      await new Promise((resolve) => setTimeout(resolve, WINDOW_MS + 300))
      await (s.store.driver as MongoDriver).sweep()
      // The second takes the very version the first had marked, and dies before it could clean up after it.
      await crash({ op: 'delete', path }, 'mongo.delete.removed')
      await s.settle()
      expect((await ready()).filter((e) => e.path === path).map((e) => e.type)).toEqual(['file.created', 'file.deleted'])
      expect(await intentsLeft()).toBe(0)
      expect(await s.store.lookup(path)).toBeNull()
    })
  }

  if (name === 'mongo') {
    test('a put takes a version marked by a delete whose writer went silent, and is killed before it could clean up after it: no delete event', async () => {
      const path = 'marked/silent.txt'
      await put(path, 'before')
      await crash({ op: 'delete', path }, 'events.intent.written') // marked, its intent written, the file still there
      const driver = s.store.driver as MongoDriver
      const marked = await driver.db.collection<FileDoc>(CATALOG).findOne({ path })
      const writer = marked!.deleting!.owner
      // The writer's registration in the last third of its window (a long one, so that it is still
      // there when the next child looks): silent as a dead process's, not reaped yet.
      const now = Date.now()
      await driver.db.collection<OwnerDoc>(OWNERS).updateOne({ _id: writer }, { $set: { heartbeat: new Date(now - 8000), silentAfter: new Date(now + 3000) } })
      await crash({ op: 'put', path, size: 5, fill: 66 }, 'mongo.put.swapped')
      // Past the end of the writer's window, registration or not: the settler may take its intents.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, now + 3000 - Date.now())))
      await s.settle()
      expect((await ready()).filter((e) => e.path === path).map((e) => e.type)).toEqual(['file.created', 'file.replaced'])
      expect(await intentsLeft()).toBe(0)
      expect(await s.store.lookup(path)).toMatchObject({ type: 'file', size: 5 })
    })
  }

  if (name !== 'disk') {
    test('a folder move killed part way is finished by the settler: every file moved, one event with the count', async () => {
      const from = 'half/src'
      for (let i = 0; i < 12; i++) await put(`${from}/f${i}.txt`, String(i))
      await crash({ op: 'move', path: from, to: 'half/dst' }, `${name}.tree.moved@3`)
      const moved = (await s.store.list('half/dst', { recursive: true })).entries.length
      expect(moved).toBeGreaterThan(0)
      expect(moved).toBeLessThan(12)
      await s.settle()
      expect((await s.store.list('half/dst', { recursive: true })).entries).toHaveLength(12)
      expect(await s.store.lookup(from)).toBeNull()
      const events = (await ready()).filter((e) => e.type === 'file.moved' && e.from === from)
      expect(events.map((e) => [e.path, e.files])).toEqual([['half/dst', 12]])
      expect(await intentsLeft()).toBe(0)
    })
  }

  test('uploads announce their creation, completion (with the file) and abort', async () => {
    const up = await s.store.createUpload('up/a.bin', { origin: { subject: 'ana', requestId: 'r1' } })
    await s.store.putPart(up.uploadId, 1, text('abc'))
    await s.store.completeUpload(up.uploadId, { origin: { subject: 'ana', requestId: 'r2' } })
    const other = await s.store.createUpload('up/b.bin')
    await s.store.abortUpload(other.uploadId, { origin: { subject: 'bo' } })
    const entries = (await firstEntries(log(), READY, 10_000)).filter((e) => e.paths[0]?.startsWith('up/'))
    const events = entries.flatMap((e) => e.events)
    expect(events.map((e) => `${e.type} ${e.data.path}`)).toEqual([
      'upload.created up/a.bin',
      'file.created up/a.bin',
      'upload.completed up/a.bin',
      'upload.created up/b.bin',
      'upload.aborted up/b.bin',
    ])
    expect(events[0]!.data).toMatchObject({ uploadId: up.uploadId, subject: 'ana', requestId: 'r1', expiresAt: up.expiresAt })
    expect(events[1]!.data).toMatchObject({ size: 3, subject: 'ana', requestId: 'r2' })
    expect(events[2]!.data).toMatchObject({ uploadId: up.uploadId, size: 3 })
    expect(events[2]!.id).toBe(`${events[1]!.id}_1`) // one change, two events: one entry
    expect(events[4]!.data).toMatchObject({ uploadId: other.uploadId, subject: 'bo' })
  })

  if (name === 's3') {
    test('the relay\'s lease: one holder among processes, taken over once the holder is killed (-9) or closes', async () => {
      const child = spawnStoreChild({ ...s.where, op: 'lease' })
      try {
        await waitForOutput(child, 'lease true')
        expect(await log().lease('relay')).toBe(false) // the child lives
        await child.stop('SIGKILL')
        await s.settle() // its heartbeat goes stale
        const other = openS3Store(s3!, { prefix: (s.where.s3 as { prefix: string }).prefix, livenessWindowMs: WINDOW_MS })
        try {
          expect(await other.events!.log.lease('relay')).toBe(true)
          expect(await other.events!.log.lease('relay')).toBe(true) // held, still
          expect(await log().lease('relay')).toBe(false)
        } finally {
          await other.close() // lets go of it
        }
        expect(await log().lease('relay')).toBe(true)
      } finally {
        if (child.running()) await child.stop('SIGKILL')
      }
    })

    test('a server without conditional writes: recording events is refused, saying why', async () => {
      const store = openS3Store(s3!, { conditionalWrites: false })
      try {
        await expect(store.events!.enable({ maxBacklog: 10, name: 's3' })).rejects.toThrow(/cannot record events: this S3 server has no conditional writes/)
        expect(store.events!.enabled).toBe(false)
      } finally {
        await store.close()
      }
    })
  }

  test('a store that records nothing until it is enabled keeps no backlog', async () => {
    const other = await setups[name]!()
    try {
      await other.store.put('quiet.txt', text('x'))
      expect(await other.store.events!.log.size()).toBe(0)
    } finally {
      await other.close()
    }
  })

})
