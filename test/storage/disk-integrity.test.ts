/**
 * The disk store's commit protocol under attack: readers and writers racing on the same paths from
 * two instances on one folder, and processes killed at every step of a write, a completion, an
 * append and a delete (failpoints, see src/storage/failpoints.ts, and kill -9 mid-body). After each,
 * a path holds one version whose attributes are that version's, retries answer as documented, and
 * the first sweep leaves nothing behind.
 */
import { createHash } from 'node:crypto'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest'
import type { StoredFile } from '../../src/storage/index.js'
import { LOCAL_VERSION_HOLD_MS } from '../../src/storage/disk/disk-driver.js'
import { runStoreChild as runChild, spawnStoreChild, waitForOutput } from '../helpers/store-children.js'
import { type DiskStore, leftovers, NOTHING_LEFT, openDiskStore, uploadFiles } from '../helpers/disk-store.js'
import { expectCode } from '../helpers/expect-error.js'
import { readAll, sha256, streamOf } from '../helpers/streams.js'
import { waitFor } from '../helpers/wait.js'

const roots: string[] = []
afterAll(async () => {
  await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })))
})
const freshRoot = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'filestorage-integrity-'))
  roots.push(dir)
  return dir
}

interface Version {
  contentType: string
  metadata: Record<string, unknown>
}

const TYPES = ['text/plain', 'application/json', 'image/png', 'application/pdf', 'text/csv']

/** The body of write `n`: unique bytes (so its sha256 names the version), some past one read chunk. */
function contentOf(n: number): Buffer {
  const size = n % 7 === 0 ? 1024 * 1024 + 4096 : 100 + ((n * 7919) % 20_000)
  const bytes = Buffer.alloc(size, n % 251)
  bytes.write(`write ${n} `)
  return bytes
}

describe('disk commit protocol: concurrent readers and writers', () => {
  it('never pairs bytes with another version\'s attributes, across two instances on one folder', async () => {
    const root = await freshRoot()
    const instances = [await openDiskStore({ dir: root }), await openDiskStore({ dir: root })]
    const paths = ['a.bin', 'b.bin', 'deep/c.bin', 'deep/er/d.bin']
    const versions = new Map<string, Version>() // sha256 -> what was written with it
    const mismatches: string[] = []
    let reads = 0
    let writes = 0
    let stop = false

    const check = (where: string, file: StoredFile, bytes?: Buffer) => {
      const written = versions.get(file.sha256)
      if (!written) return mismatches.push(`${where}: sha256 ${file.sha256} was never written`)
      if (file.contentType !== written.contentType || JSON.stringify(file.metadata) !== JSON.stringify(written.metadata)) {
        mismatches.push(`${where}: ${file.contentType} ${JSON.stringify(file.metadata)}, written ${JSON.stringify(written)}`)
      }
      if (bytes && sha256(bytes) !== file.sha256) mismatches.push(`${where}: bytes are not ${file.sha256}`)
      if (file.etag !== `"${file.sha256}"`) mismatches.push(`${where}: etag ${file.etag}`)
    }

    const writer = async (w: number) => {
      for (let i = 0; i < 40; i++) {
        const n = w * 1000 + i
        const body = contentOf(n)
        const version = { contentType: TYPES[n % TYPES.length]!, metadata: { writer: w, n } }
        versions.set(sha256(body), version)
        await instances[w % 2]!.put(paths[n % paths.length]!, streamOf(body), version)
        writes++
      }
    }
    const reader = async (r: number) => {
      while (!stop) {
        const store = instances[r % 2]!
        const path = paths[(r + reads) % paths.length]!
        try {
          if (reads % 3 === 0) {
            check(`stat ${path}`, await store.stat(path))
          } else if (reads % 3 === 1) {
            const { file, body } = await store.read(path)
            check(`read ${path}`, file, await readAll(body))
          } else {
            for (const e of (await store.list(path.includes('/') ? 'deep' : '', { recursive: true })).entries) {
              if (e.type === 'file') check(`list ${e.path}`, e)
            }
          }
          reads++
        } catch (e) {
          if ((e as { code?: string }).code !== 'not_found') mismatches.push(`${path}: ${(e as Error).message}`)
          await new Promise((r) => setImmediate(r))
        }
      }
    }

    const readers = Array.from({ length: 12 }, (_, r) => reader(r))
    await Promise.all(Array.from({ length: 8 }, (_, w) => writer(w)))
    stop = true
    await Promise.all(readers)
    console.log(`disk concurrency: ${writes} writes, ${reads} reads audited, ${mismatches.length} mismatches`)
    expect(mismatches.slice(0, 10)).toEqual([])
    expect(reads).toBeGreaterThan(100)

    // What stays on disk, read by a new instance (a restart), is still one version each.
    await Promise.all(instances.map((s) => s.driver.idle()))
    const restarted = await openDiskStore({ dir: root })
    for (const path of paths) check(`after restart ${path}`, await restarted.stat(path))
    expect(mismatches).toEqual([])
    await restarted.sweep()
    expect(await leftovers(root)).toEqual(NOTHING_LEFT)
  })
})

