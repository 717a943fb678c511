/**
 * The upload engine (src/storage/uploads/) where the contract suite does not reach it, on the real
 * drivers: a completion's journal settled after its process died (before its file became visible,
 * or after; or once its record said finished, with its parts still there), the lease of a completion on a driver without a lock of its own (taken over once it
 * runs out, renewed while its holder works, given up on after two lengths), and a part taken back
 * when the upload changed between its placement and the engine's look after it. Each is run on
 * the disk store (also with its lock hidden, so that the engine's lease and looks run there too),
 * on the mongo store (when MONGODB_URI is set) and on the s3 store (when the run has an S3 server).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import {
  type CommitChecks,
  DiskDriver,
  MongoConnection,
  MongoDriver,
  type PartWriter,
  type Store,
  type StorageDriver,
  type UploadPolicy,
  type UploadStaging,
  type UploadState,
  withUploads,
} from '../../src/storage/index.js'
import { expectCode } from '../helpers/expect-error.js'
import { requireService } from '../helpers/external.js'
import { type TestDatabase, testDatabase } from '../helpers/mongo.js'
import { openS3Store, s3TestTarget } from '../helpers/s3-store.js'
import { readAll, sha256, streamOf } from '../helpers/streams.js'
import { CONTRACT_POLICY } from './contract.js'

const uri = requireService('MONGODB_URI', 'MongoDB')

/** Short, so that the lease's rules show within a test. */
const LEASE_MS = 600

/** `target` with some of its members replaced (`undefined` removes one), its own methods bound to it. */
function replacing<T extends object>(target: T, overrides: Record<string, unknown>): T {
  return new Proxy(target, {
    get(t, key) {
      if (typeof key === 'string' && key in overrides) return overrides[key]
      const value: unknown = Reflect.get(t, key, t)
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(t) : value
    },
  })
}

/** `driver`, its staging changed by `overrides`. */
const withStaging = (driver: StorageDriver, overrides: Record<string, unknown>): StorageDriver =>
  replacing(driver, { staging: replacing(driver.staging, overrides) })

/** The driver's staging, with the writers it opens given to `wrap`. */
function wrappingWriters(staging: UploadStaging, wrap: (writer: PartWriter) => PartWriter): Record<string, unknown> {
  return {
    openPart: async (...args: Parameters<UploadStaging['openPart']>) => wrap(await staging.openPart(...args)),
    openAppend: async (...args: Parameters<UploadStaging['openAppend']>) => wrap(await staging.openAppend(...args)),
  }
}

/** A writer whose commit runs `meanwhile` between placing the part and the engine's look after it. */
const racedBy = (meanwhile: () => Promise<void>) => (writer: PartWriter): PartWriter =>
  replacing(writer, {
    commit: (info: Parameters<PartWriter['commit']>[0], hash: Parameters<PartWriter['commit']>[1], checks: CommitChecks) =>
      writer.commit(info, hash, {
        before: checks.before,
        after: async () => {
          await meanwhile()
          await checks.after()
        },
      }),
  })

interface Target {
  label: string
  /** Whether its staging has a lock of its own (`exclusive`); else the engine's lease is tested on it. */
  ownLock: boolean
  /** A fresh driver on a fresh store. */
  driver(): Promise<StorageDriver>
  cleanup(): Promise<void>
}

const roots: string[] = []
const disk = (label: string, hideLock: boolean): Target => ({
  label,
  ownLock: !hideLock,
  async driver() {
    const root = await mkdtemp(join(tmpdir(), 'filestorage-engine-'))
    roots.push(root)
    const driver = await DiskDriver.open({ dir: root })
    return hideLock ? withStaging(driver, { exclusive: undefined }) : driver
  },
  cleanup: async () => {
    await Promise.all(roots.splice(0).map((r) => rm(r, { recursive: true, force: true })))
  },
})

