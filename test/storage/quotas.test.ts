/**
 * Quotas in the storage core (src/storage/quotas): what each change reserves, credits and ends with,
 * on the disk store, on MongoDB (MONGODB_URI) and on the s3 store (the run's SeaweedFS), in one process. Several processes and crashes:
 * test/adapters/quota-race.test.ts.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { addEntry, endChange, endRecount, handOver, newBucket, reap, usageOf } from '../../src/storage/quotas/bucket.js'
import {
  DiskDriver,
  MongoDriver,
  moveAcrossStores,
  type QuotaRule,
  type QuotaStore,
  type Store,
  type StorageDriver,
  withQuotas,
  withUploads,
} from '../../src/storage/index.js'
import { expectCode } from '../helpers/expect-error.js'
import { requireService } from '../helpers/external.js'
import { openS3Store, s3TestTarget, uniquePrefix } from '../helpers/s3-store.js'
import { testDatabase } from '../helpers/mongo.js'
import { failingAfter, generated, streamOf } from '../helpers/streams.js'
import { waitFor } from '../helpers/wait.js'

const uri = requireService('MONGODB_URI', 'MongoDB')

interface Opened {
  store: QuotaStore
  inner: Store
  close(): Promise<void>
}

/** A store under `rules`: a fresh one, or with `reuse` the one opened last, opened again. */
type Opener = (rules: QuotaRule[], reuse?: boolean) => Promise<Opened>

function quotaStore(driver: StorageDriver, rules: QuotaRule[]): QuotaStore {
  return withQuotas(withUploads(driver), driver.sharedRecords!('quotas'), rules, {
    store: 'test',
    recoveryIntervalMs: 60_000,
    recountIntervalMs: 3_600_000,
  })
}

const bytes = (n: number, fill = 1) => streamOf(new Uint8Array(n).fill(fill))
const usageAt = async (store: QuotaStore, path: string, prefix: string) => (await store.quotaUsage(path)).find((u) => u.prefix === prefix)!