describe('disk commit protocol: a process killed at every step', () => {
  let root: string
  let store: DiskStore
  const v1 = { contentType: 'text/plain', metadata: { version: 1 } }
  const v2 = { contentType: 'application/json', metadata: { version: 2 } }
  const bytesV2 = Buffer.alloc(300_000, 2)

  beforeEach(async () => {
    root = await freshRoot()
    store = await openDiskStore({ dir: root })
    await store.put('doc.bin', streamOf('version one'), v1)
  })

  /** The path holds v1 or v2, each whole, with its own attributes; which one is returned. */
  const oneVersion = async (path = 'doc.bin') => {
    const fresh = await openDiskStore({ dir: root })
    const { file, body } = await fresh.read(path)
    const bytes = await readAll(body)
    if (file.sha256 === sha256('version one')) {
      expect(file).toMatchObject(v1)
      expect(bytes.toString()).toBe('version one')
      return 1
    }
    expect(file).toMatchObject({ ...v2, sha256: sha256(bytesV2) })
    expect(sha256(bytes)).toBe(sha256(bytesV2))
    return 2
  }

  for (const [point, expected] of [
    ['disk.put.written', 1],
    ['disk.commit.attached', 1],
    ['disk.commit.placed', 2],
  ] as const) {
    it(`a PUT killed at ${point} leaves version ${expected}, whole, and nothing after a sweep`, async () => {
      const { exit } = await runChild({ dir: root, op: 'put', path: 'doc.bin', size: bytesV2.length, fill: 2, ...v2 }, [point])
      expect(exit.signal).toBe('SIGKILL')
      expect(await oneVersion()).toBe(expected)
      await store.sweep()
      expect(await leftovers(root)).toEqual(NOTHING_LEFT)
    })
  }

  it('a PUT killed part way through its body leaves version 1, and its temporary file goes with the first sweep', async () => {
    const { exit } = await runChild({ dir: root, op: 'put', path: 'doc.bin', size: 8 << 20, fill: 2, dieAfterBytes: 3 << 20, ...v2 })
    expect(exit.signal).toBe('SIGKILL')
    expect((await leftovers(root)).tmp.length).toBe(1) // the cut upload, until the sweep
    expect(await oneVersion()).toBe(1)
    await store.sweep()
    expect(await leftovers(root)).toEqual(NOTHING_LEFT)
  })

  it('a lock held by a process killed while holding it never blocks the next writer', async () => {
    const { exit } = await runChild({ dir: root, op: 'put', path: 'doc.bin', size: 10, fill: 2 }, ['disk.commit.attached'])
    expect(exit.signal).toBe('SIGKILL')
    expect((await leftovers(root)).locks).toHaveLength(1) // the dead process's lock on doc.bin
    // This instance was open before the crash: its writer finds the holder dead and reaps it.
    const { file } = await store.put('doc.bin', streamOf('after the crash'), { ifMatch: [`"${sha256('version one')}"`] })
    expect(file.sha256).toBe(sha256('after the crash'))
    await store.sweep()
    expect(await leftovers(root)).toEqual(NOTHING_LEFT)
  })

  it('keeps the temporary files of a live instance and reclaims a dead one\'s at once', async () => {
    const holder = spawnStoreChild({ dir: root, op: 'hold' })
    await waitForOutput(holder, 'ready')
    const ids = (await readdir(join(root, '.filestorage/tmp'))).filter((id) => id !== store.driver.instanceId)
    expect(ids).toHaveLength(1)
    await writeFile(join(root, '.filestorage/tmp', ids[0]!, 'in-flight'), 'half an upload')
    await store.sweep()
    expect((await leftovers(root)).tmp).toEqual([`tmp/${ids[0]}/in-flight`]) // its owner is alive
    await holder.stop('SIGKILL')
    await store.sweep() // the first sweep after it died
    expect(await leftovers(root)).toEqual(NOTHING_LEFT)
  })

  /** Files of upload folders other than their records (parts, claims, assembled files). */
  const staged = async () => (await uploadFiles(root)).map((f) => f.path).filter((p) => !/\/(session|complete)\.json$/.test(p))

  /** An upload of `doc.bin` as v2 in `parts` parts, every part sent. */
  const uploadInParts = async (parts: number) => {
    const { uploadId } = await store.createUpload('doc.bin', v2)
    const chunk = bytesV2.length / parts
    for (let p = 1; p <= parts; p++) await store.putPart(uploadId, p, streamOf(bytesV2.subarray((p - 1) * chunk, p * chunk)))
    return uploadId
  }

  // `upload.complete.finished`: the record says finished, the parts are not removed yet.
  for (const point of ['upload.complete.journaled', 'disk.commit.placed', 'upload.complete.committed', 'upload.complete.finished']) {
    for (const parts of [1, 3]) {
      it(`a completion of ${parts} part(s) killed at ${point}: a retry answers the stored file, never 409`, async () => {
        const uploadId = await uploadInParts(parts)
        const { exit } = await runChild({ dir: root, op: 'complete', uploadId }, [point])
        expect(exit.signal).toBe('SIGKILL')
        const fresh = await openDiskStore({ dir: root })
        const { file, created } = await fresh.completeUpload(uploadId)
        expect(created).toBe(false)
        expect(file).toMatchObject({ ...v2, sha256: sha256(bytesV2), size: bytesV2.length })
        expect(await oneVersion()).toBe(2)
        // Finished: completing again answers the same file; the upload takes nothing more.
        expect(await staged()).toEqual([]) // the finished upload keeps only its record, until it expires
        expect((await fresh.completeUpload(uploadId)).file.sha256).toBe(sha256(bytesV2))
        await expectCode(fresh.uploadStatus(uploadId), 'not_found')
        await expectCode(fresh.putPart(uploadId, 1, streamOf('late')), 'not_found')
        await store.sweep()
        expect(await leftovers(root)).toEqual(NOTHING_LEFT)
      })
    }
  }

  it('a completion of 3 parts killed once its record says finished, never sent again: the sweep removes the parts', async () => {
    const uploadId = await uploadInParts(3)
    const { exit } = await runChild({ dir: root, op: 'complete', uploadId }, ['upload.complete.finished'])
    expect(exit.signal).toBe('SIGKILL')
    expect(await oneVersion()).toBe(2)
    expect(await staged()).not.toEqual([]) // what the crash left: the parts of a finished upload
    await store.sweep()
    expect(await leftovers(root)).toEqual(NOTHING_LEFT)
    expect(await staged()).toEqual([])
    expect((await store.completeUpload(uploadId)).file.sha256).toBe(sha256(bytesV2)) // its record stays until it expires
  })

  it('an abort cut once its record says aborted (before its parts and record went): the sweep removes the parts', async () => {
    const uploadId = await uploadInParts(3)
    // What the engine's abort writes first; a kill -9 then leaves the rest.
    const { records } = store.driver.staging
    const { state, version } = (await records.read(uploadId))!
    expect(await records.update(uploadId, version, { ...state, finished: { aborted: true } })).toBe(true)
    await store.sweep()
    expect(await staged()).toEqual([])
    expect(await leftovers(root)).toEqual(NOTHING_LEFT)
    await expectCode(store.completeUpload(uploadId), 'not_found')
  })

  it('a tus append killed part way keeps the bytes that reached the disk, and the upload goes on from there', async () => {
    const total = 80 << 20
    const { uploadId } = await store.createUpload('appended.bin', { totalSize: total })
    await store.appendPart(uploadId, streamOf(Buffer.alloc(1 << 20, 9)), { offset: 0, keepPartial: true })
    const { exit } = await runChild({
      dir: root, op: 'append', uploadId, offset: 1 << 20, size: 64 << 20, fill: 9, dieAfterBytes: 48 << 20, keepPartial: true,
    })
    expect(exit.signal).toBe('SIGKILL')
    const fresh = await openDiskStore({ dir: root })
    // The sweeper recovering the dead append (re-hashing 48 MiB) when a HEAD asks: the HEAD waits for it.
    const sweeping = fresh.sweep()
    const dir = join(root, '.filestorage/uploads', uploadId)
    await waitFor('the sweeper to take the dead append over', async () => (await readdir(dir)).some((n) => n.includes(`.w.${fresh.driver.instanceId}.`)), {
      intervalMs: 1,
    })
    const { received } = await fresh.uploadStatus(uploadId)
    await sweeping
    // At least what the writer had handed to the file system (it buffers up to 1 MiB).
    expect(received).toBeGreaterThanOrEqual(48 << 20)
    expect(received).toBeLessThanOrEqual(65 << 20)
    await fresh.appendPart(uploadId, generatedFill(total - received), { offset: received })
    const { file } = await fresh.completeUpload(uploadId)
    expect(file.sha256).toBe(await sha256OfFill(total))
    await store.sweep()
    expect(await leftovers(root)).toEqual(NOTHING_LEFT)
  })

  // Killed between writing the part's record and giving the part back under its own name: the
  // record is what commits an append, so its bytes count from then on, even for an append that may
  // not keep a cut body (no keepPartial: its claim says drop), and whoever finds the claim gives the
  // part back at its recorded size. A fresh process's first append starts a new part; its second
  // extends that part in place (the digest state is kept in memory), hence `@2` for that path.
  for (const [what, repeat, point, keepPartial] of [
    ['a new part (tus)', 1, 'disk.append.recorded', true],
    ['a new part (no keepPartial)', 1, 'disk.append.recorded', false],
    ['the part it extends (tus)', 2, 'disk.append.recorded@2', true],
  ] as const) {
    it(`an append killed once the record of ${what} counts its bytes keeps them: parts, offset and bytes agree, and the upload goes on`, async () => {
      const MiB = 1 << 20
      const total = 8 * MiB
      const first = Buffer.alloc(MiB, 1)
      const sent = Buffer.alloc(repeat * MiB, 2) // what the killed process appended, all of it recorded
      const rest = Buffer.alloc(total - first.length - sent.length, 3)
      const { uploadId } = await store.createUpload('appended.bin', { totalSize: total })
      await store.appendPart(uploadId, streamOf(first), { offset: 0, keepPartial: true })
      const { exit } = await runChild(
        { dir: root, op: 'append', uploadId, offset: MiB, size: MiB, fill: 2, repeat, ...(keepPartial ? { keepPartial } : {}) },
        [point],
      )
      expect(exit.signal).toBe('SIGKILL')
      const dir = join(root, '.filestorage/uploads', uploadId)
      const claims = async () => (await readdir(dir)).filter((n) => n.includes('.w.'))
      expect(await claims()).toHaveLength(1) // part 2, never given back by its writer

      const fresh = await openDiskStore({ dir: root })
      const status = await fresh.uploadStatus(uploadId)
      expect({ received: status.received, parts: status.parts }).toEqual({
        received: first.length + sent.length,
        parts: [
          { part: 1, size: first.length, sha256: sha256(first) },
          { part: 2, size: sent.length, sha256: sha256(sent) },
        ],
      })
      expect(await claims()).toEqual([]) // given back under its own name, at its recorded size
      await fresh.appendPart(uploadId, streamOf(rest), { offset: status.received, keepPartial: true })
      const { file } = await fresh.completeUpload(uploadId)
      expect(file.sha256).toBe(sha256(Buffer.concat([first, sent, rest])))
      await store.sweep()
      expect(await leftovers(root)).toEqual(NOTHING_LEFT)
    })
  }

  it('a recursive delete killed after the folder left the tree: gone at once, reclaimed by the sweep', async () => {
    for (let i = 0; i < 20; i++) await store.put(`tree/sub${i % 3}/f${i}.txt`, streamOf(`file ${i}`))
    const { exit } = await runChild({ dir: root, op: 'delete', path: 'tree', recursive: true }, ['disk.discard.moved'])
    expect(exit.signal).toBe('SIGKILL')
    expect(await store.lookup('tree')).toBeNull()
    await store.sweep()
    expect(await leftovers(root)).toEqual(NOTHING_LEFT)
    expect(await oneVersion()).toBe(1)
  })

  it('a delete killed between unlinking the file and releasing its record leaves no record after the sweep', async () => {
    const { exit } = await runChild({ dir: root, op: 'delete', path: 'doc.bin' }, ['disk.delete.unlinked'])
    expect(exit.signal).toBe('SIGKILL')
    expect(await store.lookup('doc.bin')).toBeNull()
    await store.sweep()
    expect(await leftovers(root)).toEqual(NOTHING_LEFT)
  })
})

