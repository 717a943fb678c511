/**
 * The tus 1.0 protocol over real HTTP, rule by rule, on every store: core, creation,
 * creation-with-upload, creation-defer-length, termination, checksum and expiration. Each test
 * names the statuses it proves. Raw requests (fetch, or a socket where a connection must be cut).
 */
import { createHash, randomUUID } from 'node:crypto'
import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { uploadFiles } from '../helpers/disk-store.js'
import { expectError } from '../helpers/http.js'
import { sha256, streamOf } from '../helpers/streams.js'
import { startTestService, type TestService } from '../helpers/test-service.js'
import {
  createTusUpload,
  expectStoreServed,
  headTus,
  OFFSET_STREAM,
  patchTus,
  storeEnv,
  TUS_HEADERS,
  tusOffset,
  tusStores,
  uploadMetadata,
} from '../helpers/tus.js'

const MAX_UPLOAD_BYTES = 1024 * 1024
const EXPIRY_SECONDS = 3600

const sha1 = (data: string | Uint8Array) => createHash('sha1').update(data).digest()
const sha256b64 = (data: string | Uint8Array) => createHash('sha256').update(data).digest('base64')

for (const store of tusStores()) {
  describe(`tus protocol: ${store} store`, () => {
    let svc: TestService
    let collection: string
    beforeAll(async () => {
      svc = await startTestService({
        MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES),
        UPLOAD_EXPIRY_SECONDS: String(EXPIRY_SECONDS),
        ...storeEnv(store),
      })
      await expectStoreServed(svc.api, store)
      collection = `${svc.api}/${store}/tus/`
    })
    afterAll(async () => svc?.stop())

    const folder = () => `tus-${randomUUID().slice(0, 8)}`
    /** Creates an upload of `length` bytes named `path`; returns its URL. */
    const create = async (path: string, length: number | 'deferred', extra: Record<string, string> = {}) => {
      const sizeHeader: Record<string, string> = length === 'deferred' ? { 'Upload-Defer-Length': '1' } : { 'Upload-Length': String(length) }
      const { res, location } = await createTusUpload(collection, { ...sizeHeader, 'Upload-Metadata': uploadMetadata({ path }), ...extra })
      expect(res.status, await res.clone().text()).toBe(201)
      return location
    }
    const info = async (path: string) => {
      const res = await fetch(`${svc.api}/${store}/info/${path.split('/').map(encodeURIComponent).join('/')}`)
      return { status: res.status, body: (await res.json()) as Record<string, unknown> }
    }
    const statusOf = async (url: string) =>
      (await (await fetch(`${svc.api}/${store}/uploadstatus/${url.split('/').at(-1)}`)).json()) as { expiresAt: string; received: number }

    describe('core and OPTIONS', () => {
      it('OPTIONS: 204 with Tus-Version, Tus-Extension, Tus-Max-Size and Tus-Checksum-Algorithm, without Tus-Resumable', async () => {
        for (const url of [collection, collection.slice(0, -1), `${collection}${'0'.repeat(32)}`]) {
          const res = await fetch(url, { method: 'OPTIONS' })
          expect(res.status).toBe(204)
          expect(res.headers.get('tus-version')).toBe('1.0.0')
          expect(res.headers.get('tus-extension')?.split(',')).toEqual(
            expect.arrayContaining(['creation', 'creation-with-upload', 'creation-defer-length', 'termination', 'checksum', 'expiration']),
          )
          expect(res.headers.get('tus-max-size')).toBe(String(MAX_UPLOAD_BYTES))
          expect(res.headers.get('tus-checksum-algorithm')).toBe('sha1,sha256')
        }
      })

      it('412 without Tus-Resumable on POST, HEAD, PATCH and DELETE; 412 with Tus-Version for another version', async () => {
        const url = await create(`${folder()}/v.bin`, 3)
        const requests: [string, RequestInit][] = [
          [collection, { method: 'POST', headers: { 'Upload-Length': '3' } }],
          [url, { method: 'PATCH', headers: { 'Content-Type': OFFSET_STREAM, 'Upload-Offset': '0' }, body: 'abc' }],
          [url, { method: 'DELETE' }],
        ]
        for (const [target, init] of requests) await expectError(await fetch(target, init), 412, 'precondition_failed')
        expect((await headTus(url, {})).status).toBe(412)
        const old = await fetch(collection, { method: 'POST', headers: { 'Tus-Resumable': '0.2.2', 'Upload-Length': '3' } })
        await expectError(old, 412, 'precondition_failed')
        expect(old.headers.get('tus-version')).toBe('1.0.0')
        expect(await tusOffset(url)).toBe(0) // nothing was processed
      })

      it('creation 201 and HEAD 200: Location, Upload-Offset, Upload-Length, Upload-Metadata as sent, Cache-Control: no-store', async () => {
        const metadata = uploadMetadata({ path: `${folder()}/h.bin`, note: 'été' }) + ',flag'
        const { res, location } = await createTusUpload(collection, { 'Upload-Length': '10', 'Upload-Metadata': metadata })
        expect(res.status).toBe(201)
        expect(location).toMatch(new RegExp(`^${collection}[0-9a-f]{32}$`))
        expect(res.headers.get('tus-resumable')).toBe('1.0.0')
        const head = await headTus(location)
        expect(head.status).toBe(200)
        expect(head.headers.get('upload-offset')).toBe('0')
        expect(head.headers.get('upload-length')).toBe('10')
        expect(head.headers.get('upload-metadata')).toBe(metadata)
        expect(head.headers.get('cache-control')).toBe('no-store')
        expect(head.headers.get('tus-resumable')).toBe('1.0.0')
        expect(await head.text()).toBe('')
      })

      it('PATCH 204 appends at Upload-Offset; the last one completes the file as a PUT would store it', async () => {
        const dir = folder()
        const whole = 'hello, resumable world'
        const { res, location } = await createTusUpload(collection, {
          'Upload-Length': String(whole.length),
          'Upload-Metadata': uploadMetadata({ dir, filename: 'greeting.txt', filetype: 'text/plain', owner: 'ana' }),
        })
        expect(res.status).toBe(201)
        const first = await patchTus(location, 0, whole.slice(0, 7))
        expect(first.status).toBe(204)
        expect(first.headers.get('upload-offset')).toBe('7')
        expect((await info(`${dir}/greeting.txt`)).status).toBe(404) // nothing visible before the end
        const last = await patchTus(location, 7, whole.slice(7))
        expect(last.status).toBe(204)
        expect(last.headers.get('upload-offset')).toBe(String(whole.length))
        expect(last.headers.get('x-content-sha256')).toBe(sha256(whole))
        expect(last.headers.get('x-file-path')).toBe(`${dir}/greeting.txt`)

        const put = await fetch(`${svc.api}/${store}/upload/${dir}/by-put.txt`, {
          method: 'PUT',
          body: whole,
          headers: { 'content-type': 'text/plain', 'x-file-metadata': '{"owner":"ana"}' },
        })
        const byPut = (await put.json()) as Record<string, unknown>
        const byTus = (await info(`${dir}/greeting.txt`)).body
        for (const key of ['size', 'sha256', 'etag', 'contentType', 'metadata', 'driver']) expect(byTus[key], key).toEqual(byPut[key])
        const download = await fetch(`${svc.api}/${store}/download/${dir}/greeting.txt`)
        expect(await download.text()).toBe(whole)
        expect((await headTus(location)).status).toBe(404) // the upload is finished
      })

      it('a completion that failed (412) is tried again by HEAD, which never answers 200 while the file is missing', async () => {
        const path = `${folder()}/contested.txt`
        const url = await create(path, 6, { 'If-None-Match': '*' })
        expect((await patchTus(url, 0, 'abc')).status).toBe(204)
        await fetch(`${svc.api}/${store}/upload/${path}`, { method: 'PUT', body: 'someone else' })
        await expectError(await patchTus(url, 3, 'def'), 412, 'precondition_failed')
        expect((await headTus(url)).status).toBe(412)
        expect(await (await fetch(`${svc.api}/${store}/download/${path}`)).text()).toBe('someone else')
        expect((await fetch(`${svc.api}/${store}/delete/${path}`, { method: 'DELETE' })).status).toBe(204)
        const head = await headTus(url)
        expect(head.status).toBe(200)
        expect(head.headers.get('upload-offset')).toBe('6')
        expect(head.headers.get('upload-length')).toBe('6')
        expect(head.headers.get('x-content-sha256')).toBe(sha256('abcdef'))
        expect(await (await fetch(`${svc.api}/${store}/download/${path}`)).text()).toBe('abcdef')
      })

      it('PATCH 409 at a wrong offset, the bytes received kept as they were', async () => {
        const url = await create(`${folder()}/o.bin`, 6)
        expect((await patchTus(url, 0, 'abc')).status).toBe(204)
        const conflict = await expectError(await patchTus(url, 0, 'xyz'), 409, 'offset_mismatch')
        expect(conflict.error.details).toEqual({ offset: 3 })
        await expectError(await patchTus(url, 4, 'xyz'), 409, 'offset_mismatch')
        expect(await tusOffset(url)).toBe(3)
        const done = await patchTus(url, 3, 'def')
        expect(done.status).toBe(204)
        expect(done.headers.get('x-content-sha256')).toBe(sha256('abcdef'))
      })

      it('PATCH 415 for a wrong or missing Content-Type, nothing appended', async () => {
        const url = await create(`${folder()}/t.bin`, 3)
        await expectError(await patchTus(url, 0, 'abc', { 'Content-Type': 'application/octet-stream' }), 415, 'unsupported_media_type')
        const bare = await fetch(url, { method: 'PATCH', headers: { ...TUS_HEADERS, 'Upload-Offset': '0' }, body: new Uint8Array([1, 2, 3]) })
        await expectError(bare, 415, 'unsupported_media_type')
        expect(await tusOffset(url)).toBe(0)
      })

      it('PATCH 400 without Upload-Offset or with a malformed one', async () => {
        const url = await create(`${folder()}/u.bin`, 3)
        const missing = await fetch(url, { method: 'PATCH', headers: { ...TUS_HEADERS, 'Content-Type': OFFSET_STREAM }, body: 'abc' })
        await expectError(missing, 400, 'invalid_request')
        // The document's pattern: plain decimal digits, no leading zero, at most 15 (exact as numbers).
        for (const bad of ['-1', '1.5', 'abc', '', '00', '+0', '0x0', '9007199254740993']) {
          await expectError(await patchTus(url, 0, 'abc', { 'Upload-Offset': bad }), 400, 'invalid_request')
        }
        expect(await tusOffset(url)).toBe(0)
      })

      it('PATCH 413 past Upload-Length, announced or streamed, the bytes received intact', async () => {
        const url = await create(`${folder()}/l.bin`, 5)
        expect((await patchTus(url, 0, 'ab')).status).toBe(204)
        await expectError(await patchTus(url, 2, 'cdef'), 413, 'payload_too_large')
        const chunked = await fetch(url, {
          method: 'PATCH',
          headers: { ...TUS_HEADERS, 'Content-Type': OFFSET_STREAM, 'Upload-Offset': '2' },
          body: streamOf('cd', 'ef'),
          duplex: 'half',
        } as RequestInit)
        await expectError(chunked, 413, 'payload_too_large')
        expect(await tusOffset(url)).toBe(2)
        const done = await patchTus(url, 2, 'cde')
        expect(done.headers.get('x-content-sha256')).toBe(sha256('abcde'))
      })

      it('404 for an unknown upload and an unknown store', async () => {
        await expectError(await patchTus(`${collection}${'0'.repeat(32)}`, 0, 'x'), 404, 'not_found')
        await expectError(await patchTus(`${collection}not-an-id`, 0, 'x'), 404, 'not_found')
        expect((await headTus(`${collection}${'0'.repeat(32)}`)).status).toBe(404)
        await expectError(await fetch(`${svc.api}/nostore/tus/`, { method: 'POST', headers: { ...TUS_HEADERS, 'Upload-Length': '1' } }), 404, 'unknown_store')
      })

      it('405 for GET or a POST without X-HTTP-Method-Override on an upload URL', async () => {
        const url = await create(`${folder()}/m.bin`, 1)
        expect((await fetch(url)).status).toBe(405)
        expect((await fetch(url, { method: 'POST', headers: TUS_HEADERS })).status).toBe(405)
      })

      it('X-HTTP-Method-Override: a POST stands for PATCH (204) or DELETE (204)', async () => {
        const url = await create(`${folder()}/x.bin`, 4)
        const override = (method: string, headers: Record<string, string> = {}, body?: string) =>
          fetch(url, { method: 'POST', headers: { ...TUS_HEADERS, 'X-HTTP-Method-Override': method, ...headers }, ...(body ? { body } : {}) })
        const patched = await override('PATCH', { 'Content-Type': OFFSET_STREAM, 'Upload-Offset': '0' }, 'ab')
        expect(patched.status).toBe(204)
        expect(patched.headers.get('upload-offset')).toBe('2')
        expect((await override('DELETE')).status).toBe(204)
        expect((await headTus(url)).status).toBe(404)
      })

      it('a PATCH cut off part-way keeps the bytes that arrived; HEAD 200 reports them and the upload resumes there', async () => {
        const path = `${folder()}/cut.bin`
        const size = 256 * 1024
        const whole = Buffer.alloc(size)
        for (let i = 0; i < size; i++) whole[i] = (i * 7) & 0xff
        const url = await create(path, size)
        const sent = 100_000
        await cutPatch(url, 0, whole.subarray(0, sent), size)
        // uploadstatus shows what is committed without stopping a write; the server commits the prefix once it sees the cut.
        await until(async () => (await statusOf(url)).received === sent)
        const offset = await tusOffset(url)
        expect(offset).toBe(sent)
        const rest = await patchTus(url, offset, whole.subarray(offset))
        expect(rest.status).toBe(204)
        expect(rest.headers.get('x-content-sha256')).toBe(sha256(whole))
      })
    })

    describe('creation', () => {
      it('400 without Upload-Length or Upload-Defer-Length, with both, or with bad values', async () => {
        const post = (headers: Record<string, string>) => fetch(collection, { method: 'POST', headers: { ...TUS_HEADERS, ...headers } })
        await expectError(await post({}), 400, 'invalid_request')
        await expectError(await post({ 'Upload-Length': '3', 'Upload-Defer-Length': '1' }), 400, 'invalid_request')
        await expectError(await post({ 'Upload-Length': '-3' }), 400, 'invalid_request')
        await expectError(await post({ 'Upload-Defer-Length': '2' }), 400, 'invalid_request')
        await expectError(await post({ 'Upload-Length': '3', 'Upload-Metadata': 'filename not base64!' }), 400, 'invalid_request')
        await expectError(await post({ 'Upload-Length': '3', 'Upload-Metadata': 'a YQ==,a YQ==' }), 400, 'invalid_request')
        // The grammar the document states: padded base64 after one space, visible ASCII keys; values of UTF-8 text.
        for (const metadata of ['a YQ', 'a  YQ==', 'a YQ== b', 'ä YQ==', ' , ', `a ${Buffer.from([0xff, 0xfe]).toString('base64')}`]) {
          await expectError(await post({ 'Upload-Length': '3', 'Upload-Metadata': metadata }), 400, 'invalid_request')
        }
        // A malformed Upload-Checksum is refused without data too: there is nothing to check it against, but it is wrong.
        await expectError(await post({ 'Upload-Length': '3', 'Upload-Checksum': 'sha1 abc' }), 400, 'invalid_request')
        await expectError(await post({ 'Upload-Length': '3', 'Upload-Concat': 'partial' }), 400, 'invalid_request')
      })

      it('400 invalid_path for a bad path or name in Upload-Metadata, and nothing is created', async () => {
        const before = (await (await fetch(`${svc.api}/${store}/list/?recursive=true`)).json()) as { entries: unknown[] }
        for (const metadata of <Record<string, string>[]>[
          { filename: 'a/b.txt' },
          { filename: '..' },
          { path: 'a/../../etc/passwd' },
          { path: '.filestorage/x' },
          { dir: 'a//b', filename: 'c.txt' },
          { path: 'nul\u0000.txt' },
        ]) {
          const res = await fetch(collection, { method: 'POST', headers: { ...TUS_HEADERS, 'Upload-Length': '1', 'Upload-Metadata': uploadMetadata(metadata) } })
          await expectError(res, 400, 'invalid_path')
        }
        const after = (await (await fetch(`${svc.api}/${store}/list/?recursive=true`)).json()) as { entries: unknown[] }
        expect(after.entries).toEqual(before.entries)
      })

      it('413 for an Upload-Length over MAX_UPLOAD_BYTES', async () => {
        const res = await fetch(collection, { method: 'POST', headers: { ...TUS_HEADERS, 'Upload-Length': String(MAX_UPLOAD_BYTES + 1) } })
        await expectError(res, 413, 'payload_too_large')
      })

      it('412 with If-None-Match: * when the file exists', async () => {
        const path = `${folder()}/exists.txt`
        await fetch(`${svc.api}/${store}/upload/${path}`, { method: 'PUT', body: 'x' })
        const res = await fetch(collection, {
          method: 'POST',
          headers: { ...TUS_HEADERS, 'Upload-Length': '1', 'Upload-Metadata': uploadMetadata({ path }), 'If-None-Match': '*' },
        })
        await expectError(res, 412, 'precondition_failed')
      })

      it('a file without a name gets a random one; Upload-Length 0 completes an empty file at once', async () => {
        const { res } = await createTusUpload(collection, { 'Upload-Length': '0' })
        expect(res.status).toBe(201)
        const path = res.headers.get('x-file-path')!
        expect(path).toMatch(/^[0-9a-f]{32}$/)
        expect((await info(path)).body).toMatchObject({ size: 0, sha256: sha256('') })
      })
    })

    describe('creation-with-upload', () => {
      it('201 with Upload-Offset for the bytes sent along; the whole upload in one request completes it', async () => {
        const path = `${folder()}/along.txt`
        const partial = await createTusUpload(collection, { 'Upload-Length': '10', 'Upload-Metadata': uploadMetadata({ path }), 'Content-Type': OFFSET_STREAM }, '0123')
        expect(partial.res.status).toBe(201)
        expect(partial.res.headers.get('upload-offset')).toBe('4')
        expect(await tusOffset(partial.location)).toBe(4)

        const whole = `${folder()}/whole.txt`
        const once = await createTusUpload(collection, { 'Upload-Length': '5', 'Upload-Metadata': uploadMetadata({ path: whole }), 'Content-Type': OFFSET_STREAM }, 'hello')
        expect(once.res.status).toBe(201)
        expect(once.res.headers.get('x-content-sha256')).toBe(sha256('hello'))
        expect((await info(whole)).body).toMatchObject({ size: 5, sha256: sha256('hello') })
      })

      it('415 for bytes sent along without Content-Type: application/offset+octet-stream; 413 for more than Upload-Length', async () => {
        const { res } = await createTusUpload(collection, { 'Upload-Length': '5', 'Content-Type': 'text/plain' }, 'hello')
        await expectError(res, 415, 'unsupported_media_type')
        const tooMuch = await createTusUpload(collection, { 'Upload-Length': '4', 'Content-Type': OFFSET_STREAM }, 'hello')
        await expectError(tooMuch.res, 413, 'payload_too_large')
        expect(tooMuch.location).toBe('')
      })
    })

    describe('creation-defer-length', () => {
      it('HEAD gives Upload-Defer-Length: 1 until a PATCH declares Upload-Length, which completes the file', async () => {
        const path = `${folder()}/deferred.txt`
        const url = await create(path, 'deferred')
        const head = await headTus(url)
        expect(head.headers.get('upload-defer-length')).toBe('1')
        expect(head.headers.get('upload-length')).toBeNull()
        expect((await patchTus(url, 0, 'abc')).status).toBe(204)
        await expectError(await patchTus(url, 3, 'd', { 'Upload-Length': '2' }), 400, 'invalid_request') // below what arrived
        const last = await patchTus(url, 3, 'def', { 'Upload-Length': '6' })
        expect(last.status).toBe(204)
        expect(last.headers.get('x-content-sha256')).toBe(sha256('abcdef'))
      })

      it('400 for a second, different Upload-Length; 413 past MAX_UPLOAD_BYTES, declared or streamed', async () => {
        const url = await create(`${folder()}/d2.bin`, 'deferred')
        expect((await patchTus(url, 0, 'ab', { 'Upload-Length': '4' })).status).toBe(204)
        await expectError(await patchTus(url, 2, 'c', { 'Upload-Length': '5' }), 400, 'invalid_request')
        const other = await create(`${folder()}/d3.bin`, 'deferred')
        await expectError(await patchTus(other, 0, 'a', { 'Upload-Length': String(MAX_UPLOAD_BYTES + 1) }), 413, 'payload_too_large')
        const streamed = await fetch(other, {
          method: 'PATCH',
          headers: { ...TUS_HEADERS, 'Content-Type': OFFSET_STREAM, 'Upload-Offset': '0' },
          body: streamOf(new Uint8Array(MAX_UPLOAD_BYTES), new Uint8Array(1)),
          duplex: 'half',
        } as RequestInit)
        await expectError(streamed, 413, 'payload_too_large')
        expect(await tusOffset(other)).toBe(0)
      })
    })

    describe('checksum', () => {
      it('204 for a matching sha1 or sha256; 460 on a mismatch, nothing of that body kept', async () => {
        const path = `${folder()}/sum.txt`
        const url = await create(path, 9)
        expect((await patchTus(url, 0, 'abc', { 'Upload-Checksum': `sha1 ${sha1('abc').toString('base64')}` })).status).toBe(204)
        expect((await patchTus(url, 3, 'def', { 'Upload-Checksum': `sha256 ${sha256b64('def')}` })).status).toBe(204)
        const mismatch = await patchTus(url, 6, 'ghi', { 'Upload-Checksum': `sha1 ${sha1('xyz').toString('base64')}` })
        expect(mismatch.status).toBe(460)
        expect(((await mismatch.json()) as { error: { code: string } }).error.code).toBe('checksum_mismatch')
        expect(await tusOffset(url)).toBe(6)
        const last = await patchTus(url, 6, 'ghi', { 'Upload-Checksum': `sha256 ${sha256b64('ghi')}` })
        expect(last.headers.get('x-content-sha256')).toBe(sha256('abcdefghi'))
      })

      it('400 for an unsupported algorithm or a malformed digest', async () => {
        const url = await create(`${folder()}/badsum.txt`, 3)
        const digest = sha1('abc').toString('base64')
        for (const header of ['md5 kAFQmDzST7DWlj99KOF/cg==', 'sha1', 'sha1 !!!', `sha256 ${digest}`, `SHA1 ${digest}`, `sha1  ${digest}`]) {
          await expectError(await patchTus(url, 0, 'abc', { 'Upload-Checksum': header }), 400, 'invalid_request')
        }
        expect(await tusOffset(url)).toBe(0)
      })
    })

    describe('termination', () => {
      it('DELETE 204 discards the upload; then HEAD, PATCH and DELETE give 404', async () => {
        const path = `${folder()}/gone.bin`
        const url = await create(path, 10)
        await patchTus(url, 0, 'abc')
        const res = await fetch(url, { method: 'DELETE', headers: TUS_HEADERS })
        expect(res.status).toBe(204)
        expect((await headTus(url)).status).toBe(404)
        await expectError(await patchTus(url, 3, 'def'), 404, 'not_found')
        await expectError(await fetch(url, { method: 'DELETE', headers: TUS_HEADERS }), 404, 'not_found')
        expect((await info(path)).status).toBe(404)
      })
    })

    describe('expiration', () => {
      it('Upload-Expires on POST, PATCH and HEAD is the upload\'s expiry; once past, the sweeper reclaims it and HEAD gives 404', async () => {
        const { res, location } = await createTusUpload(collection, { 'Upload-Length': '6', 'Upload-Metadata': uploadMetadata({ path: `${folder()}/e.bin` }) })
        const { expiresAt } = await statusOf(location)
        const expected = new Date(expiresAt).toUTCString()
        expect(Date.parse(expiresAt) - Date.now()).toBeGreaterThan((EXPIRY_SECONDS - 600) * 1000)
        expect(res.headers.get('upload-expires')).toBe(expected)
        expect((await patchTus(location, 0, 'abc')).headers.get('upload-expires')).toBe(expected)
        expect((await headTus(location)).headers.get('upload-expires')).toBe(expected)

        const { removed } = await svc.service.stores.get(store).sweep(new Date(Date.parse(expiresAt) + 1000))
        expect(removed).toBeGreaterThanOrEqual(1)
        expect((await headTus(location)).status).toBe(404)
        await expectError(await patchTus(location, 3, 'def'), 404, 'not_found')
      })
    })

    describe('Location behind a proxy', () => {
      const path = `/filestorage/v1/${store}/tus/`
      const locate = async (api: string, headers: Record<string, string>) =>
        (await createTusUpload(`${api}/${store}/tus/`, { 'Upload-Length': '1', ...headers })).location
      const spoofed = { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'evil.example', Forwarded: 'host=evil.example', 'X-Forwarded-Prefix': '/x' }

      it('is built from the request\'s own host: a client that is not a trusted proxy cannot move it', async () => {
        expect(await locate(svc.api, spoofed)).toMatch(new RegExp(`^http://${new URL(svc.origin).host}${path}[0-9a-f]{32}$`))
      })

      it('follows X-Forwarded-Proto, X-Forwarded-Host, X-Forwarded-Prefix and Forwarded from a trusted proxy; ignores values that are not a scheme, host or path', async () => {
        const proxied = await startTestService({ TRUSTED_PROXIES: '127.0.0.0/8', ...storeEnv(store) })
        try {
          expect(await locate(proxied.api, { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'files.example.com' })).toMatch(
            new RegExp(`^https://files\\.example\\.com${path}[0-9a-f]{32}$`),
          )
          expect(await locate(proxied.api, { Forwarded: 'for=1.2.3.4;proto=https;host="up.example.com:8443"', 'X-Forwarded-Prefix': '/storage/' })).toMatch(
            new RegExp(`^https://up\\.example\\.com:8443/storage${path}[0-9a-f]{32}$`),
          )
          expect(await locate(proxied.api, { 'X-Forwarded-Proto': 'javascript', 'X-Forwarded-Host': 'evil.com/x?', 'X-Forwarded-Prefix': '/../x' })).toMatch(
            new RegExp(`^http://${new URL(proxied.origin).host}${path}[0-9a-f]{32}$`),
          )
        } finally {
          await proxied.stop()
        }
      })

      it('is under PUBLIC_URL when it is set, whatever the headers say', async () => {
        const configured = await startTestService({ PUBLIC_URL: 'https://files.example.com/storage', TRUSTED_PROXIES: '127.0.0.1', ...storeEnv(store) })
        try {
          expect(await locate(configured.api, spoofed)).toMatch(new RegExp(`^https://files\\.example\\.com/storage${path}[0-9a-f]{32}$`))
        } finally {
          await configured.stop()
        }
      })
    })

    it('documents the tus routes in the OpenAPI document and in help', async () => {
      const doc = (await (await fetch(`${svc.api}/openapi.json`)).json()) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }
      expect(Object.keys(doc.paths['/filestorage/v1/{store}/tus/'] ?? {}).sort()).toEqual(['options', 'post'])
      expect(Object.keys(doc.paths['/filestorage/v1/{store}/tus/{uploadId}'] ?? {}).sort()).toEqual(['delete', 'head', 'patch'])
      expect(Object.keys(doc.paths['/filestorage/v1/{store}/tus/{uploadId}']!.patch!.responses)).toEqual(expect.arrayContaining(['204', '409', '412', '413', '415', '460']))
      const help = (await (await fetch(`${svc.api}/help`)).json()) as { routes: { method: string; path: string }[] }
      expect(help.routes.map((r) => `${r.method} ${r.path}`)).toEqual(
        expect.arrayContaining([`PATCH /filestorage/v1/{store}/tus/{uploadId}`, `POST /filestorage/v1/{store}/tus/`]),
      )
    })

    /** Sends a PATCH announcing `length` bytes, sends `data`, then cuts the connection. */
    async function cutPatch(url: string, offset: number, data: Buffer, length: number): Promise<void> {
      const patch = openPatch(url, offset, length)
      await patch.write(data)
      patch.cut()
      await patch.closed
    }
  })
}

