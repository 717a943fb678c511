/**
 * The storage contract: what every driver must do, as one suite. Each driver's test file calls
 * `describeStorageContract` with a way to open a fresh, empty store; nothing here knows which
 * driver it is testing.
 */
import { createHash } from 'node:crypto'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import {
  EMPTY_SHA256,
  type Store,
  type StoredEntry,
  type StoredFile,
  type UploadPolicy,
} from '../../src/storage/index.js'
import { expectCode } from '../helpers/expect-error.js'
import { failingAfter, generated, readAll, sha256, streamOf, text } from '../helpers/streams.js'

export interface ContractTarget {
  /** Opens an empty store. Called before every test; the previous store is closed first. */
  open(policy: UploadPolicy): Promise<Store>
  /** Called once after the suite. */
  cleanup?(): Promise<void>
}

/** Small parts so the limits are reachable in tests. */
export const CONTRACT_POLICY: UploadPolicy = { partSizeLimit: 256 * 1024, ttlMs: 60 * 60 * 1000, completionLeaseMs: 30_000 }

const names = (entries: StoredEntry[]) => entries.map((e) => e.name)
const paths = (entries: StoredEntry[]) => entries.map((e) => e.path)

export function describeStorageContract(label: string, target: ContractTarget): void {
  describe(`storage contract: ${label}`, () => {
    let store: Store

    beforeEach(async () => {
      await store?.close()
      store = await target.open(CONTRACT_POLICY)
    })
    afterAll(async () => {
      await store?.close()
      await target.cleanup?.()
    })

    const put = (path: string, content: string | Uint8Array, options = {}) =>
      store.put(path, streamOf(content), options).then((r) => r.file)
    const contentOf = async (path: string) => text((await store.read(path)).body)

    describe('put and read', () => {
      it('stores a file and reads it back with its sha256, size and attributes', async () => {
        const { file, created } = await store.put('docs/hello.txt', streamOf('hello ', 'world'), {
          contentType: 'text/plain; charset=utf-8',
          metadata: { owner: 'ana', tags: ['a', 'b'] },
        })
        expect(created).toBe(true)
        expect(file).toMatchObject({
          type: 'file',
          path: 'docs/hello.txt',
          name: 'hello.txt',
          size: 11,
          contentType: 'text/plain; charset=utf-8',
          sha256: sha256('hello world'),
          etag: `"${sha256('hello world')}"`,
          metadata: { owner: 'ana', tags: ['a', 'b'] },
        })
        expect(['disk', 'mongo-inline', 'gridfs', 's3']).toContain(file.driver)
        expect(Date.parse(file.created)).not.toBeNaN()
        expect(Date.parse(file.modified)).toBeGreaterThanOrEqual(Date.parse(file.created))
        const read = await store.read('docs/hello.txt')
        expect(read.file).toEqual(file)
        expect(await text(read.body)).toBe('hello world')
        expect(await store.stat('docs/hello.txt')).toEqual(file)
      })

      it('guesses the content type from the name when none or a generic one is given', async () => {
        expect((await put('a.json', '{}')).contentType).toBe('application/json')
        expect((await put('b.png', 'x', { contentType: 'application/octet-stream' })).contentType).toBe('image/png')
        expect((await put('c.unknown-ext', 'x')).contentType).toBe('application/octet-stream')
      })

      it('stores an empty file', async () => {
        const file = await put('empty', '')
        expect(file.size).toBe(0)
        expect(file.sha256).toBe(EMPTY_SHA256)
        expect(await contentOf('empty')).toBe('')
      })

      it('stores names with spaces, unicode and astral characters', async () => {
        const path = 'dossier été/résumé 😀 (v2).txt'
        await put(path, 'ok')
        expect(await contentOf(path)).toBe('ok')
        expect((await store.stat(path)).name).toBe('résumé 😀 (v2).txt')
      })

      it('streams a multi-megabyte body and hashes it on the way', async () => {
        const g = generated(12 * 1024 * 1024 + 7, 42, 64 * 1024)
        const { file } = await store.put('big/blob.bin', g.stream)
        expect(file.size).toBe(12 * 1024 * 1024 + 7)
        expect(file.sha256).toBe(g.digest())
        expect(sha256(await readAll((await store.read('big/blob.bin')).body))).toBe(file.sha256)
      })

      it('replaces a file: created is false, the creation time is kept, readers see the new bytes', async () => {
        const first = await put('r.txt', 'one')
        const { file, created } = await store.put('r.txt', streamOf('two!'))
        expect(created).toBe(false)
        expect(file.created).toBe(first.created)
        expect(file.sha256).toBe(sha256('two!'))
        expect(await contentOf('r.txt')).toBe('two!')
      })

      it('reads a byte range, end inclusive', async () => {
        await put('range.txt', '0123456789')
        const { file, body } = await store.read('range.txt', { start: 2, end: 5 })
        expect(file.size).toBe(10)
        expect(await text(body)).toBe('2345')
        expect(await text((await store.read('range.txt', { start: 9, end: 9 })).body)).toBe('9')
      })

      it('reads a range deep inside a multi-chunk file', async () => {
        const size = 3 * 1024 * 1024 + 123
        const g = generated(size, 7, 256 * 1024)
        await store.put('chunks.bin', g.stream)
        const whole = await readAll((await store.read('chunks.bin')).body)
        const start = 1024 * 1024 - 10
        const end = 2 * 1024 * 1024 + 10
        const part = await readAll((await store.read('chunks.bin', { start, end })).body)
        expect(part.equals(whole.subarray(start, end + 1))).toBe(true)
        const tail = await readAll((await store.read('chunks.bin', { start: size - 1024, end: size - 1 })).body)
        expect(tail.equals(whole.subarray(size - 1024))).toBe(true)
      })

      it('answers not_found for a missing file, a folder, or a path under a file', async () => {
        await put('dir/file.txt', 'x')
        await expectCode(store.read('nope.txt'), 'not_found')
        await expectCode(store.read('dir'), 'not_found')
        await expectCode(store.stat('dir'), 'not_found')
        await expectCode(store.stat('dir/file.txt/below'), 'not_found')
        await expectCode(store.read('dir/file.txt/below'), 'not_found')
        await expectCode(store.read('dir/file.txt/below', { start: 0, end: 0 }), 'not_found')
      })
    })

    describe('failed writes leave nothing behind and harm nothing', () => {
      it('refuses a checksum mismatch and keeps the previous version', async () => {
        await put('c.txt', 'old')
        await expectCode(store.put('c.txt', streamOf('new'), { expectedSha256: sha256('other') }), 'checksum_mismatch')
        expect(await contentOf('c.txt')).toBe('old')
        await expectCode(store.put('d.txt', streamOf('new'), { expectedSha256: sha256('other') }), 'checksum_mismatch')
        expect(await store.lookup('d.txt')).toBeNull()
      })

      it('accepts a matching checksum', async () => {
        const file = await put('ok.txt', 'content', { expectedSha256: sha256('content') })
        expect(file.sha256).toBe(sha256('content'))
      })

      it('refuses a body over the size limit and keeps the previous version', async () => {
        await put('limit.bin', 'small')
        await expectCode(store.put('limit.bin', generated(64 * 1024).stream, { maxBytes: 1000 }), 'payload_too_large')
        expect(await contentOf('limit.bin')).toBe('small')
        await expectCode(store.put('limit2.bin', generated(64 * 1024).stream, { maxBytes: 1000 }), 'payload_too_large')
        expect(await store.lookup('limit2.bin')).toBeNull()
      })

      it('a body cut off half-way stores nothing and keeps the previous version', async () => {
        await put('cut.bin', 'previous')
        await expect(store.put('cut.bin', failingAfter(100_000))).rejects.toThrow()
        expect(await contentOf('cut.bin')).toBe('previous')
        await expect(store.put('new/cut.bin', failingAfter(100_000))).rejects.toThrow()
        expect(await store.lookup('new/cut.bin')).toBeNull()
        expect(await store.lookup('new')).toBeNull()
        expect(paths((await store.list('', { recursive: true })).entries)).toEqual(['cut.bin'])
      })

      // A size announced (Content-Length) may take another way in a driver (the disk store gathers
      // a small body and writes it at once): the same answers, below and above 64 KiB.
      for (const size of [4096, 128 * 1024]) {
        it(`with its size announced (${size} bytes): stores it, and a refusal part way leaves the previous version`, async () => {
          const body = generated(size, 7)
          const file = (await store.put('announced.bin', body.stream, { expectedSize: size, contentType: 'text/plain' })).file
          const digest = body.digest()
          expect(file).toMatchObject({ size, sha256: digest, contentType: 'text/plain' })
          expect(sha256(await readAll((await store.read('announced.bin')).body))).toBe(digest)
          const again = generated(size, 8)
          await expectCode(store.put('announced.bin', again.stream, { expectedSize: size, maxBytes: size - 1 }), 'payload_too_large')
          const wrong = generated(size, 9)
          await expectCode(store.put('announced.bin', wrong.stream, { expectedSize: size, expectedSha256: sha256('other') }), 'checksum_mismatch')
          await expect(store.put('announced.bin', failingAfter(size / 2), { expectedSize: size })).rejects.toThrow()
          await expect(store.put('announced-new.bin', failingAfter(size / 2), { expectedSize: size })).rejects.toThrow()
          expect((await store.stat('announced.bin')).sha256).toBe(digest)
          expect(paths((await store.list('', { recursive: true })).entries)).toEqual(['announced.bin'])
        })
      }

      it('refuses to store a file under a file, or over a folder', async () => {
        await put('f', 'file')
        await put('folder/inside.txt', 'x')
        await expectCode(store.put('f/child.txt', streamOf('x')), 'already_exists')
        await expectCode(store.put('f/deeper/still/child.txt', streamOf('x')), 'already_exists')
        await expectCode(store.put('folder/inside.txt/below', streamOf('x')), 'already_exists')
        await expectCode(store.put('folder', streamOf('x')), 'already_exists')
        expect(await contentOf('f')).toBe('file')
        expect(await contentOf('folder/inside.txt')).toBe('x')
      })
    })

    describe('preconditions', () => {
      it('mustNotExist (If-None-Match: *) creates but never replaces', async () => {
        await put('p.txt', 'first', { mustNotExist: true })
        await expectCode(store.put('p.txt', streamOf('second'), { mustNotExist: true }), 'precondition_failed')
        expect(await contentOf('p.txt')).toBe('first')
      })

      it('ifMatch replaces only the matching version', async () => {
        const v1 = await put('m.txt', 'v1')
        await expectCode(store.put('m.txt', streamOf('x'), { ifMatch: ['"deadbeef"'] }), 'precondition_failed')
        const v2 = await put('m.txt', 'v2', { ifMatch: [v1.etag] })
        expect(v2.sha256).toBe(sha256('v2'))
        await expectCode(store.put('m.txt', streamOf('v3'), { ifMatch: [v1.etag] }), 'precondition_failed')
        await put('m.txt', 'v3', { ifMatch: ['*'] })
        await expectCode(store.put('absent.txt', streamOf('x'), { ifMatch: ['*'] }), 'precondition_failed')
        expect(await contentOf('m.txt')).toBe('v3')
      })

      it('of concurrent creates with mustNotExist exactly one wins', async () => {
        const results = await Promise.allSettled(
          Array.from({ length: 5 }, (_, i) => store.put('race.txt', streamOf(`writer ${i}`), { mustNotExist: true })),
        )
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
      })

      it('concurrent replaces leave one whole version', async () => {
        const bodies = Array.from({ length: 4 }, (_, i) => `version ${i} `.repeat(10_000))
        await Promise.all(bodies.map((b) => store.put('same.txt', streamOf(b))))
        const final = await contentOf('same.txt')
        expect(bodies).toContain(final)
        expect((await store.stat('same.txt')).sha256).toBe(sha256(final))
      })
    })

    describe('lookup', () => {
      it('tells files, folders and nothing apart', async () => {
        await put('x/y/z.txt', 'z')
        expect(await store.lookup('x')).toEqual({ type: 'directory', path: 'x', name: 'x' })
        expect(await store.lookup('x/y')).toEqual({ type: 'directory', path: 'x/y', name: 'y' })
        expect((await store.lookup('x/y/z.txt'))?.type).toBe('file')
        expect(await store.lookup('x/nothing')).toBeNull()
        expect((await store.lookup(''))?.type).toBe('directory')
      })
    })

    describe('list', () => {
      const tricky = ['b.txt', 'B.txt', 'a-b', 'a b', 'é.txt', 'ﬀ.txt', '😀.txt', 'z']

      it('lists one level: folders first, then files, each in code point order', async () => {
        for (const n of tricky) await put(`l/${n}`, n)
        await put('l/a/inner.txt', 'x')
        await put('l/é-dir/inner.txt', 'x')
        await put('l/A/inner.txt', 'x')
        const { entries, nextCursor } = await store.list('l')
        expect(nextCursor).toBeNull()
        expect(entries.map((e) => `${e.type[0]}:${e.name}`)).toEqual([
          'd:A',
          'd:a',
          'd:é-dir',
          'f:B.txt',
          'f:a b',
          'f:a-b',
          'f:b.txt',
          'f:z',
          'f:é.txt',
          'f:ﬀ.txt',
          'f:😀.txt',
        ])
        const file = entries.find((e) => e.name === 'z') as StoredFile
        expect(file).toMatchObject({ type: 'file', path: 'l/z', size: 1, sha256: sha256('z') })
      })

      it('lists the root', async () => {
        await put('top.txt', 't')
        await put('sub/x', 'x')
        expect((await store.list('')).entries.map((e) => e.path)).toEqual(['sub', 'top.txt'])
      })

      it('pages with limit and cursor, each entry exactly once', async () => {
        for (let i = 0; i < 7; i++) await put(`pg/f${i}`, `${i}`)
        for (let i = 0; i < 3; i++) await put(`pg/d${i}/x`, 'x')
        const seen: string[] = []
        let cursor: string | undefined
        let pages = 0
        do {
          const page = await store.list('pg', { limit: 3, ...(cursor ? { cursor } : {}) })
          expect(page.entries.length).toBeLessThanOrEqual(3)
          seen.push(...names(page.entries))
          cursor = page.nextCursor ?? undefined
          pages++
        } while (cursor && pages < 10)
        expect(seen).toEqual(['d0', 'd1', 'd2', 'f0', 'f1', 'f2', 'f3', 'f4', 'f5', 'f6'])
        expect(pages).toBe(4)
      })

      it('a cursor stays valid when entries before it are removed', async () => {
        for (const n of ['a', 'b', 'c', 'd']) await put(`cv/${n}`, n)
        const first = await store.list('cv', { limit: 2 })
        await store.delete('cv/a')
        const second = await store.list('cv', { limit: 2, cursor: first.nextCursor! })
        expect(names(second.entries)).toEqual(['c', 'd'])
      })

      it('lists recursively: every file below, by full path, paged', async () => {
        const files = ['r/a-b', 'r/a/x', 'r/a/y/z', 'r/a.txt', 'r/b', 'r/😀/q', 'r/é']
        for (const f of files) await put(f, f)
        await put('outside.txt', 'no')
        const all = await store.list('r', { recursive: true })
        expect(paths(all.entries)).toEqual(['r/a-b', 'r/a.txt', 'r/a/x', 'r/a/y/z', 'r/b', 'r/é', 'r/😀/q'])
        expect(all.entries.every((e) => e.type === 'file')).toBe(true)
        const seen: string[] = []
        let cursor: string | undefined
        for (let i = 0; i < 10; i++) {
          const page = await store.list('r', { recursive: true, limit: 2, ...(cursor ? { cursor } : {}) })
          seen.push(...paths(page.entries))
          if (!page.nextCursor) break
          cursor = page.nextCursor
        }
        expect(seen).toEqual(paths(all.entries))
        expect(paths((await store.list('', { recursive: true })).entries)).toContain('outside.txt')
      })

      it('refuses a cursor it did not issue, or one from the other kind of listing', async () => {
        await put('k/a', 'a')
        await put('k/b', 'b')
        await expectCode(store.list('k', { cursor: 'garbage!' }), 'invalid_request')
        const oneLevel = await store.list('k', { limit: 1 })
        await expectCode(store.list('k', { recursive: true, cursor: oneLevel.nextCursor! }), 'invalid_request')
        // Characters outside base64url around an issued cursor make it another string, not that cursor.
        for (const junk of [`${oneLevel.nextCursor!}!`, ` ${oneLevel.nextCursor!}`, oneLevel.nextCursor!.replace(/^(.)/, '$1.')]) {
          await expectCode(store.list('k', { cursor: junk }), 'invalid_request')
        }
      })

      it('answers not_found for a missing folder', async () => {
        await expectCode(store.list('missing'), 'not_found')
      })
    })

    describe('move', () => {
      it('renames a file, keeping its bytes and attributes; emptied folders vanish', async () => {
        const before = await put('from/dir/f.txt', 'data', { metadata: { k: 1 }, contentType: 'text/x-custom' })
        const moved = (await store.move('from/dir/f.txt', 'to/g.txt')) as StoredFile
        expect(moved).toMatchObject({
          type: 'file',
          path: 'to/g.txt',
          name: 'g.txt',
          sha256: before.sha256,
          size: 4,
          contentType: 'text/x-custom',
          metadata: { k: 1 },
        })
        expect(await contentOf('to/g.txt')).toBe('data')
        expect(await store.lookup('from/dir/f.txt')).toBeNull()
        expect(await store.lookup('from')).toBeNull()
      })

      it('refuses to replace without overwrite, replaces with it', async () => {
        await put('s.txt', 'source')
        await put('t.txt', 'target')
        await expectCode(store.move('s.txt', 't.txt'), 'already_exists')
        expect(await contentOf('s.txt')).toBe('source')
        await store.move('s.txt', 't.txt', { overwrite: true })
        expect(await contentOf('t.txt')).toBe('source')
        expect(await store.lookup('s.txt')).toBeNull()
      })

      it('moves a folder with everything under it', async () => {
        await put('proj/a.txt', 'a')
        await put('proj/sub/b.txt', 'b')
        await put('proj/sub/deep/c.txt', 'c')
        await put('projection.txt', 'not part of proj/')
        const moved = await store.move('proj', 'archive/2024/proj')
        expect(moved).toEqual({ type: 'directory', path: 'archive/2024/proj', name: 'proj' })
        expect(paths((await store.list('archive', { recursive: true })).entries)).toEqual([
          'archive/2024/proj/a.txt',
          'archive/2024/proj/sub/b.txt',
          'archive/2024/proj/sub/deep/c.txt',
        ])
        expect(await contentOf('archive/2024/proj/sub/deep/c.txt')).toBe('c')
        expect(await store.lookup('proj')).toBeNull()
        expect(await contentOf('projection.txt')).toBe('not part of proj/')
      })

      it('replaces a folder only with overwrite, and never a file by a folder or the reverse', async () => {
        await put('src/x.txt', 'new')
        await put('dst/old.txt', 'old')
        await put('file.txt', 'f')
        await expectCode(store.move('src', 'dst'), 'already_exists')
        await expectCode(store.move('src', 'file.txt', { overwrite: true }), 'already_exists')
        await expectCode(store.move('file.txt', 'dst', { overwrite: true }), 'already_exists')
        await store.move('src', 'dst', { overwrite: true })
        expect(paths((await store.list('dst', { recursive: true })).entries)).toEqual(['dst/x.txt'])
      })

      it('refuses moving a folder into itself, a missing source, or a target under a file', async () => {
        await put('loop/a.txt', 'a')
        await put('plain', 'p')
        await expectCode(store.move('loop', 'loop/inner'), 'invalid_request')
        await expectCode(store.move('absent', 'elsewhere'), 'not_found')
        await expectCode(store.move('loop/a.txt', 'plain/a.txt'), 'already_exists')
        expect(await contentOf('loop/a.txt')).toBe('a')
      })

      it('moving a file or a folder onto itself changes nothing and blocks nothing', async () => {
        const file = await put('self/f.txt', 'same')
        expect(await store.move('self/f.txt', 'self/f.txt')).toEqual(file)
        expect(await store.move('self', 'self', { overwrite: true })).toEqual({ type: 'directory', path: 'self', name: 'self' })
        await put('self/f.txt', 'still writable') // the path is not left locked
        expect(await contentOf('self/f.txt')).toBe('still writable')
      })

      it('checks If-Match on the source', async () => {
        const f = await put('im.txt', 'x')
        await expectCode(store.move('im.txt', 'im2.txt', { ifMatch: ['"nope"'] }), 'precondition_failed')
        await store.move('im.txt', 'im2.txt', { ifMatch: [f.etag] })
        expect(await contentOf('im2.txt')).toBe('x')
      })
    })

    describe('delete', () => {
      it('deletes a file; its emptied folders vanish', async () => {
        await put('del/deep/f.txt', 'x')
        await put('keep/g.txt', 'y')
        await store.delete('del/deep/f.txt')
        expect(await store.lookup('del/deep/f.txt')).toBeNull()
        expect(await store.lookup('del')).toBeNull()
        expect(await store.lookup('keep/g.txt')).not.toBeNull()
        await expectCode(store.delete('del/deep/f.txt'), 'not_found')
      })

      it('refuses a non-empty folder without recursive, deletes it with', async () => {
        await put('tree/a.txt', 'a')
        await put('tree/b/c.txt', 'c')
        await expectCode(store.delete('tree'), 'directory_not_empty')
        expect(await contentOf('tree/b/c.txt')).toBe('c')
        await store.delete('tree', { recursive: true })
        expect(await store.lookup('tree')).toBeNull()
        expect(await store.lookup('tree/b/c.txt')).toBeNull()
        await expectCode(store.delete('tree', { recursive: true }), 'not_found')
      })

      it('checks If-Match', async () => {
        const f = await put('dm.txt', 'x')
        await expectCode(store.delete('dm.txt', { ifMatch: ['"nope"'] }), 'precondition_failed')
        await store.delete('dm.txt', { ifMatch: [f.etag] })
        expect(await store.lookup('dm.txt')).toBeNull()
      })
    })

    describe('uploads in parts', () => {
      const partBody = (n: number, size = 1000) => Buffer.alloc(size, n)

      it('keeps the owner an upload was created with, and none when none was given', async () => {
        const owned = await store.createUpload('parts/owned.bin', { owner: 'https://idp.example#ana' })
        expect((await store.uploadStatus(owned.uploadId)).owner).toBe('https://idp.example#ana')
        expect(await store.declareUploadSize(owned.uploadId, 10)).toMatchObject({ owner: 'https://idp.example#ana', totalSize: 10 })
        const unowned = await store.createUpload('parts/unowned.bin')
        expect((await store.uploadStatus(unowned.uploadId)).owner).toBeUndefined()
        await Promise.all([store.abortUpload(owned.uploadId), store.abortUpload(unowned.uploadId)])
      })

      it('assembles parts sent out of order, re-sent parts replacing earlier ones', async () => {
        const session = await store.createUpload('parts/out.bin', { contentType: 'application/x-test', metadata: { m: 1 } })
        expect(session.uploadId).toMatch(/^[0-9a-f]{32}$/)
        expect(session.path).toBe('parts/out.bin')
        expect(session.partSizeLimit).toBe(CONTRACT_POLICY.partSizeLimit)
        expect(Date.parse(session.expiresAt)).toBeGreaterThan(Date.now())
        expect((await store.uploadStatus(session.uploadId)).parts).toEqual([])

        await store.putPart(session.uploadId, 3, streamOf(partBody(3)))
        await store.putPart(session.uploadId, 1, streamOf(partBody(9)))
        await store.putPart(session.uploadId, 2, streamOf(partBody(2, 5000)))
        const again = await store.putPart(session.uploadId, 1, streamOf(partBody(1)))
        expect(again).toEqual({ part: 1, size: 1000, sha256: sha256(partBody(1)) })

        const status = await store.uploadStatus(session.uploadId)
        expect(status.parts.map((p) => [p.part, p.size])).toEqual([
          [1, 1000],
          [2, 5000],
          [3, 1000],
        ])
        expect(status.metadata).toEqual({ m: 1 })

        const whole = Buffer.concat([partBody(1), partBody(2, 5000), partBody(3)])
        const { file, created } = await store.completeUpload(session.uploadId, { expectedSha256: sha256(whole) })
        expect(created).toBe(true)
        expect(file).toMatchObject({
          path: 'parts/out.bin',
          size: whole.length,
          sha256: sha256(whole),
          contentType: 'application/x-test',
          metadata: { m: 1 },
        })
        expect((await readAll((await store.read('parts/out.bin')).body)).equals(whole)).toBe(true)
        await expectCode(store.uploadStatus(session.uploadId), 'not_found')
        await expectCode(store.putPart(session.uploadId, 4, streamOf('late')), 'not_found')
        await expectCode(store.abortUpload(session.uploadId), 'not_found')
      })

      it('answers a completion sent again (its answer lost) with the file it stored, until the upload expires', async () => {
        const { uploadId, expiresAt } = await store.createUpload('parts/twice.txt', { metadata: { twice: true } })
        await store.putPart(uploadId, 1, streamOf('completed once'))
        const first = await store.completeUpload(uploadId)
        const again = await store.completeUpload(uploadId)
        expect(again).toEqual(first)
        // Replaced since: it still answers what this upload stored, never a conflict.
        await put('parts/twice.txt', 'someone else')
        expect((await store.completeUpload(uploadId)).file).toMatchObject({ sha256: sha256('completed once'), metadata: { twice: true } })
        expect(await contentOf('parts/twice.txt')).toBe('someone else')
        await store.sweep(new Date(Date.parse(expiresAt) + 1000))
        await expectCode(store.completeUpload(uploadId), 'not_found')
      })

      it('accepts parts in parallel', async () => {
        const { uploadId } = await store.createUpload('parts/parallel.bin')
        await Promise.all([1, 2, 3, 4, 5, 6].map((n) => store.putPart(uploadId, n, streamOf(partBody(n, 20_000)))))
        const { file } = await store.completeUpload(uploadId)
        const whole = Buffer.concat([1, 2, 3, 4, 5, 6].map((n) => partBody(n, 20_000)))
        expect(file.sha256).toBe(sha256(whole))
      })

      it('reports missing parts as upload_incomplete and stays open', async () => {
        const { uploadId } = await store.createUpload('parts/gap.bin')
        await expectCode(store.completeUpload(uploadId), 'upload_incomplete')
        await store.putPart(uploadId, 1, streamOf('a'))
        await store.putPart(uploadId, 3, streamOf('c'))
        const error = await expectCode(store.completeUpload(uploadId), 'upload_incomplete')
        expect(error.details).toEqual({ missing: [2] })
        await expectCode(store.completeUpload(uploadId, { parts: [1, 2] }), 'upload_incomplete')
        await store.putPart(uploadId, 2, streamOf('b'))
        expect((await store.completeUpload(uploadId)).file.sha256).toBe(sha256('abc'))
      })

      it('assembles only the listed parts, by number whatever their order, each listed once', async () => {
        const { uploadId } = await store.createUpload('parts/subset.bin')
        for (const n of [1, 2, 3]) await store.putPart(uploadId, n, streamOf(String(n)))
        await expectCode(store.completeUpload(uploadId, { parts: [3, 1, 3] }), 'invalid_request')
        expect((await store.completeUpload(uploadId, { parts: [3, 1] })).file.sha256).toBe(sha256('13'))
      })

      it('refuses bad part numbers, oversized parts and a wrong part checksum', async () => {
        const { uploadId } = await store.createUpload('parts/bad.bin')
        await expectCode(store.putPart(uploadId, 0, streamOf('x')), 'invalid_request')
        await expectCode(store.putPart(uploadId, 10_001, streamOf('x')), 'invalid_request')
        await expectCode(
          store.putPart(uploadId, 1, generated(CONTRACT_POLICY.partSizeLimit + 1).stream),
          'payload_too_large',
        )
        await expectCode(store.putPart(uploadId, 1, streamOf('x'), { expectedSha256: sha256('y') }), 'checksum_mismatch')
        expect((await store.uploadStatus(uploadId)).parts).toEqual([])
      })

      it('refuses a wrong checksum of the whole and keeps the upload', async () => {
        const { uploadId } = await store.createUpload('parts/sum.bin')
        await store.putPart(uploadId, 1, streamOf('abc'))
        await expectCode(store.completeUpload(uploadId, { expectedSha256: sha256('xyz') }), 'checksum_mismatch')
        expect(await store.lookup('parts/sum.bin')).toBeNull()
        expect((await store.completeUpload(uploadId)).file.sha256).toBe(sha256('abc'))
      })

      it('honours the total size limit across parts', async () => {
        const { uploadId } = await store.createUpload('parts/total.bin', { maxBytes: 2500 })
        await store.putPart(uploadId, 1, streamOf(partBody(1)))
        await store.putPart(uploadId, 2, streamOf(partBody(2)))
        await expectCode(store.putPart(uploadId, 3, streamOf(partBody(3))), 'payload_too_large')
        await store.putPart(uploadId, 2, streamOf(partBody(2, 1500))) // replacing a part counts once
      })

      it('checks preconditions when created and again when completed', async () => {
        await put('parts/exists.txt', 'x')
        await expectCode(store.createUpload('parts/exists.txt', { mustNotExist: true }), 'precondition_failed')
        const { uploadId } = await store.createUpload('parts/later.txt', { mustNotExist: true })
        await store.putPart(uploadId, 1, streamOf('mine'))
        await put('parts/later.txt', 'someone else')
        await expectCode(store.completeUpload(uploadId), 'precondition_failed')
        expect(await contentOf('parts/later.txt')).toBe('someone else')
      })

      it('replaces an existing file on completion without mustNotExist', async () => {
        await put('parts/replace.txt', 'old')
        const { uploadId } = await store.createUpload('parts/replace.txt')
        await store.putPart(uploadId, 1, streamOf('new'))
        const { created } = await store.completeUpload(uploadId)
        expect(created).toBe(false)
        expect(await contentOf('parts/replace.txt')).toBe('new')
      })

      it('aborts: the upload and its parts are gone', async () => {
        const { uploadId } = await store.createUpload('parts/abort.bin')
        await store.putPart(uploadId, 1, streamOf('x'))
        await store.abortUpload(uploadId)
        await expectCode(store.uploadStatus(uploadId), 'not_found')
        await expectCode(store.completeUpload(uploadId), 'not_found')
        await expectCode(store.abortUpload(uploadId), 'not_found')
        expect(await store.lookup('parts/abort.bin')).toBeNull()
      })

      it('answers not_found for ids it never issued, whatever they look like', async () => {
        for (const id of ['0'.repeat(32), '../../etc', 'x', '']) {
          await expectCode(store.uploadStatus(id), 'not_found')
        }
      })

      it('expires unfinished uploads and the sweeper reclaims them', async () => {
        const { uploadId, expiresAt } = await store.createUpload('parts/expire.bin')
        await store.putPart(uploadId, 1, streamOf('x'))
        const later = new Date(Date.parse(expiresAt) + 1000)
        const { removed } = await store.sweep(later)
        expect(removed).toBeGreaterThanOrEqual(1)
        await expectCode(store.uploadStatus(uploadId), 'not_found')
      })

      it('keeps live uploads when sweeping', async () => {
        const { uploadId } = await store.createUpload('parts/live.bin')
        await store.putPart(uploadId, 1, streamOf('x'))
        await store.sweep(new Date())
        expect((await store.uploadStatus(uploadId)).parts).toHaveLength(1)
      })
    })

    describe('appends (resumable uploads)', () => {
      const bytes = (n: number, size: number) => Buffer.alloc(size, n)
      const sha1 = (data: Uint8Array) => createHash('sha1').update(data).digest('hex')
      /** Asserts that exactly one of two racing appends went through and the other got `offset_mismatch`; the winner's index. */
      const oneOfTwoWins = async (appends: Promise<unknown>[]): Promise<number> => {
        const results = await Promise.allSettled(appends)
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
        const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult
        expect(lost.reason).toMatchObject({ code: 'offset_mismatch' })
        return results.findIndex((r) => r.status === 'fulfilled')
      }

      it('appends consecutive parts at their offsets and completes like a put', async () => {
        const { uploadId, totalSize } = await store.createUpload('appends/whole.bin', {
          totalSize: 3500,
          contentType: 'application/x-test',
          metadata: { by: 'tus' },
          attributes: { 'tus-metadata': 'filename d2hvbGUuYmlu' },
        })
        expect(totalSize).toBe(3500)
        const first = await store.appendPart(uploadId, streamOf(bytes(1, 1000)), { offset: 0 })
        expect(first).toEqual({ part: { part: 1, size: 1000, sha256: sha256(bytes(1, 1000)) }, offset: 1000, partial: false })
        const second = await store.appendPart(uploadId, streamOf(bytes(2, 2500)), { offset: 1000 })
        expect(second).toMatchObject({ offset: 3500, partial: false })
        const status = await store.uploadStatus(uploadId)
        expect(status).toMatchObject({ received: 3500, totalSize: 3500, attributes: { 'tus-metadata': 'filename d2hvbGUuYmlu' } })
        const whole = Buffer.concat([bytes(1, 1000), bytes(2, 2500)])
        // A new part 2, or part 1 extended in place: either way the last part, with its own sha256.
        expect(status.parts.at(-1)).toEqual(second.part)
        expect([{ part: 2, size: 2500, sha256: sha256(bytes(2, 2500)) }, { part: 1, size: 3500, sha256: sha256(whole) }]).toContainEqual(second.part)
        const { file, created } = await store.completeUpload(uploadId)
        expect(created).toBe(true)
        expect(file).toMatchObject({ path: 'appends/whole.bin', size: 3500, sha256: sha256(whole), contentType: 'application/x-test', metadata: { by: 'tus' } })
        expect(await store.stat('appends/whole.bin')).toEqual(file)
        await expectCode(store.appendPart(uploadId, streamOf('late'), { offset: 3500 }), 'not_found')
      })

      it('refuses an append at another offset than the bytes received, keeping them', async () => {
        const { uploadId } = await store.createUpload('appends/offset.bin')
        await store.appendPart(uploadId, streamOf('abc'), { offset: 0 })
        const error = await expectCode(store.appendPart(uploadId, streamOf('zzz'), { offset: 0 }), 'offset_mismatch')
        expect(error.details).toEqual({ offset: 3 })
        await expectCode(store.appendPart(uploadId, streamOf('zzz'), { offset: 5 }), 'offset_mismatch')
        expect((await store.uploadStatus(uploadId)).received).toBe(3)
        await store.appendPart(uploadId, streamOf('def'), { offset: 3 })
        expect((await store.completeUpload(uploadId)).file.sha256).toBe(sha256('abcdef'))
      })

      it('lets exactly one of two appends at the same offset win', async () => {
        const { uploadId } = await store.createUpload('appends/race.bin')
        await oneOfTwoWins([
          store.appendPart(uploadId, streamOf(bytes(1, 50_000)), { offset: 0 }),
          store.appendPart(uploadId, streamOf(bytes(2, 50_000)), { offset: 0 }),
        ])
        expect((await store.uploadStatus(uploadId)).parts).toHaveLength(1)
      })

      it('lets exactly one of two appends at the same later offset win, keeping the bytes before', async () => {
        const { uploadId } = await store.createUpload('appends/race-later.bin')
        await store.appendPart(uploadId, streamOf(bytes(1, 30_000)), { offset: 0 })
        const won =
          (await oneOfTwoWins([
            store.appendPart(uploadId, streamOf(bytes(2, 50_000)), { offset: 30_000 }),
            store.appendPart(uploadId, streamOf(bytes(3, 50_000)), { offset: 30_000 }),
          ])) + 2
        await store.appendPart(uploadId, streamOf(bytes(4, 10)), { offset: 80_000 })
        const { file } = await store.completeUpload(uploadId)
        expect(file).toMatchObject({ size: 80_010, sha256: sha256(Buffer.concat([bytes(1, 30_000), bytes(won, 50_000), bytes(4, 10)])) })
      })

      it('keeps the bytes of a body that broke off with keepPartial, and only then', async () => {
        const { uploadId } = await store.createUpload('appends/cut.bin')
        await store.appendPart(uploadId, streamOf(bytes(1, 100)), { offset: 0 })
        const cut = await store.appendPart(uploadId, failingAfter(700), { offset: 100, keepPartial: true })
        expect(cut).toMatchObject({ offset: 800, partial: true })
        expect((await store.uploadStatus(uploadId)).parts.at(-1)).toEqual(cut.part)
        await expectCode(store.appendPart(uploadId, failingAfter(300), { offset: 800 }), 'invalid_request')
        const checked = { algorithm: 'sha256' as const, hex: sha256(Buffer.alloc(300, 7)) }
        await expectCode(store.appendPart(uploadId, failingAfter(300), { offset: 800, keepPartial: true, expectedChecksum: checked }), 'invalid_request')
        expect((await store.uploadStatus(uploadId)).received).toBe(800)
        const nothing = await store.appendPart(uploadId, failingAfter(0), { offset: 800, keepPartial: true })
        expect(nothing).toEqual({ part: null, offset: 800, partial: true })
        expect((await store.completeUpload(uploadId)).file.sha256).toBe(sha256(Buffer.concat([bytes(1, 100), Buffer.alloc(700, 7)])))
      })

      it('checks a sha1 or sha256 of the appended bytes, keeping nothing on a mismatch', async () => {
        const { uploadId } = await store.createUpload('appends/sums.bin')
        const a = bytes(1, 999)
        await store.appendPart(uploadId, streamOf(a), { offset: 0, expectedChecksum: { algorithm: 'sha1', hex: sha1(a) } })
        await store.appendPart(uploadId, streamOf(a), { offset: 999, expectedChecksum: { algorithm: 'sha256', hex: sha256(a) } })
        const wrong = await expectCode(
          store.appendPart(uploadId, streamOf(a), { offset: 1998, keepPartial: true, expectedChecksum: { algorithm: 'sha1', hex: sha1(bytes(2, 999)) } }),
          'checksum_mismatch',
        )
        expect(wrong.details).toEqual({ expected: sha1(bytes(2, 999)), actual: sha1(a) })
        expect((await store.uploadStatus(uploadId)).received).toBe(1998)
      })

      it('bounds appends by the declared total size, not by the part size limit', async () => {
        const size = CONTRACT_POLICY.partSizeLimit * 2 + 5
        const { uploadId } = await store.createUpload('appends/big.bin', { totalSize: size })
        const g = generated(size - 10, 3, 64 * 1024)
        await store.appendPart(uploadId, g.stream, { offset: 0 })
        await expectCode(store.completeUpload(uploadId), 'upload_incomplete')
        await expectCode(store.appendPart(uploadId, streamOf(bytes(1, 11)), { offset: size - 10, expectedSize: 11 }), 'payload_too_large')
        await expectCode(store.appendPart(uploadId, streamOf(bytes(1, 11)), { offset: size - 10 }), 'payload_too_large')
        expect((await store.uploadStatus(uploadId)).received).toBe(size - 10)
        await store.appendPart(uploadId, streamOf(bytes(1, 10)), { offset: size - 10 })
        expect((await store.completeUpload(uploadId)).file.size).toBe(size)
      })

      it('takes the total size later, once, and only a size that fits', async () => {
        const { uploadId, totalSize } = await store.createUpload('appends/deferred.bin', { maxBytes: 5000 })
        expect(totalSize).toBeUndefined()
        await store.appendPart(uploadId, streamOf(bytes(1, 1000)), { offset: 0 })
        await expectCode(store.declareUploadSize(uploadId, 999), 'invalid_request')
        await expectCode(store.declareUploadSize(uploadId, 5001), 'payload_too_large')
        await expectCode(store.declareUploadSize(uploadId, -1), 'invalid_request')
        expect((await store.declareUploadSize(uploadId, 1500)).totalSize).toBe(1500)
        expect((await store.declareUploadSize(uploadId, 1500)).totalSize).toBe(1500)
        await expectCode(store.declareUploadSize(uploadId, 1600), 'invalid_request')
        await expectCode(store.appendPart(uploadId, streamOf(bytes(2, 501)), { offset: 1000 }), 'payload_too_large')
        await store.appendPart(uploadId, streamOf(bytes(2, 500)), { offset: 1000 })
        expect((await store.completeUpload(uploadId)).file.size).toBe(1500)
      })

      it('bounds appends by maxBytes when no total size is known', async () => {
        const { uploadId } = await store.createUpload('appends/max.bin', { maxBytes: 1500 })
        await store.appendPart(uploadId, streamOf(bytes(1, 1000)), { offset: 0 })
        await expectCode(store.appendPart(uploadId, streamOf(bytes(1, 501)), { offset: 1000 }), 'payload_too_large')
        await expectCode(store.createUpload('appends/over.bin', { maxBytes: 10, totalSize: 11 }), 'payload_too_large')
      })

      it('completes an upload declared empty with no part, and stores nothing for an empty append', async () => {
        const { uploadId } = await store.createUpload('appends/empty.txt', { totalSize: 0 })
        expect(await store.appendPart(uploadId, streamOf(), { offset: 0 })).toEqual({ part: null, offset: 0, partial: false })
        const { file } = await store.completeUpload(uploadId)
        expect(file).toMatchObject({ size: 0, sha256: EMPTY_SHA256 })
      })

      it('refuses a bad total size or oversized attributes at creation', async () => {
        await expectCode(store.createUpload('appends/bad.bin', { totalSize: 1.5 }), 'invalid_request')
        await expectCode(store.createUpload('appends/bad.bin', { attributes: { big: 'x'.repeat(17 * 1024) } }), 'invalid_request')
        await expectCode(store.appendPart('0'.repeat(32), streamOf('x'), { offset: 0 }), 'not_found')
        await expectCode(store.declareUploadSize('0'.repeat(32), 1), 'not_found')
      })
    })

    it('reports itself healthy', async () => {
      const health = await store.health()
      expect(health.ok).toBe(true)
      expect(health.latencyMs).toBeGreaterThanOrEqual(0)
    })
  })
}