function quotaSuite(name: string, open: Opener) {
  describe(name, () => {
    let opened: Opened
    afterEach(async () => opened?.close())

    it('refuses an upload that would go over the store\'s bytes before reading it, with the limit and the usage', async () => {
      opened = await open([{ prefix: '', limits: { bytes: 100 } }])
      const { store } = opened
      await store.put('a.bin', bytes(60), { expectedSize: 60 })
      let read = false
      const body = new ReadableStream<Uint8Array>(
        {
          pull(c) {
            read = true
            c.enqueue(new Uint8Array(50))
            c.close()
          },
        },
        { highWaterMark: 0 },
      )
      const error = await expectCode(store.put('b.bin', body, { expectedSize: 50 }), 'quota_exceeded')
      expect(read).toBe(false)
      expect(error.details).toMatchObject({ prefix: '', limit: { bytes: 100 }, usage: { bytes: 60, files: 1 }, requested: { bytes: 50, files: 1 } })
      expect(await store.lookup('b.bin')).toBeNull()
      expect((await usageAt(store, 'x', '')).usage).toEqual({ bytes: 60, files: 1 })
    })

    it('cuts an upload of unknown length at the limit and keeps nothing of it', async () => {
      opened = await open([{ prefix: '', limits: { bytes: 3 * 1024 * 1024 } }])
      const { store } = opened
      await store.put('small', bytes(1024))
      await expectCode(store.put('big', generated(4 * 1024 * 1024).stream), 'quota_exceeded')
      expect(await store.lookup('big')).toBeNull()
      expect((await usageAt(store, '', '')).usage).toEqual({ bytes: 1024, files: 1 })
      // What fits still goes in.
      await store.put('fits', generated(2 * 1024 * 1024).stream)
      expect((await usageAt(store, '', '')).usage).toEqual({ bytes: 1024 + 2 * 1024 * 1024, files: 2 })
    })

    it('credits the file a write replaces, and gives back what a delete removes', async () => {
      opened = await open([{ prefix: '', limits: { bytes: 100, files: 2 } }])
      const { store } = opened
      await store.put('a', bytes(90), { expectedSize: 90 })
      await store.put('a', bytes(95), { expectedSize: 95 }) // 95 in place of 90: fits
      expect((await usageAt(store, '', '')).usage).toEqual({ bytes: 95, files: 1 })
      await store.put('b', bytes(5), { expectedSize: 5 })
      await expectCode(store.put('c', bytes(0), { expectedSize: 0 }), 'quota_exceeded') // a third file
      await store.delete('a')
      expect((await usageAt(store, '', '')).usage).toEqual({ bytes: 5, files: 1 })
      await store.put('c', bytes(90), { expectedSize: 90 })
    })

    it('keeps a bucket per user under users/{sub}, and a literal rule wins over the pattern', async () => {
      opened = await open([
        { prefix: 'users/{sub}', limits: { bytes: 10 } },
        { prefix: 'users/ana', limits: { bytes: 20 } },
      ])
      const { store } = opened
      await store.put('users/bob/a', bytes(10), { expectedSize: 10 })
      await expectCode(store.put('users/bob/b', bytes(1), { expectedSize: 1 }), 'quota_exceeded')
      await store.put('users/eve/a', bytes(10), { expectedSize: 10 })
      await store.put('users/ana/a', bytes(20), { expectedSize: 20 })
      await store.put('elsewhere', bytes(100), { expectedSize: 100 })
      const usage = await store.quotaUsage('users/bob/x')
      expect(usage).toEqual([{ prefix: 'users/bob', rule: 'users/{sub}', limits: { bytes: 10 }, stored: { bytes: 10, files: 1 }, reserved: { bytes: 0, files: 0 }, usage: { bytes: 10, files: 1 } }])
      expect((await store.quotaUsage('users/ana'))[0]).toMatchObject({ rule: 'users/ana', limits: { bytes: 20 } })
    })

    it('counts the files already there when a quota is first used', async () => {
      opened = await open([])
      await opened.inner.put('users/ana/old', bytes(7), {})
      await opened.inner.put('users/ana/deep/older', bytes(3), {})
      await opened.close()
      opened = await open([{ prefix: 'users/{sub}', limits: { bytes: 15 } }], true)
      const { store } = opened
      expect((await usageAt(store, 'users/ana/x', 'users/ana')).stored).toEqual({ bytes: 10, files: 2 })
      await expectCode(store.put('users/ana/new', bytes(6), { expectedSize: 6 }), 'quota_exceeded')
    })

    it('reserves a declared upload in parts at creation, and an undeclared one part by part', async () => {
      opened = await open([{ prefix: '', limits: { bytes: 100 } }])
      const { store } = opened
      await expectCode(store.createUpload('too-big', { totalSize: 101 }), 'quota_exceeded')
      const declared = await store.createUpload('declared', { totalSize: 60 })
      expect((await usageAt(store, '', '')).reserved).toEqual({ bytes: 60, files: 1 })
      await expectCode(store.put('other', bytes(50), { expectedSize: 50 }), 'quota_exceeded')
      const open2 = await store.createUpload('open')
      await store.putPart(open2.uploadId, 1, bytes(30), { expectedSize: 30 })
      await expectCode(store.putPart(open2.uploadId, 2, bytes(20), { expectedSize: 20 }), 'quota_exceeded')
      await store.putPart(declared.uploadId, 1, bytes(60), { expectedSize: 60 })
      await store.completeUpload(declared.uploadId)
      expect((await usageAt(store, '', '')).usage).toEqual({ bytes: 90, files: 2 })
      await store.abortUpload(open2.uploadId)
      expect((await usageAt(store, '', '')).usage).toEqual({ bytes: 60, files: 1 })
    })

    it('cuts an append of an upload of unknown size at the limit, keeping what fitted', async () => {
      opened = await open([{ prefix: '', limits: { bytes: 2 * 1024 * 1024 } }])
      const { store } = opened
      const upload = await store.createUpload('tus')
      await expectCode(store.appendPart(upload.uploadId, generated(3 * 1024 * 1024).stream, { offset: 0, keepPartial: true }), 'quota_exceeded')
      const status = await store.uploadStatus(upload.uploadId)
      expect(status.received).toBeLessThanOrEqual(2 * 1024 * 1024)
      expect((await usageAt(store, '', '')).usage.bytes).toBeLessThanOrEqual(2 * 1024 * 1024)
      await store.declareUploadSize(upload.uploadId, status.received)
      await store.completeUpload(upload.uploadId)
      expect((await usageAt(store, '', '')).usage).toEqual({ bytes: status.received, files: 1 })
    })

    it('moves: into a prefix is checked, within a bucket is free, and the source gets its bytes back', async () => {
      opened = await open([{ prefix: 'users/{sub}', limits: { bytes: 10, files: 5 } }])
      const { store } = opened
      await store.put('inbox/x', bytes(8), { expectedSize: 8 })
      await store.put('users/ana/y', bytes(5), { expectedSize: 5 })
      await expectCode(store.move('inbox/x', 'users/ana/x'), 'quota_exceeded')
      await store.move('inbox/x', 'users/bob/x')
      await store.move('users/bob/x', 'users/bob/z') // a rename at the limit
      expect((await usageAt(store, 'users/bob', 'users/bob')).usage).toEqual({ bytes: 8, files: 1 })
      await store.move('users/bob', 'users/carl') // a whole folder, into another bucket
      expect((await usageAt(store, 'users/bob', 'users/bob')).usage).toEqual({ bytes: 0, files: 0 })
      expect((await usageAt(store, 'users/carl', 'users/carl')).usage).toEqual({ bytes: 8, files: 1 })
      await store.delete('users', { recursive: true })
      expect((await usageAt(store, 'users/ana', 'users/ana')).usage).toEqual({ bytes: 0, files: 0 })
      expect((await usageAt(store, 'users/carl', 'users/carl')).usage).toEqual({ bytes: 0, files: 0 })
    })

    it('a failed upload gives its reservation back', async () => {
      opened = await open([{ prefix: '', limits: { bytes: 100 } }])
      const { store } = opened
      await expectCode(store.put('a', failingAfter(10)), 'invalid_request')
      await expectCode(store.put('b', bytes(10), { expectedSize: 10, expectedSha256: '0'.repeat(64) }), 'checksum_mismatch')
      expect((await usageAt(store, '', '')).usage).toEqual({ bytes: 0, files: 0 })
    })

    it('many writers racing at the limit store no more than it', async () => {
      opened = await open([{ prefix: '', limits: { bytes: 1000, files: 50 } }])
      const { store } = opened
      const results = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => store.put(`f${i}`, bytes(100), { expectedSize: 100 })))
      const stored = results.filter((r) => r.status === 'fulfilled').length
      expect(stored).toBe(10)
      for (const r of results) if (r.status === 'rejected') expect((r.reason as { code: string }).code).toBe('quota_exceeded')
      expect((await usageAt(store, '', '')).usage).toEqual({ bytes: 1000, files: 10 })
    })
  })
}