describe('tus on one instance: a newer request for an upload takes over from a stale one', () => {
  let svc: TestService
  beforeAll(async () => {
    svc = await startTestService()
  })
  afterAll(async () => svc?.stop())

  // On disk, the bytes of a write in flight are visible in the temporary folder: that tells the test
  // the server is inside the stale PATCH before the HEAD goes out. The logic under test is the
  // handler's, the same on every store.
  it('a HEAD while a PATCH hangs half-sent stops that PATCH (answered, connection closed), and reports the bytes it kept', async () => {
    const whole = Buffer.alloc(64 * 1024, 3)
    const { location: url } = await createTusUpload(`${svc.api}/disk/tus/`, { 'Upload-Length': String(whole.length) })
    const stale = openPatch(url, 0, whole.length)
    await stale.write(whole.subarray(0, 20_000)) // and then nothing more: a half-dead connection
    await until(async () => (await uploadFiles(svc.storageDir)).some((f) => f.size === 20_000)) // the claimed part
    expect(await tusOffset(url)).toBe(20_000)
    expect(await stale.closed).toBe(true)
    const rest = await patchTus(url, 20_000, whole.subarray(20_000))
    expect(rest.status).toBe(204)
    expect(rest.headers.get('x-content-sha256')).toBe(sha256(whole))
  })
})

/** Polls `condition` every 50 ms, failing after `timeoutMs`. */
async function until(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/**
 * A PATCH on a raw socket, to send part of a body and then stall or cut the connection. `closed`
 * resolves true when the connection closes, false if it was still open after 10 s.
 */
function openPatch(url: string, offset: number, length: number) {
  const target = new URL(url)
  const socket = connect(Number(target.port), target.hostname)
  let timedOut = false
  const closed = new Promise<boolean>((resolve) => socket.once('close', () => resolve(!timedOut)))
  socket.on('error', () => {})
  socket.resume() // read (and drop) the answer, so the close is seen
  socket.setTimeout(10_000, () => {
    timedOut = true
    socket.destroy()
  })
  socket.write(
    `PATCH ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\nTus-Resumable: 1.0.0\r\n` +
      `Content-Type: ${OFFSET_STREAM}\r\nUpload-Offset: ${offset}\r\nContent-Length: ${length}\r\n\r\n`,
  )
  return {
    write: (data: Buffer) => new Promise<void>((resolve, reject) => socket.write(data, (e) => (e ? reject(e) : resolve()))),
    cut: () => socket.destroy(),
    closed,
  }
}
