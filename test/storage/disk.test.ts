/**
 * The disk driver: the storage contract, then what only plain files on disk can show (files an
 * operator can read, sidecars, symbolic links, crash leftovers).
 */
import { execFileSync } from 'node:child_process'
import { appendFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import { type DiskStore, openDiskStore } from '../helpers/disk-store.js'
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
  open: async (policy) => openDiskStore({ dir: await freshRoot(), uploads: policy }),
})

describe('disk driver on its own', () => {
  let root: string
  let store: DiskStore
  beforeEach(async () => {
    root = await freshRoot()
    store = await openDiskStore({ dir: root, uploads: CONTRACT_POLICY })
  })

  it('keeps files as plain files an operator can read, and nothing else beside them', async () => {
    await store.put('reports/q1.txt', streamOf('quarter one'))
    expect(await readFile(join(root, 'reports/q1.txt'), 'utf8')).toBe('quarter one')
    expect((await readdir(root)).sort()).toEqual(['.filestorage', 'reports'])
    expect(await readdir(join(root, 'reports'))).toEqual(['q1.txt'])
  })

  it('reads a range worked out for a longer version that was replaced meanwhile as what fits, described as the new version', async () => {
    const long = await store.put('shrinks.bin', streamOf('x'.repeat(5000)))
    await store.put('shrinks.bin', streamOf('short'))
    // The caller worked the range out from the long version; the short one is what it opens.
    const past = await store.read('shrinks.bin', { start: 1000, end: 4999 })
    expect(past.file.etag).not.toBe(long.file.etag)
    expect(await text(past.body)).toBe('')
    const across = await store.read('shrinks.bin', { start: 2, end: 4999 })
    expect(await text(across.body)).toBe('ort')
  })

  it('names each version it described for a web server to send, and only that version', async () => {
    const first = await store.put('pinned.bin', streamOf('version one'))
    const name = await store.driver.localVersion(first.file)
    await store.put('pinned.bin', streamOf('version two, longer'))
    await store.delete('pinned.bin')
    // Replaced, then deleted: the name still holds the version described.
    expect(await readFile(join(root, name!), 'utf8')).toBe('version one')
    expect(name!.startsWith('.filestorage/')).toBe(true)
    const gone = (await store.put('pinned.bin', streamOf('three'))).file
    await store.put('pinned.bin', streamOf('four'))
    // Its holder released, its inode number perhaps taken by a newer file: no name at all.
    expect(await store.driver.localVersion(gone)).toBeUndefined()
  })

  it('adopts a file an operator put there by hand: described from its bytes, recorded once in the background', async () => {
    await mkdir(join(root, 'manual'))
    await writeFile(join(root, 'manual/notes.txt'), '# by hand')
    const file = await store.stat('manual/notes.txt')
    expect(file).toMatchObject({ size: 9, sha256: sha256('# by hand'), contentType: 'text/plain; charset=utf-8' })
    expect((await store.list('manual')).entries.map((e) => e.name)).toEqual(['notes.txt'])
    await store.driver.idle()
    // Recorded: the file now has its holder (a second link), and a new instance reads the record.
    expect((await stat(join(root, 'manual/notes.txt'))).nlink).toBe(2)
    const again = await openDiskStore({ dir: root })
    expect(await again.stat('manual/notes.txt')).toEqual(file)
  })

  it('describes a file edited in place from its new bytes, keeping its content type and metadata', async () => {
    await store.put('changed.txt', streamOf('original'), { contentType: 'text/markdown', metadata: { a: 1 } })
    await writeFile(join(root, 'changed.txt'), 'edited by an operator') // the same inode, new bytes
    const file = await store.stat('changed.txt')
    expect(file).toMatchObject({ sha256: sha256('edited by an operator'), size: 21, contentType: 'text/markdown', metadata: { a: 1 } })
    await store.driver.idle()
    expect(await (await openDiskStore({ dir: root })).stat('changed.txt')).toEqual(file)
  })

  it('describes a file replaced by hand (a new inode) as a new file', async () => {
    await store.put('replaced.txt', streamOf('original'), { contentType: 'text/markdown', metadata: { a: 1 } })
    await writeFile(join(root, 'other.txt.new'), 'dropped in by an operator')
    await rename(join(root, 'other.txt.new'), join(root, 'replaced.txt'))
    const file = await store.stat('replaced.txt')
    expect(file).toMatchObject({ sha256: sha256('dropped in by an operator'), contentType: 'text/plain; charset=utf-8', metadata: {} })
  })

  it('takes over the sidecars of a store written by an earlier version, then removes them', async () => {
    await writeFile(join(root, 'old.txt'), 'written by 0.1')
    const { ino, size, mtimeMs } = await stat(join(root, 'old.txt'))
    await mkdir(join(root, '.filestorage/meta'), { recursive: true })
    const sidecar = { v: 1, sha256: sha256('written by 0.1'), size, mtimeMs, ino, contentType: 'text/x-old', metadata: { kept: true }, created: '2024-01-02T03:04:05.000Z' }
    await writeFile(join(root, '.filestorage/meta/old.txt'), JSON.stringify(sidecar))
    const upgraded = await openDiskStore({ dir: root })
    expect(await upgraded.stat('old.txt')).toMatchObject({ contentType: 'text/x-old', metadata: { kept: true }, created: sidecar.created })
    expect(await readdir(join(root, '.filestorage'))).not.toContain('meta')
  })

  it('keeps every file\'s attributes in a copy of the folder that kept its hard links (a restore from backup)', async () => {
    for (let i = 0; i < 30; i++) await store.put(`restore/f${i}.txt`, streamOf(`file ${i}`), { contentType: 'text/x-kept', metadata: { i } })
    const copy = await freshRoot()
    await rm(copy, { recursive: true })
    execFileSync('cp', ['-a', root, copy]) // new inode numbers, hard links kept
    const restored = await openDiskStore({ dir: copy })
    for (let i = 0; i < 30; i++) {
      expect(await restored.stat(`restore/f${i}.txt`)).toMatchObject({ contentType: 'text/x-kept', metadata: { i }, sha256: sha256(`file ${i}`) })
    }
    // A copy that did not keep them loses the attributes, never mixes them up.
    const flat = await freshRoot()
    await rm(flat, { recursive: true })
    execFileSync('cp', ['-r', '--no-preserve=links', root, flat])
    expect(await (await openDiskStore({ dir: flat })).stat('restore/f3.txt')).toMatchObject({ metadata: {}, sha256: sha256('file 3') })
  })

  describe('two instances on one folder', () => {
    it('open a new folder together: every one starts, and the folder is marked once', async () => {
      const fresh = await mkdtemp(join(tmpdir(), 'filestorage-disk-together-'))
      try {
        const opened = await Promise.allSettled(Array.from({ length: 8 }, () => openDiskStore({ dir: fresh })))
        expect(opened.filter((r) => r.status === 'rejected')).toEqual([])
        expect((await readdir(join(fresh, '.filestorage'))).filter((name) => name.startsWith('store.json'))).toEqual(['store.json'])
        for (const r of opened) if (r.status === 'fulfilled') await r.value.close()
      } finally {
        await rm(fresh, { recursive: true, force: true })
      }
    })

    it('let exactly one of two creations with If-None-Match: * win, every time', async () => {
      const other = await openDiskStore({ dir: root, uploads: CONTRACT_POLICY })
      for (let round = 0; round < 20; round++) {
        const results = await Promise.allSettled([
          store.put(`once/${round}`, streamOf('from one'), { mustNotExist: true, metadata: { by: 1 } }),
          other.put(`once/${round}`, streamOf('from two'), { mustNotExist: true, metadata: { by: 2 } }),
        ])
        const won = results.filter((r) => r.status === 'fulfilled')
        expect(won).toHaveLength(1)
        const loser = results.find((r) => r.status === 'rejected') as PromiseRejectedResult
        expect(loser.reason).toMatchObject({ code: 'precondition_failed' })
        const stored = await store.stat(`once/${round}`)
        expect(stored.metadata).toEqual({ by: stored.sha256 === sha256('from one') ? 1 : 2 })
      }
    })

    it('lose no update to If-Match read-modify-write cycles racing from both', async () => {
      const other = await openDiskStore({ dir: root, uploads: CONTRACT_POLICY })
      await store.put('counter', streamOf('0'))
      let succeeded = 0
      const cycle = async (driver: DiskStore) => {
        for (let i = 0; i < 25; i++) {
          const { file, body } = await driver.read('counter')
          const next = String(Number(await text(body)) + 1)
          try {
            await driver.put('counter', streamOf(next), { ifMatch: [file.etag] })
            succeeded++
          } catch (e) {
            expect(e).toMatchObject({ code: 'precondition_failed' })
          }
        }
      }
      await Promise.all([cycle(store), cycle(other), cycle(store), cycle(other)])
      expect(succeeded).toBeGreaterThan(0)
      expect(await text((await store.read('counter')).body)).toBe(String(succeeded))
    })
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
    // Until it expires, the upload keeps its session and journal only: completing again answers the file.
    expect(await readdir(join(root, '.filestorage/uploads', uploadId))).toEqual(['complete.json', 'session.json'])
    expect((await store.completeUpload(uploadId)).file).toEqual(file)
  })

  it('a cut-off upload leaves no temporary file behind', async () => {
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new Uint8Array(50_000))
        c.error(new Error('cut'))
      },
    })
    await expect(store.put('cut.bin', body)).rejects.toThrow()
    expect(await readdir(join(root, '.filestorage/tmp', store.driver.instanceId))).toEqual([])
  })

  it('keeps the parts of a part upload under the reserved folder until completed', async () => {
    const { uploadId } = await store.createUpload('big.bin')
    await store.putPart(uploadId, 1, streamOf('part one'))
    expect(await readdir(join(root, '.filestorage/uploads', uploadId))).toContain('part-00001')
    expect(await readdir(root)).toEqual(['.filestorage'])
    await store.completeUpload(uploadId)
    expect(await readdir(join(root, '.filestorage/uploads', uploadId))).toEqual(['complete.json', 'session.json'])
    expect(await readFile(join(root, 'big.bin'), 'utf8')).toBe('part one')
  })

  it('keeps appended bytes, a cut-off prefix included, across a restart of the driver', async () => {
    const { uploadId } = await store.createUpload('resumed.bin', { totalSize: 1000, attributes: { a: 'b' } })
    await store.appendPart(uploadId, streamOf(Buffer.alloc(100, 1)), { offset: 0 })
    await store.appendPart(uploadId, failingAfter(300), { offset: 100, keepPartial: true })
    const again = await openDiskStore({ dir: root, uploads: CONTRACT_POLICY })
    expect(await again.uploadStatus(uploadId)).toMatchObject({ received: 400, totalSize: 1000, attributes: { a: 'b' } })
    await again.appendPart(uploadId, streamOf(Buffer.alloc(600, 2)), { offset: 400 })
    // The restarted driver has no running sha256 of the first part, so it wrote a second one.
    expect((await again.uploadStatus(uploadId)).parts.map((p) => p.size)).toEqual([400, 600])
    const whole = Buffer.concat([Buffer.alloc(100, 1), Buffer.alloc(300, 7), Buffer.alloc(600, 2)])
    expect((await again.completeUpload(uploadId)).file.sha256).toBe(sha256(whole))
    expect(await readdir(join(root, '.filestorage/tmp', again.driver.instanceId))).toEqual([])
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

    for (const [flag, kept] of [['k', true], ['d', false]] as const) {
      it(`recovers a part a dead writer left claimed, ${kept ? 'keeping' : 'dropping'} the bytes it had not committed`, async () => {
        const { uploadId } = await store.createUpload('many/claimed.bin')
        await store.appendPart(uploadId, streamOf(ones(100, 1)), { offset: 0 })
        // A writer (an instance that is not alive) died extending part 1, with 11 bytes past its record.
        const claim = join(uploadDir(uploadId), `part-00001.w.dead-0123456789ab.100.100.${flag}.00ff00ff`)
        await rename(join(uploadDir(uploadId), 'part-00001'), claim)
        await appendFile(claim, 'uncommitted')
        expect((await store.uploadStatus(uploadId)).received).toBe(kept ? 111 : 100)
        expect(await readdir(uploadDir(uploadId))).toEqual(['part-00001', 'part-00001.json', 'session.json'])
        await store.appendPart(uploadId, streamOf(ones(50, 2)), { offset: kept ? 111 : 100 })
        const first = kept ? Buffer.concat([ones(100, 1), Buffer.from('uncommitted')]) : ones(100, 1)
        expect((await store.completeUpload(uploadId)).file.sha256).toBe(sha256(Buffer.concat([first, ones(50, 2)])))
      })
    }

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
      const other = await openDiskStore({ dir: root, uploads: CONTRACT_POLICY })
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