let database: TestDatabase | undefined
const mongo: Target = {
  label: 'mongo',
  ownLock: false,
  async driver() {
    database ??= testDatabase(uri!, 'engine')
    await database.clear()
    return MongoDriver.open({ connection: new MongoConnection(database.client), db: database.name, kind: 'mongo', inlineMaxBytes: 64 * 1024 })
  },
  cleanup: async () => {
    await database?.drop()
  },
}

const s3 = s3TestTarget()
const s3Target: Target = {
  label: 's3',
  ownLock: false,
  driver: async () => openS3Store(s3!).driver,
  cleanup: async () => {},
}

const targets = [disk('disk', false), disk('disk, its lock hidden', true), ...(uri === undefined ? [] : [mongo]), ...(s3 === undefined ? [] : [s3Target])]

for (const target of targets) {
  describe(`upload engine on ${target.label}`, () => {
    const opened: Store[] = []
    const open = async (driver?: StorageDriver, policy: Partial<UploadPolicy> = {}) => {
      const store = withUploads(driver ?? (await target.driver()), { ...CONTRACT_POLICY, ...policy })
      opened.push(store)
      return store
    }
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((s) => s.close()))
    })
    afterAll(() => target.cleanup())

    const record = async (driver: StorageDriver, uploadId: string) => (await driver.staging.records.read(uploadId))!
    /** Changes an upload's record as another process would. */
    const rewrite = async (driver: StorageDriver, uploadId: string, change: (state: UploadState) => UploadState) => {
      const { state, version } = await record(driver, uploadId)
      expect(await driver.staging.records.update(uploadId, version, change(state))).toBe(true)
    }
    /** An upload of two parts, `first` and `second`. */
    const twoParts = async (store: Store, path: string) => {
      const { uploadId } = await store.createUpload(path, { metadata: { path } })
      await store.putPart(uploadId, 1, streamOf('first-'))
      await store.putPart(uploadId, 2, streamOf('second'))
      return uploadId
    }

    /**
     * An upload of two parts at `path` whose file a completion that then died committed, as revision
     * `the-dead-one`; `journaled`: its journal written just before, as a completion does.
     */
    const committedByTheDeadOne = async (driver: StorageDriver, store: Store, path: string, { journaled }: { journaled: boolean }) => {
      const uploadId = await twoParts(store, path)
      const { state } = await record(driver, uploadId)
      const parts = await driver.staging.listParts(uploadId)
      const prepared = await driver.staging.prepare(uploadId, parts, { path: state.path, metadata: state.metadata, revision: 'the-dead-one' })
      const committed = await driver.staging.commit(prepared, {
        beforeVisible: async (result) => {
          if (journaled) await rewrite(driver, uploadId, (s) => ({ ...s, journal: { revision: 'the-dead-one', result, note: prepared.note } }))
        },
      })
      return { uploadId, state, committed }
    }

    describe('a completion whose process died', () => {
      it('before its file became visible (journal written): completing again assembles and stores it', async () => {
        const driver = await target.driver()
        const store = await open(driver)
        const uploadId = await twoParts(store, 'journal/before.bin')
        // What the dead completion left: the file prepared, and its journal, for a revision never committed.
        const parts = await driver.staging.listParts(uploadId)
        const prepared = await driver.staging.prepare(uploadId, parts, { path: 'journal/before.bin', metadata: {}, revision: 'never-committed' })
        const { file: other } = await store.put('journal/other.bin', streamOf('first-second'))
        const result = { file: { ...other, path: 'journal/before.bin', name: 'before.bin' }, created: true }
        await rewrite(driver, uploadId, (s) => ({ ...s, journal: { revision: 'never-committed', result, note: prepared.note } }))
        expect((await store.uploadStatus(uploadId)).parts).toHaveLength(2) // not committed: still takes parts

        const { file, created } = await store.completeUpload(uploadId)
        expect(created).toBe(true)
        expect(file).toMatchObject({ path: 'journal/before.bin', sha256: sha256('first-second'), metadata: { path: 'journal/before.bin' } })
        expect((await readAll((await store.read('journal/before.bin')).body)).toString()).toBe('first-second')
        expect((await record(driver, uploadId)).state).toMatchObject({ finished: { result: { file } } })
        expect((await record(driver, uploadId)).state.journal).toBeUndefined()
        expect(await driver.staging.listParts(uploadId)).toEqual([])
        expect(await store.completeUpload(uploadId)).toEqual({ file, created })
      })

      it('after its file became visible: completing again finishes it and answers that file, without storing it again', async () => {
        const driver = await target.driver()
        const store = await open(driver)
        const { uploadId, state, committed } = await committedByTheDeadOne(driver, store, 'journal/after.bin', { journaled: true })
        expect(await driver.lookupRevision(state.path, 'the-dead-one')).toEqual(committed.file)
        await expectCode(store.uploadStatus(uploadId), 'not_found') // its file is visible: it takes nothing more
        await expectCode(store.putPart(uploadId, 3, streamOf('late')), 'not_found')

        expect(await store.completeUpload(uploadId)).toEqual(committed)
        expect(await driver.staging.listParts(uploadId)).toEqual([])
        expect((await store.uploadStatus(uploadId, { finished: true })).path).toBe(state.path)
        // Replaced since: what the upload stored, as it was stored.
        await store.put(state.path, streamOf('someone else'))
        expect(await store.completeUpload(uploadId)).toEqual(committed)
      })

      it('after its record said finished, before its parts were gone: completing again removes them and answers that file', async () => {
        const driver = await target.driver()
        const store = await open(driver)
        const { uploadId, committed } = await committedByTheDeadOne(driver, store, 'journal/finished.bin', { journaled: false })
        await rewrite(driver, uploadId, (s) => ({ ...s, finished: { revision: 'the-dead-one', result: committed } }))
        expect(await driver.staging.listParts(uploadId)).toHaveLength(2) // what the dead one left

        expect(await store.completeUpload(uploadId)).toEqual(committed)
        expect(await driver.staging.listParts(uploadId)).toEqual([])
      })

      it('and a sha256 given with the retry is checked against the stored file', async () => {
        const store = await open()
        const uploadId = await twoParts(store, 'journal/sum.bin')
        await store.completeUpload(uploadId)
        await expectCode(store.completeUpload(uploadId, { expectedSha256: sha256('something else') }), 'checksum_mismatch')
        expect((await store.completeUpload(uploadId, { expectedSha256: sha256('first-second') })).file.sha256).toBe(sha256('first-second'))
      })
    })

    // The driver's own lock (disk) is tested by killing its holder (disk-integrity.test.ts).
    if (!target.ownLock) {
      describe('the lease of a completion, where the driver has no lock of its own', () => {
        it('waits while another completion holds it, goes on once it is let go', async () => {
          const driver = await target.driver()
          const store = await open(driver, { completionLeaseMs: 10 * LEASE_MS })
          const uploadId = await twoParts(store, 'lease/held.bin')
          await rewrite(driver, uploadId, (s) => ({ ...s, completing: { until: new Date(Date.now() + 60_000).toISOString(), by: 'another' } }))
          let settled = false
          const completing = store.completeUpload(uploadId).finally(() => (settled = true))
          await new Promise((r) => setTimeout(r, LEASE_MS))
          expect(settled).toBe(false)
          expect(await store.lookup('lease/held.bin')).toBeNull()
          await rewrite(driver, uploadId, ({ completing: _held, ...s }) => s)
          expect((await completing).file.sha256).toBe(sha256('first-second'))
          expect((await record(driver, uploadId)).state.completing).toBeUndefined()
        })

        it('takes over at once a lease that ran out (its holder died), and gives up on one held past two lengths', async () => {
          const driver = await target.driver()
          const store = await open(driver, { completionLeaseMs: LEASE_MS })
          const stale = await twoParts(store, 'lease/stale.bin')
          await rewrite(driver, stale, (s) => ({ ...s, completing: { until: new Date(Date.now() - 1).toISOString(), by: 'the-dead' } }))
          expect((await store.completeUpload(stale)).file.path).toBe('lease/stale.bin')

          const held = await twoParts(store, 'lease/stuck.bin')
          await rewrite(driver, held, (s) => ({ ...s, completing: { until: new Date(Date.now() + 60_000).toISOString(), by: 'stuck' } }))
          const error = await expectCode(store.completeUpload(held), 'upload_incomplete')
          expect(error.message).toMatch(/being completed by another request/)
          expect(await store.lookup('lease/stuck.bin')).toBeNull()
          expect((await store.uploadStatus(held)).parts).toHaveLength(2)
        })

        it('is renewed while its completion works, and a completion that waited for it answers the stored file', async () => {
          const base = await target.driver()
          let release!: () => void
          const released = new Promise<void>((resolve) => (release = resolve))
          let preparing!: () => void
          const prepareStarted = new Promise<void>((resolve) => (preparing = resolve))
          const slow = withStaging(base, {
            prepare: async (...args: Parameters<UploadStaging['prepare']>) => {
              preparing()
              await released // a completion that takes several lease lengths
              return base.staging.prepare(...args)
            },
          })
          const store = await open(slow, { completionLeaseMs: LEASE_MS })
          const uploadId = await twoParts(store, 'lease/renewed.bin')
          const first = store.completeUpload(uploadId)
          await prepareStarted
          const leased = (await record(base, uploadId)).state.completing!
          await new Promise((r) => setTimeout(r, 2 * LEASE_MS)) // past the lease it took
          const renewed = (await record(base, uploadId)).state.completing!
          expect(renewed.by).toBe(leased.by)
          expect(Date.parse(renewed.until)).toBeGreaterThan(Date.parse(leased.until))
          const second = store.completeUpload(uploadId) // waits: the lease is held
          release()
          const [a, b] = await Promise.all([first, second])
          expect(b).toEqual(a)
          expect(a.file.sha256).toBe(sha256('first-second'))
          expect((await record(base, uploadId)).state.completing).toBeUndefined()
        })
      })
    }

    // With a lock of its own, nothing changes an upload between a part's checks and its placement.
    if (!target.ownLock) describe('a part placed as the upload changed', () => {
      it('is taken back when the upload ended between its placement and the look after it', async () => {
        const base = await target.driver()
        const uploadId = await twoParts(await open(base), 'raced/ended.bin')
        const raced = await open(
          withStaging(base, wrappingWriters(base.staging, racedBy(() => rewrite(base, uploadId, (s) => ({ ...s, finished: { aborted: true } }))))),
        )
        await expectCode(raced.putPart(uploadId, 3, streamOf('late')), 'not_found')
        expect((await base.staging.listParts(uploadId)).map((p) => p.part)).toEqual([1, 2])
      })

      it('is taken back when a size declared meanwhile no longer fits, and the upload goes on from before it', async () => {
        const base = await target.driver()
        const plain = await open(base)
        const { uploadId } = await plain.createUpload('raced/declared.bin')
        await plain.appendPart(uploadId, streamOf('0123456789'), { offset: 0 })
        const before = await base.staging.listParts(uploadId)
        const raced = await open(
          withStaging(base, wrappingWriters(base.staging, racedBy(() => rewrite(base, uploadId, (s) => ({ ...s, totalSize: 15 }))))),
        )
        // An append past the size declared while it was being placed: a new part, or (disk) the first one extended.
        await expectCode(raced.appendPart(uploadId, streamOf('abcdefghij'), { offset: 10 }), 'payload_too_large')
        expect(await base.staging.listParts(uploadId)).toEqual(before)
        expect(await plain.uploadStatus(uploadId)).toMatchObject({ received: 10, totalSize: 15 })
        await plain.appendPart(uploadId, streamOf('abcde'), { offset: 10 })
        expect((await plain.completeUpload(uploadId)).file.sha256).toBe(sha256('0123456789abcde'))
      })
    })
  })
}