describe('quotas', () => {
  const dirs: string[] = []
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true })
  })

  let dir: string
  quotaSuite('disk', async (rules, reuse) => {
    if (!reuse) {
      dir = await mkdtemp(join(tmpdir(), 'filestorage-quotas-'))
      dirs.push(dir)
    }
    const driver = await DiskDriver.open({ dir })
    const store = quotaStore(driver, rules)
    return { store, inner: store.inner, close: () => store.close() }
  })

  describe.skipIf(!uri)('mongo', () => {
    const database = testDatabase(uri ?? 'mongodb://unused', 'quotas')
    afterAll(async () => database.drop())
    quotaSuite('mongo', async (rules, reuse) => {
      if (!reuse) await database.clear()
      const driver = MongoDriver.open({ uri: uri!, db: database.name })
      const store = quotaStore(driver, rules)
      return { store, inner: store.inner, close: () => store.close() }
    })
  })

  const s3 = s3TestTarget()
  describe.skipIf(!s3)('s3', () => {
    let prefix: string
    quotaSuite('s3', async (rules, reuse) => {
      if (!reuse) prefix = uniquePrefix('quotas')
      const store = quotaStore(openS3Store(s3!, { prefix }).driver, rules)
      return { store, inner: store.inner, close: () => store.close() }
    })
  })

  it('counts files put on the disk store by hand at the next full recount (QUOTA_RECOUNT_INTERVAL)', async () => {
    const base = await mkdtemp(join(tmpdir(), 'filestorage-quotas-'))
    dirs.push(base)
    const driver = await DiskDriver.open({ dir: base })
    const store = withQuotas(withUploads(driver), driver.sharedRecords('quotas'), [{ prefix: '', limits: { bytes: 100 } }], {
      store: 'test',
      recoveryIntervalMs: 50,
      recountIntervalMs: 300,
    })
    try {
      await store.put('a', bytes(10), { expectedSize: 10 })
      await mkdir(join(base, 'by-hand'))
      await writeFile(join(base, 'by-hand/file'), new Uint8Array(50))
      expect((await usageAt(store, '', '')).usage.bytes).toBe(10)
      await waitFor('the rounds to count the file put by hand', async () => (await usageAt(store, '', '')).usage.bytes === 60)
      expect((await usageAt(store, '', '')).usage).toEqual({ bytes: 60, files: 2 })
      await expectCode(store.put('b', bytes(41), { expectedSize: 41 }), 'quota_exceeded')
    } finally {
      await store.close()
    }
  })

  it('two processes starting together count a bucket once: the second waits for the first\'s count', async () => {
    const base = await mkdtemp(join(tmpdir(), 'filestorage-quotas-'))
    dirs.push(base)
    const first = await DiskDriver.open({ dir: base })
    await withUploads(first).put('p/old', bytes(7), {})
    let walks = 0
    // A slow walk, so that the two counts would overlap.
    const counting = (store: Store): Store =>
      new Proxy(store, {
        get(target, key, receiver) {
          if (key !== 'lookup') return Reflect.get(target, key, receiver) as unknown
          return async (path: string) => {
            if (path === 'p') {
              walks++
              await new Promise((r) => setTimeout(r, 200))
            }
            return target.lookup(path)
          }
        },
      })
    const options = { store: 'test', recoveryIntervalMs: 60_000, recountIntervalMs: 3_600_000 }
    const second = await DiskDriver.open({ dir: base })
    const stores = [first, second].map((d) => withQuotas(counting(withUploads(d)), d.sharedRecords('quotas'), [{ prefix: 'p', limits: { bytes: 100 } }], options))
    try {
      const usages = await Promise.all(stores.map((s) => usageAt(s, 'p/x', 'p')))
      for (const u of usages) expect(u.stored).toEqual({ bytes: 7, files: 1 })
      expect(walks).toBe(1)
    } finally {
      for (const s of stores) await s.close()
    }
  })

  it('a folder moved into another store with quotas is refused as a whole, before a byte', async () => {
    const base = await mkdtemp(join(tmpdir(), 'filestorage-quotas-'))
    dirs.push(base)
    const source = withUploads(await DiskDriver.open({ dir: join(base, 'a') }))
    const target = quotaStore(await DiskDriver.open({ dir: join(base, 'b') }), [{ prefix: '', limits: { bytes: 100 } }])
    try {
      await source.put('dir/1', bytes(60), {})
      await source.put('dir/2', bytes(60), {})
      await expectCode(moveAcrossStores(source, 'dir', target, 'dir'), 'quota_exceeded')
      expect(await target.lookup('dir')).toBeNull()
      expect(await source.lookup('dir/2')).not.toBeNull()
    } finally {
      await source.close()
      await target.close()
    }
  })
})

