/**
 * The disk driver: the storage contract, then what only plain files on disk can show (files an
 * operator can read, sidecars, symbolic links, crash leftovers).
 */
import { appendFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import { DiskDriver } from '../../src/storage/index.js'
import { expectCode } from '../helpers/expect-error.js'
import { failingAfter, heldUntil, sha256, streamOf, text } from '../helpers/streams.js'
import { CONTRACT_POLICY, describeStorageContract } from './contract.js'

const roots: string[] = []
const freshRoot = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'filestorage-disk-'))
  roots.push(dir)
  return dir
}
afterAll(async () => {
  await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })))
})

describeStorageContract('disk', {
  open: async (policy) => DiskDriver.open({ dir: await freshRoot(), uploads: policy }),
})

describe('disk driver on its own', () => {
  let root: string
  let store: DiskDriver
  beforeEach(async () => {
    root = await freshRoot()
    store = await DiskDriver.open({ dir: root, uploads: CONTRACT_POLICY })
  })

  it('keeps files as plain files an operator can read, and nothing else beside them', async () => {
    await store.put('reports/q1.txt', streamOf('quarter one'))
    expect(await readFile(join(root, 'reports/q1.txt'), 'utf8')).toBe('quarter one')
    expect((await readdir(root)).sort()).toEqual(['.filestorage', 'reports'])
    expect(await readdir(join(root, 'reports'))).toEqual(['q1.txt'])
  })

  it('adopts a file an operator put there by hand, hashing it once', async () => {
    await mkdir(join(root, 'manual'))
    await writeFile(join(root, 'manual/notes.txt'), '# by hand')
    const file = await store.stat('manual/notes.txt')
    expect(file).toMatchObject({ size: 9, sha256: sha256('# by hand'), contentType: 'text/plain; charset=utf-8' })
    expect((await store.list('manual')).entries.map((e) => e.name)).toEqual(['notes.txt'])
  })

  it('notices a file replaced behind its back and describes the new bytes', async () => {
    await store.put('changed.txt', streamOf('original'), { metadata: { a: 1 } })
    await writeFile(join(root, 'changed.txt'), 'edited by an operator')
    const file = await store.stat('changed.txt')
    expect(file.sha256).toBe(sha256('edited by an operator'))
    expect(file.size).toBe('edited by an operator'.length)
  })

  it('never lists or serves the reserved folder', async () => {
    await store.put('a.txt', streamOf('a'))
    expect((await store.list('')).entries.map((e) => e.name)).toEqual(['a.txt'])
    expect((await store.list('', { recursive: true })).entries.map((e) => e.path)).toEqual(['a.txt'])
  })

  it('does not follow symbolic links out of the root, for reads, writes or listings', async () => {
    const outside = await freshRoot()
    await writeFile(join(outside, 'secret.txt'), 'secret')
    await symlink(outside, join(root, 'escape'))
    await symlink(join(outside, 'secret.txt'), join(root, 'secret-link.txt'))
    await expectCode(store.read('escape/secret.txt'), 'forbidden')
    await expectCode(store.read('secret-link.txt'), 'forbidden')
    await expectCode(store.put('escape/new.txt', streamOf('x')), 'forbidden')
    await expectCode(store.delete('escape/secret.txt'), 'forbidden')
    await expectCode(store.list('escape'), 'forbidden')
    await expectCode(store.move('escape/secret.txt', 'stolen.txt'), 'forbidden')
    expect((await store.list('')).entries).toEqual([])
    expect(await readdir(outside)).toEqual(['secret.txt'])
    expect(await readFile(join(outside, 'secret.txt'), 'utf8')).toBe('secret')
  })

  it('follows symbolic links that stay inside the root', async () => {
    await store.put('real/file.txt', streamOf('inside'))
    await symlink(join(root, 'real'), join(root, 'alias'))
    expect(await text((await store.read('alias/file.txt')).body)).toBe('inside')
  })

  it('completes an upload of one part with that part itself: its bytes, its sha256, a wrong sha256 refused first', async () => {
    const { uploadId } = await store.createUpload('one/part.bin')
    const info = await store.putPart(uploadId, 1, streamOf('the whole file in one part'))
    await expectCode(store.completeUpload(uploadId, { expectedSha256: sha256('something else') }), 'checksum_mismatch')
    expect((await store.uploadStatus(uploadId)).parts).toHaveLength(1) // refused before anything moved
    const { file } = await store.completeUpload(uploadId, { expectedSha256: info.sha256 })
    expect(file.sha256).toBe(sha256('the whole file in one part'))
    expect(await readFile(join(root, 'one/part.bin'), 'utf8')).toBe('the whole file in one part')
    expect(await text((await store.read('one/part.bin')).body)).toBe('the whole file in one part')
    expect(await readdir(join(root, '.filestorage/uploads'))).toEqual([])
  })

  it('a cut-off upload leaves no temporary file behind', async () => {
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new Uint8Array(50_000))
        c.error(new Error('cut'))
      },
    })
    await expect(store.put('cut.bin', body)).rejects.toThrow()
    expect(await readdir(join(root, '.filestorage/tmp'))).toEqual([])
  })

  it('sweeps temporary files a crash left behind, but not fresh ones', async () => {
    const stale = join(root, '.filestorage/tmp/stale-upload')
    const fresh = join(root, '.filestorage/tmp/fresh-upload')
    await writeFile(stale, 'half')
    await writeFile(fresh, 'half')
    const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000)
    await utimes(stale, twoHoursAgo, twoHoursAgo)
    await store.sweep()
    expect(await readdir(join(root, '.filestorage/tmp'))).toEqual(['fresh-upload'])
  })

  it('keeps the parts of a part upload under the reserved folder until completed', async () => {
    const { uploadId } = await store.createUpload('big.bin')
    await store.putPart(uploadId, 1, streamOf('part one'))
    expect(await readdir(join(root, '.filestorage/uploads', uploadId))).toContain('part-00001')
    expect(await readdir(root)).toEqual(['.filestorage'])
    await store.completeUpload(uploadId)
    expect(await readdir(join(root, '.filestorage/uploads'))).toEqual([])
    expect(await readFile(join(root, 'big.bin'), 'utf8')).toBe('part one')
  })

  it('keeps appended bytes, a cut-off prefix included, across a restart of the driver', async () => {
    const { uploadId } = await store.createUpload('resumed.bin', { totalSize: 1000, attributes: { a: 'b' } })
    await store.appendPart(uploadId, streamOf(Buffer.alloc(100, 1)), { offset: 0 })
    await store.appendPart(uploadId, failingAfter(300), { offset: 100, keepPartial: true })
    const again = await DiskDriver.open({ dir: root, uploads: CONTRACT_POLICY })
    expect(await again.uploadStatus(uploadId)).toMatchObject({ received: 400, totalSize: 1000, attributes: { a: 'b' } })
    await again.appendPart(uploadId, streamOf(Buffer.alloc(600, 2)), { offset: 400 })
    // The restarted driver has no running sha256 of the first part, so it wrote a second one.
    expect((await again.uploadStatus(uploadId)).parts.map((p) => p.size)).toEqual([400, 600])
    const whole = Buffer.concat([Buffer.alloc(100, 1), Buffer.alloc(300, 7), Buffer.alloc(600, 2)])
    expect((await again.completeUpload(uploadId)).file.sha256).toBe(sha256(whole))
    expect(await readdir(join(root, '.filestorage/tmp'))).toEqual([])
  })

  describe('appends extending the part the previous append left', () => {
    const uploadDir = (uploadId: string) => join(root, '.filestorage/uploads', uploadId)
    const ones = (size: number, n: number) => Buffer.alloc(size, n)

    it('ends an upload sent in several appends as one part, which becomes the file without a copy', async () => {
      const { uploadId } = await store.createUpload('many/patches.bin', { totalSize: 3000 })
      for (let i = 0; i < 3; i++) await store.appendPart(uploadId, streamOf(ones(1000, i)), { offset: i * 1000 })
      const whole = Buffer.concat([ones(1000, 0), ones(1000, 1), ones(1000, 2)])
      expect((await store.uploadStatus(uploadId)).parts).toEqual([{ part: 1, size: 3000, sha256: sha256(whole) }])
      const { ino } = await stat(join(uploadDir(uploadId), 'part-00001'))
      const { file } = await store.completeUpload(uploadId)
      expect(file.sha256).toBe(sha256(whole))
      expect((await stat(join(root, 'many/patches.bin'))).ino).toBe(ino) // renamed, not copied
      expect(await readFile(join(root, 'many/patches.bin'))).toEqual(whole)
    })

    it('cuts the part back when an append is refused, and the next one goes on from there', async () => {
      const { uploadId } = await store.createUpload('many/refused.bin')
      await store.appendPart(uploadId, streamOf(ones(100, 1)), { offset: 0 })
      const wrong = { algorithm: 'sha256' as const, hex: sha256('something else') }
      await expectCode(store.appendPart(uploadId, streamOf(ones(50, 2)), { offset: 100, expectedChecksum: wrong }), 'checksum_mismatch')
      await expectCode(store.appendPart(uploadId, failingAfter(300), { offset: 100 }), 'invalid_request')
      expect(await readdir(uploadDir(uploadId))).toEqual(['part-00001', 'part-00001.json', 'session.json'])
      expect((await stat(join(uploadDir(uploadId), 'part-00001'))).size).toBe(100)
      const right = { algorithm: 'sha256' as const, hex: sha256(ones(50, 2)) } // of the appended bytes alone
      await store.appendPart(uploadId, streamOf(ones(50, 2)), { offset: 100, expectedChecksum: right })
      expect((await store.completeUpload(uploadId)).file.sha256).toBe(sha256(Buffer.concat([ones(100, 1), ones(50, 2)])))
    })

    it('reads a part a dead writer left claimed, and appends after it as a new part', async () => {
      const { uploadId } = await store.createUpload('many/claimed.bin')
      await store.appendPart(uploadId, streamOf(ones(100, 1)), { offset: 0 })
      // A writer died holding the part, with bytes past its record that were never committed.
      await rename(join(uploadDir(uploadId), 'part-00001'), join(uploadDir(uploadId), 'part-00001.wdead'))
      await appendFile(join(uploadDir(uploadId), 'part-00001.wdead'), 'uncommitted')
      expect((await store.uploadStatus(uploadId)).received).toBe(100)
      await store.appendPart(uploadId, streamOf(ones(50, 2)), { offset: 100 })
      expect((await store.uploadStatus(uploadId)).parts.map((p) => p.size)).toEqual([100, 50])
      expect((await store.completeUpload(uploadId)).file.sha256).toBe(sha256(Buffer.concat([ones(100, 1), ones(50, 2)])))
    })

    it('keeps a part sent again while an append was extending it, and refuses the append', async () => {
      const { uploadId } = await store.createUpload('many/resent.bin')
      await store.appendPart(uploadId, streamOf(ones(100, 1)), { offset: 0 })
      let release!: () => void
      const held = heldUntil(new Promise<void>((resolve) => (release = resolve)), ones(50, 2))
      const extending = store.appendPart(uploadId, held.stream, { offset: 100 })
      await held.reading // the append holds part 1 now
      await store.putPart(uploadId, 1, streamOf(ones(100, 1))) // the same bytes, sent again as part 1
      release()
      await expectCode(extending, 'offset_mismatch')
      expect((await store.uploadStatus(uploadId)).parts).toEqual([{ part: 1, size: 100, sha256: sha256(ones(100, 1)) }])
      expect(await readdir(uploadDir(uploadId))).toEqual(['part-00001', 'part-00001.json', 'session.json'])
      expect((await store.completeUpload(uploadId)).file.sha256).toBe(sha256(ones(100, 1)))
    })

    it('lets two instances on one folder take turns: each extends only the part it left itself', async () => {
      const other = await DiskDriver.open({ dir: root, uploads: CONTRACT_POLICY })
      const { uploadId } = await store.createUpload('many/turns.bin')
      await store.appendPart(uploadId, streamOf(ones(100, 1)), { offset: 0 })
      await other.appendPart(uploadId, streamOf(ones(100, 2)), { offset: 100 })
      await store.appendPart(uploadId, streamOf(ones(100, 3)), { offset: 200 })
      await store.appendPart(uploadId, streamOf(ones(100, 4)), { offset: 300 })
      expect((await other.uploadStatus(uploadId)).parts.map((p) => p.size)).toEqual([100, 100, 200])
      const { file } = await other.completeUpload(uploadId)
      expect(file.sha256).toBe(sha256(Buffer.concat([ones(100, 1), ones(100, 2), ones(100, 3), ones(100, 4)])))
    })
  })

  it('reports itself down when its folder is gone', async () => {
    await rm(root, { recursive: true, force: true })
    expect((await store.health()).ok).toBe(false)
  })
})