/** `size` bytes of 9, as a stream, without holding them. */
function generatedFill(size: number): ReadableStream<Uint8Array> {
  let left = size
  return new ReadableStream({
    pull(controller) {
      if (left === 0) return controller.close()
      const n = Math.min(left, 1 << 20)
      left -= n
      controller.enqueue(new Uint8Array(n).fill(9))
    },
  })
}

async function sha256OfFill(size: number): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of generatedFill(size) as unknown as AsyncIterable<Uint8Array>) hash.update(chunk)
  return hash.digest('hex')
}

describe('disk records: released by whoever takes a name away, walked only when a crash asks', () => {
  /** A file deleted by hand: its holder stays as the inode's last link, its record orphaned. */
  const deleteByHand = (root: string, path: string) => rm(join(root, path))

  it('walks every record at the first sweep, then not again until a crash asks for it or a day has passed', async () => {
    const root = await freshRoot()
    const store = await openDiskStore({ dir: root })
    await store.put('a.txt', streamOf('a'))
    await deleteByHand(root, 'a.txt')
    await store.sweep() // no walk made yet: this one walks
    expect((await leftovers(root)).orphanRecords).toBe(0)

    await store.put('b.txt', streamOf('b'))
    await deleteByHand(root, 'b.txt')
    await store.sweep()
    expect((await leftovers(root)).orphanRecords).toBe(1) // walked less than a day ago, and no crash since

    // A process of the store dies: whoever reaps it asks for a walk, which the next sweep makes.
    const holder = spawnStoreChild({ dir: root, op: 'hold' })
    await waitForOutput(holder, 'ready')
    await holder.stop('SIGKILL')
    await store.sweep()
    expect(await leftovers(root)).toEqual(NOTHING_LEFT)

    // Without a crash, a store whose walks are due more often walks at its next sweep.
    await store.put('c.txt', streamOf('c'))
    await deleteByHand(root, 'c.txt')
    const often = await openDiskStore({ dir: root, recordWalkIntervalMs: 0 })
    await often.sweep()
    expect(await leftovers(root)).toEqual(NOTHING_LEFT)
    await often.close()

    // The file that keeps the time of the last walk removed by hand: the next sweep walks, and makes it again.
    await store.put('d.txt', streamOf('d'))
    await deleteByHand(root, 'd.txt')
    await rm(join(root, '.filestorage/records-walked'))
    await store.sweep()
    expect(await leftovers(root)).toEqual(NOTHING_LEFT)
    await store.put('e.txt', streamOf('e'))
    await deleteByHand(root, 'e.txt')
    await store.sweep()
    expect((await leftovers(root)).orphanRecords).toBe(1)
    await store.close()
  })

  it('a walk asked for by a process that reaped the dead one at its start is made by another process\'s sweep', async () => {
    const root = await freshRoot()
    const store = await openDiskStore({ dir: root })
    await store.put('doc.bin', streamOf('version one'))
    await store.sweep() // the first walk: the next is not due for a day
    const { exit } = await runChild({ dir: root, op: 'put', path: 'doc.bin', size: 10, fill: 2 }, ['disk.commit.placed'])
    expect(exit.signal).toBe('SIGKILL')
    const restarted = await openDiskStore({ dir: root }) // reaps the dead writer at once
    expect((await leftovers(root)).orphanRecords).toBe(1) // the replaced version's, never released
    await store.sweep()
    expect(await leftovers(root)).toEqual(NOTHING_LEFT)
    await Promise.all([store.close(), restarted.close()])
  })

  it('an upload aborted after a completion died with its part recorded releases that record, not left to a walk', async () => {
    const root = await freshRoot()
    const store = await openDiskStore({ dir: root })
    const { uploadId } = await store.createUpload('doc.bin')
    await store.putPart(uploadId, 1, streamOf('the only part'))
    const { exit } = await runChild({ dir: root, op: 'complete', uploadId }, ['disk.commit.attached'])
    expect(exit.signal).toBe('SIGKILL')
    await store.sweep() // reaps the dead process and walks: the part, still in its upload, keeps its record
    expect(await leftovers(root)).toEqual(NOTHING_LEFT)
    await store.abortUpload(uploadId)
    expect(await leftovers(root)).toEqual(NOTHING_LEFT)
    await store.close()
  })

  it('a version replaced while a web server holds it is released when the hold ends, not left to a walk', async () => {
    const root = await freshRoot()
    const store = await openDiskStore({ dir: root })
    await store.sweep() // the first walk: the next is not due for a day
    const first = await store.put('held.bin', streamOf('version one'))
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    try {
      expect(await store.driver.localVersion(first.file)).toBeDefined()
      await store.put('held.bin', streamOf('version two')) // its release skips the held version
      expect((await leftovers(root)).orphanRecords).toBe(0) // held: not orphaned yet
      vi.advanceTimersByTime(LOCAL_VERSION_HOLD_MS)
    } finally {
      vi.useRealTimers()
    }
    await waitFor('the hold to end and the version to be released', async () => {
      const left = await leftovers(root)
      return left.tmp.length === 0 && left.orphanRecords === 0
    })
    expect(await leftovers(root)).toEqual(NOTHING_LEFT)

    // A store closed while it holds a version releases it as it goes.
    const second = await store.lookup('held.bin')
    expect(await store.driver.localVersion(second as StoredFile)).toBeDefined()
    await store.delete('held.bin')
    await store.close()
    expect(await leftovers(root)).toEqual(NOTHING_LEFT)
  })
})