describe('a bucket\'s entries (bucket.ts)', () => {
  const change = (scopes: string[], reserved: number, credit = 0) => ({
    kind: 'change' as const,
    owner: 'p:1',
    scopes,
    reserved: { bytes: reserved, files: 1 },
    credit: { bytes: credit, files: credit > 0 ? 1 : 0 },
    since: 0,
  })
  const counted = () => ({ ...newBucket(), counted: true, stored: { bytes: 90, files: 1 } })

  it('credits a replace while nothing else touches its path; two changes of one path lose their credits and end conservatively', () => {
    let s = addEntry(counted(), 'a', change(['f'], 95, 90), { bytes: 100 })
    expect(usageOf(s).usage).toEqual({ bytes: 95, files: 1 })
    expect(() => addEntry(s, 'b', change(['f'], 95, 90), { bytes: 100 })).toThrow('quota exceeded') // the credit is not counted twice
    s = addEntry(s, 'c', change(['dir'], 0), {}) // another path: nothing changes
    expect(usageOf(s).usage).toEqual({ bytes: 95, files: 2 })
    s = addEntry(s, 'd', { ...change(['f'], 0, 90), reserved: { bytes: 0, files: 0 } }, {}) // a delete of the same file
    expect(usageOf(s).usage.bytes).toBe(90 + 95) // the replace counts whole now
    const ended = endChange(s, 'a', { bytes: 95, files: 1 })
    expect(ended.suspect).toBe(true)
    expect(ended.state.stored).toEqual({ bytes: 185, files: 2 }) // more than held, never less
  })

  it('hands a request\'s entry over to an upload as it stands, once: the usage does not move', () => {
    const s = addEntry(counted(), 'p', change(['f'], 10), { bytes: 100 })
    const given = handOver(s, 'p', 'u:1', 'u:1')!
    expect(given.entries['u:1']).toEqual({ ...s.entries['p'], owner: 'u:1' })
    expect(given.entries['p']).toBeUndefined()
    expect(usageOf(given)).toEqual(usageOf(s))
    expect(handOver(given, 'p', 'u:1', 'u:1')).toBeUndefined() // gone: reaped, or given already
  })

  it('a count keeps the credits of changes under way but makes them end conservatively; a change ending during it adds to it', () => {
    let s = addEntry(counted(), 'a', change(['f'], 95, 90), { bytes: 100 })
    s = addEntry(s, 'r', { kind: 'recount', owner: 'p:1', scopes: [''], added: { bytes: 0, files: 0 }, since: 0 }, {})
    expect(usageOf(s).usage).toEqual({ bytes: 95, files: 1 })
    const ended = endChange(s, 'a', { bytes: 95, files: 1 })
    expect(ended.suspect).toBe(true)
    const recount = endRecount(ended.state, 'r', { bytes: 95, files: 1 }, 0, 1)!
    expect(recount.state.stored).toEqual({ bytes: 190, files: 2 }) // the walk may have seen it too
    expect(recount.suspect).toBe(true)
  })

  it('reaps the entries of a dead owner as if they had written all they reserved', () => {
    let s = addEntry(counted(), 'a', change(['x'], 5), { bytes: 100 })
    s = addEntry(s, 'b', { ...change(['y'], 3), owner: 'p:2' }, { bytes: 100 })
    const reaped = reap(s, (owner) => owner === 'p:2')!
    expect(reaped.suspect).toBe(true)
    expect(reaped.state.stored).toEqual({ bytes: 93, files: 2 })
    expect(Object.keys(reaped.state.entries)).toEqual(['a'])
  })
})
