/**
 * The file API over real HTTP, as one suite run against any store: every route, its success
 * answers, and the SPEC 3.5 errors a client can cause. Each test works under its own folder.
 * A run may send headers with every request (a bearer token, with access control on).
 */
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rawTargetProblem } from '../../src/handlers/raw-target.js'
import type { FileInfo } from '../../src/storage/index.js'
import { expectError, rawRequest as sendRaw } from '../helpers/http.js'
import { sha256 } from '../helpers/streams.js'
import type { Runtime } from '../helpers/process-service.js'
import type { HttpService } from '../helpers/test-service.js'
import { OFFSET_STREAM, TUS_HEADERS, uploadMetadata } from '../helpers/tus.js'

export const API_LIMITS = { MAX_UPLOAD_BYTES: String(8 * 1024 * 1024), PART_SIZE_LIMIT: String(1024 * 1024) }

/** FileInfo as it arrives in JSON. */
type FileJson = FileInfo

/** A JSON object whose field `a` nests arrays `depth - 1` deep: `{"a":[[…]]}`, `depth` levels in all. */
const nested = (depth: number) => `{"a":${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}}`
const JSON_HEADERS = { 'content-type': 'application/json' }

export interface FileApiRun {
  /** Names the run in the suite's title ("with a bearer token"). */
  label?: string
  /** Sent with every request of the suite (an `Authorization` header for a run with access control on). */
  headers?: Record<string, string>
  /** Where the service runs (default node): Bun resolves dot segments before the app sees them (see "bad paths"). */
  runtime?: Runtime
}

export function describeFileApi(store: string, start: () => Promise<HttpService>, run: FileApiRun = {}): void {
  describe(`file API over HTTP: ${store} store${run.label ? `, ${run.label}` : ''}`, () => {
    // Every request below goes through these two, so that a run's headers reach every route, the
    // form and tus uploads included; a request that missed them would fail a run with a token.
    const withRunHeaders = (headers?: RequestInit['headers']) => {
      const merged = new Headers(headers)
      for (const [name, value] of Object.entries(run.headers ?? {})) if (!merged.has(name)) merged.set(name, value)
      return merged
    }
    const fetch = (input: string, init: RequestInit = {}) => globalThis.fetch(input, { ...init, headers: withRunHeaders(init.headers) })
    const rawRequest = (origin: string, method: string, path: string, options: Parameters<typeof sendRaw>[3] = {}) =>
      sendRaw(origin, method, path, { ...options, headers: { ...run.headers, ...options.headers } })

    let svc: HttpService
    let api: string
    beforeAll(async () => {
      svc = await start()
      api = svc.api
    })
    afterAll(async () => svc?.stop())

    /** A fresh folder for one test. */
    const folder = () => `t-${randomUUID().slice(0, 8)}`
    const url = (verb: string, path = '') => `${api}/${store}/${verb}/${path.split('/').map(encodeURIComponent).join('/')}`
    const upload = async (path: string, body: string | Uint8Array, headers: Record<string, string> = {}) => {
      const res = await fetch(url('upload', path), { method: 'PUT', body, headers })
      expect(res.status, await res.clone().text()).toBeLessThan(300)
      return (await res.json()) as FileJson
    }

    describe('upload (PUT)', () => {
      it('creates with 201 and replaces with 200, answering FileInfo and an ETag', async () => {
        const path = `${folder()}/hello.txt`
        const first = await fetch(url('upload', path), {
          method: 'PUT',
          body: 'hello',
          headers: { 'content-type': 'text/plain', 'x-file-metadata': '{"owner":"ana"}' },
        })
        expect(first.status).toBe(201)
        const info = (await first.json()) as FileJson
        expect(info).toMatchObject({
          type: 'file',
          store,
          path,
          name: 'hello.txt',
          size: 5,
          contentType: 'text/plain',
          sha256: sha256('hello'),
          metadata: { owner: 'ana' },
        })
        expect(first.headers.get('etag')).toBe(info.etag)
        const second = await fetch(url('upload', path), { method: 'PUT', body: 'hello again' })
        expect(second.status).toBe(200)
        expect(((await second.json()) as FileJson).size).toBe(11)
      })

      it('stores a streamed body of unknown length', async () => {
        const path = `${folder()}/chunked.bin`
        const chunks = [new Uint8Array(100_000).fill(1), new Uint8Array(50_000).fill(2)]
        const body = new ReadableStream({
          start(c) {
            for (const chunk of chunks) c.enqueue(chunk)
            c.close()
          },
        })
        const res = await fetch(url('upload', path), { method: 'PUT', body, duplex: 'half' } as RequestInit)
        expect(res.status).toBe(201)
        expect(((await res.json()) as FileJson).sha256).toBe(sha256(Buffer.concat(chunks)))
      })

      it('takes raw UTF-8 metadata in its header', async () => {
        const path = `${folder()}/meta.txt`
        const res = await rawRequest(svc.origin, 'PUT', `/filestorage/v1/${store}/upload/${path}`, {
          headers: { 'x-file-metadata': Buffer.from('{"city":"Zürich"}').toString('latin1') },
          body: 'x',
        })
        expect(res.status).toBe(201)
        expect(res.json<FileJson>().metadata).toEqual({ city: 'Zürich' })
      })

      it('refuses bad metadata, a malformed sha256 and a checksum mismatch, storing nothing', async () => {
        const path = `${folder()}/refused.txt`
        await expectError(await fetch(url('upload', path), { method: 'PUT', body: 'x', headers: { 'x-file-metadata': '{oops' } }), 400, 'invalid_request')
        await expectError(await fetch(url('upload', path), { method: 'PUT', body: 'x', headers: { 'x-file-metadata': '[1,2]' } }), 400, 'invalid_request')
        const big = JSON.stringify({ blob: 'x'.repeat(17 * 1024) })
        await expectError(await fetch(url('upload', path), { method: 'PUT', body: 'x', headers: { 'x-file-metadata': big } }), 400, 'invalid_request')
        await expectError(await fetch(url('upload', path), { method: 'PUT', body: 'x', headers: { 'x-file-metadata': '{"n":1e999}' } }), 400, 'invalid_request')
        await expectError(await fetch(url('upload', path), { method: 'PUT', body: 'x', headers: { 'x-content-sha256': 'abc' } }), 400, 'invalid_request')
        const mismatch = await expectError(
          await fetch(url('upload', path), { method: 'PUT', body: 'x', headers: { 'x-content-sha256': sha256('y') } }),
          400,
          'checksum_mismatch',
        )
        expect(mismatch.error.details).toEqual({ expected: sha256('y'), actual: sha256('x') })
        await expectError(await fetch(url('info', path)), 404, 'not_found')
        const ok = await fetch(url('upload', path), { method: 'PUT', body: 'x', headers: { 'x-content-sha256': sha256('x').toUpperCase() } })
        expect(ok.status).toBe(201)
      })

      it('refuses metadata nested deeper than 32 levels with 400, however small, before anything recursive sees it', async () => {
        const path = `${folder()}/deep.txt`
        for (const depth of [33, 3000, 20_000]) {
          const res = await fetch(url('upload', path), { method: 'PUT', body: 'x', headers: { 'x-file-metadata': nested(depth) } })
          const body = await expectError(res, 400, 'invalid_request')
          expect(body.error.message).toMatch(/deeper than 32/)
        }
        await expectError(await fetch(url('info', path)), 404, 'not_found')
        const deepest = await fetch(url('upload', path), { method: 'PUT', body: 'x', headers: { 'x-file-metadata': nested(32) } })
        expect(deepest.status).toBe(201)
        expect(((await deepest.json()) as FileJson).metadata).toEqual(JSON.parse(nested(32)))
        // Brackets inside strings are text, not nesting.
        const quoted = JSON.stringify({ s: '[[[[{{{{'.repeat(100), e: '\\"[[' })
        expect((await fetch(url('upload', path), { method: 'PUT', body: 'x', headers: { 'x-file-metadata': quoted } })).status).toBe(200)
      })

      it('honours If-None-Match: * and If-Match with 412', async () => {
        const path = `${folder()}/cond.txt`
        expect((await fetch(url('upload', path), { method: 'PUT', body: 'v1', headers: { 'if-none-match': '*' } })).status).toBe(201)
        await expectError(await fetch(url('upload', path), { method: 'PUT', body: 'v2', headers: { 'if-none-match': '*' } }), 412, 'precondition_failed')
        await expectError(await fetch(url('upload', path), { method: 'PUT', body: 'v2', headers: { 'if-match': '"0000"' } }), 412, 'precondition_failed')
        const etag = `"${sha256('v1')}"`
        expect((await fetch(url('upload', path), { method: 'PUT', body: 'v2', headers: { 'if-match': etag } })).status).toBe(200)
        await expectError(await fetch(url('upload', path), { method: 'PUT', body: 'v3', headers: { 'if-none-match': '"abc"' } }), 400, 'invalid_request')
        await expectError(await fetch(url('upload', path), { method: 'PUT', body: 'v3', headers: { 'if-match': 'unquoted' } }), 400, 'invalid_request')
      })

      it('answers 413 for a body over MAX_UPLOAD_BYTES, announced or streamed, and keeps the old file', async () => {
        const path = `${folder()}/big.bin`
        await upload(path, 'small')
        const tooBig = new Uint8Array(Number(API_LIMITS.MAX_UPLOAD_BYTES) + 1)
        await expectError(await fetch(url('upload', path), { method: 'PUT', body: tooBig }), 413, 'payload_too_large')
        // Chunked (no Content-Length), four times the limit, then it ends: bounded, so a client that
        // keeps pulling after the server stopped reading cannot grow without end.
        let sent = 0
        const streamed = new ReadableStream({
          pull(c) {
            if (sent >= 4 * Number(API_LIMITS.MAX_UPLOAD_BYTES)) return c.close()
            sent += 1024 * 1024
            c.enqueue(new Uint8Array(1024 * 1024))
          },
        })
        await expectError(
          await fetch(url('upload', path), { method: 'PUT', body: streamed, duplex: 'half' } as RequestInit),
          413,
          'payload_too_large',
        )
        expect(await (await fetch(url('download', path))).text()).toBe('small')
      })

      it('answers 409 for a file under a file or over a folder', async () => {
        const dir = folder()
        await upload(`${dir}/f`, 'file')
        await upload(`${dir}/d/x`, 'x')
        await expectError(await fetch(url('upload', `${dir}/f/g`), { method: 'PUT', body: 'x' }), 409, 'already_exists')
        await expectError(await fetch(url('upload', `${dir}/d`), { method: 'PUT', body: 'x' }), 409, 'already_exists')
      })

      it('answers 404 unknown_store for a store that does not exist', async () => {
        const body = await expectError(await fetch(`${api}/nope/upload/a.txt`, { method: 'PUT', body: 'x' }), 404, 'unknown_store')
        expect((body.error.details as { stores: string[] }).stores).toContain(store)
      })
    })

    describe('upload from a form (POST multipart)', () => {
      it('stores every file part in the folder, with metadata from the field before them', async () => {
        const dir = folder()
        const form = new FormData()
        form.append('metadata', JSON.stringify({ batch: 7 }))
        form.append('file', new Blob(['first'], { type: 'text/plain' }), 'one.txt')
        form.append('file', new Blob([new Uint8Array(70_000).fill(9)]), 'dos é.bin')
        const res = await fetch(url('upload', dir), { method: 'POST', body: form })
        expect(res.status).toBe(201)
        const files = (await res.json()) as FileJson[]
        expect(files.map((f) => [f.path, f.size, f.metadata])).toEqual([
          [`${dir}/one.txt`, 5, { batch: 7 }],
          [`${dir}/dos é.bin`, 70_000, { batch: 7 }],
        ])
        expect(files[0]!.contentType).toBe('text/plain')
        expect(await (await fetch(url('download', `${dir}/one.txt`))).text()).toBe('first')
      })

      it('uploads into the root with an empty folder', async () => {
        const name = `${folder()}.txt`
        const form = new FormData()
        form.append('file', new Blob(['root']), name)
        const res = await fetch(`${api}/${store}/upload/`, { method: 'POST', body: form })
        expect(res.status).toBe(201)
        await fetch(url('delete', name), { method: 'DELETE' })
      })

      it('refuses a non-form body, a form without files, unknown file fields and bad names', async () => {
        const dir = folder()
        await expectError(await fetch(url('upload', dir), { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } }), 400, 'invalid_request')
        const empty = new FormData()
        empty.append('note', 'no files')
        await expectError(await fetch(url('upload', dir), { method: 'POST', body: empty }), 400, 'invalid_request')
        const wrong = new FormData()
        wrong.append('attachment', new Blob(['x']), 'x.txt')
        await expectError(await fetch(url('upload', dir), { method: 'POST', body: wrong }), 400, 'invalid_request')
        const traversal = new FormData()
        traversal.append('file', new Blob(['x']), '..')
        await expectError(await fetch(url('upload', dir), { method: 'POST', body: traversal }), 400, 'invalid_path')
        const badMeta = new FormData()
        badMeta.append('metadata', 'not json')
        badMeta.append('file', new Blob(['x']), 'x.txt')
        await expectError(await fetch(url('upload', dir), { method: 'POST', body: badMeta }), 400, 'invalid_request')
        await expectError(await fetch(url('list', dir)), 404, 'not_found')
      })

      it('refuses a metadata field nested too deep with 400, storing nothing', async () => {
        const dir = folder()
        const form = new FormData()
        form.append('file', new Blob(['one']), 'one.txt')
        form.append('metadata', nested(3000))
        form.append('file', new Blob(['two']), 'two.txt')
        await expectError(await fetch(url('upload', dir), { method: 'POST', body: form }), 400, 'invalid_request')
        await expectError(await fetch(url('list', dir)), 404, 'not_found')
      })

      it('removes the files it created when a later part fails', async () => {
        const dir = folder()
        const form = new FormData()
        form.append('file', new Blob(['ok']), 'kept-not.txt')
        form.append('file', new Blob([new Uint8Array(Number(API_LIMITS.MAX_UPLOAD_BYTES) + 1)]), 'too-big.bin')
        await expectError(await fetch(url('upload', dir), { method: 'POST', body: form }), 413, 'payload_too_large')
        await expectError(await fetch(url('info', `${dir}/kept-not.txt`)), 404, 'not_found')
      })
    })

    describe('download', () => {
      let path: string
      let file: FileJson
      const content = '0123456789abcdefghij'
      beforeAll(async () => {
        path = `${folder()}/dl/résumé "final".txt`
        file = await upload(path, content, { 'content-type': 'text/plain; charset=utf-8' })
      })

      it('streams the file with its headers', async () => {
        const res = await fetch(url('download', path))
        expect(res.status).toBe(200)
        expect(await res.text()).toBe(content)
        expect(Object.fromEntries(['content-type', 'content-length', 'etag', 'accept-ranges', 'x-content-type-options'].map((h) => [h, res.headers.get(h)]))).toEqual({
          'content-type': 'text/plain; charset=utf-8',
          'content-length': '20',
          etag: file.etag,
          'accept-ranges': 'bytes',
          'x-content-type-options': 'nosniff',
        })
        expect(Date.parse(res.headers.get('last-modified')!)).not.toBeNaN()
        expect(res.headers.get('content-disposition')).toBeNull()
      })

      it('answers HEAD with the same headers and no body', async () => {
        const res = await fetch(url('download', path), { method: 'HEAD' })
        expect(res.status).toBe(200)
        expect(res.headers.get('content-length')).toBe('20')
        expect(res.headers.get('etag')).toBe(file.etag)
        expect((await res.arrayBuffer()).byteLength).toBe(0)
      })

      it.each([
        ['bytes=0-3', '0123', 'bytes 0-3/20'],
        ['bytes=10-', 'abcdefghij', 'bytes 10-19/20'],
        ['bytes=-5', 'fghij', 'bytes 15-19/20'],
        ['bytes=18-100', 'ij', 'bytes 18-19/20'],
        // RFC 9110 14.1.3: a suffix longer than the representation selects all of it.
        ['bytes=-20', content, 'bytes 0-19/20'],
        ['bytes=-5000', content, 'bytes 0-19/20'],
        ['bytes=-99999999999999999999999', content, 'bytes 0-19/20'],
        ['bytes=0-', content, 'bytes 0-19/20'],
        ['bytes=19-19', 'j', 'bytes 19-19/20'],
        ['bytes=19-', 'j', 'bytes 19-19/20'],
        ['bytes=0-0', '0', 'bytes 0-0/20'],
        ['Bytes=2-3', '23', 'bytes 2-3/20'],
        ['bytes= 2-3 , 3-3', '23', 'bytes 2-3/20'],
        // Overlapping and adjacent ranges merge into one; an unsatisfiable one beside a satisfiable one is dropped.
        ['bytes=0-3,2-5', '012345', 'bytes 0-5/20'],
        ['bytes=0-1,2-3', '0123', 'bytes 0-3/20'],
        ['bytes=-3,15-', 'fghij', 'bytes 15-19/20'],
        ['bytes=0-1,50-60', '01', 'bytes 0-1/20'],
      ])('answers Range %s with 206', async (range, body, contentRange) => {
        const res = await fetch(url('download', path), { headers: { range } })
        expect(res.status).toBe(206)
        expect(res.headers.get('content-range')).toBe(contentRange)
        expect(res.headers.get('content-length')).toBe(String(body.length))
        expect(await res.text()).toBe(body)
      })

      it.each(['bytes=20-30', 'bytes=20-', 'bytes=-0', 'bytes=20-20,99-', 'bytes=99999999999999999999-'])(
        'answers Range %s, outside the file, with 416 and Content-Range */size',
        async (range) => {
          for (const method of ['GET', 'HEAD']) {
            const res = await fetch(url('download', path), { method, headers: { range } })
            expect(res.status).toBe(416)
            expect(res.headers.get('content-range')).toBe('bytes */20')
            if (method === 'GET') await expectError(res, 416, 'range_not_satisfiable')
          }
        },
      )

      it.each([
        ['several ranges', { range: 'bytes=0-1,5-6' }],
        ['a unit other than bytes', { range: 'lines=1-2' }],
        ['a malformed range', { range: 'bytes=x-3' }],
        ['no =', { range: 'bytes 0-3' }],
        ['a reversed range', { range: 'bytes=5-2' }],
        ['an invalid range beside a valid one', { range: 'bytes=0-1,x' }],
        ['a lone dash', { range: 'bytes=-' }],
        ['an empty set', { range: 'bytes=' }],
        ['a stale If-Range', { range: 'bytes=0-1', 'if-range': '"stale"' }],
        ['a weak If-Range', { range: 'bytes=0-1', 'if-range': 'W/"stale"' }],
        ['an If-Range date that is not Last-Modified', { range: 'bytes=0-1', 'if-range': new Date(0).toUTCString() }],
      ])('answers %s with the whole file', async (_what, headers: Record<string, string>) => {
        const res = await fetch(url('download', path), { headers })
        expect(res.status).toBe(200)
        expect(res.headers.get('content-range')).toBeNull()
        expect(res.headers.get('content-length')).toBe('20')
        expect(await res.text()).toBe(content)
      })

      it('honours If-Range with the current ETag or Last-Modified, also on HEAD', async () => {
        const lastModified = new Date(file.modified).toUTCString()
        for (const ifRange of [file.etag, lastModified]) {
          const res = await fetch(url('download', path), { headers: { range: 'bytes=2-4', 'if-range': ifRange } })
          expect(res.status).toBe(206)
          expect(res.headers.get('content-range')).toBe('bytes 2-4/20')
          expect(await res.text()).toBe('234')
        }
        const head = await fetch(url('download', path), { method: 'HEAD', headers: { range: 'bytes=-5000', 'if-range': file.etag } })
        expect(head.status).toBe(206)
        expect(head.headers.get('content-range')).toBe('bytes 0-19/20')
        expect(head.headers.get('content-length')).toBe('20')
      })

      it('answers any Range on an empty file with the whole (empty) file', async () => {
        const empty = `${folder()}/empty.bin`
        await upload(empty, '')
        for (const range of ['bytes=0-', 'bytes=-5', 'bytes=0-0', 'bytes=5-10', 'bytes=-0']) {
          const res = await fetch(url('download', empty), { headers: { range } })
          expect(res.status).toBe(200)
          expect(res.headers.get('content-length')).toBe('0')
          expect(res.headers.get('content-range')).toBeNull()
          expect(await res.text()).toBe('')
        }
      })

      it('answers 304 to If-None-Match and If-Modified-Since', async () => {
        for (const headers of [{ 'if-none-match': file.etag }, { 'if-none-match': `"x", W/${file.etag}` }, { 'if-modified-since': new Date(Date.now() + 60_000).toUTCString() }] as Record<string, string>[]) {
          const res = await fetch(url('download', path), { headers })
          expect(res.status).toBe(304)
          expect(res.headers.get('etag')).toBe(file.etag)
        }
        expect((await fetch(url('download', path), { headers: { 'if-none-match': '"other"' } })).status).toBe(200)
      })

      it('sends Content-Disposition with an RFC 5987 name when asked', async () => {
        const res = await fetch(`${url('download', path)}?disposition=attachment`)
        expect(res.headers.get('content-disposition')).toBe(
          `attachment; filename="r?sum? \\"final\\".txt"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.txt`,
        )
        const inline = await fetch(`${url('download', path)}?disposition=inline`)
        expect(inline.headers.get('content-disposition')).toMatch(/^inline; /)
        await expectError(await fetch(`${url('download', path)}?disposition=evil`), 400, 'invalid_request')
      })

      it('never lets a file name inject a header', async () => {
        const dir = folder()
        const res = await rawRequest(svc.origin, 'PUT', `/filestorage/v1/${store}/upload/${dir}/a%0D%0ASet-Cookie:x.txt`, { body: 'x' })
        await expectError(res, 400, 'invalid_path')
        const quoted = `${dir}/a";x=.txt`
        await upload(quoted, 'x')
        const dl = await fetch(`${url('download', quoted)}?disposition=attachment`)
        expect(dl.headers.get('content-disposition')).toBe(`attachment; filename="a\\";x=.txt"`)
      })

      it('answers 404 for a missing file and for a folder', async () => {
        await expectError(await fetch(url('download', `${folder()}/missing.txt`)), 404, 'not_found')
        await expectError(await fetch(url('download', path.split('/')[0]!)), 404, 'not_found')
        expect((await fetch(url('download', `${folder()}/missing.txt`), { method: 'HEAD' })).status).toBe(404)
      })
    })

    describe('info', () => {
      it('describes a file and a folder; 404 for nothing', async () => {
        const dir = folder()
        const file = await upload(`${dir}/i.txt`, 'info')
        const res = await fetch(url('info', `${dir}/i.txt`))
        expect(res.status).toBe(200)
        expect(await res.json()).toEqual(file)
        expect(res.headers.get('etag')).toBe(file.etag)
        expect(await (await fetch(url('info', dir))).json()).toEqual({ type: 'directory', store, path: dir, name: dir })
        await expectError(await fetch(url('info', `${dir}/none`)), 404, 'not_found')
      })
    })

    describe('list', () => {
      it('lists a folder, folders first, paged with limit and cursor', async () => {
        const dir = folder()
        for (const n of ['b.txt', 'a.txt', 'c.txt']) await upload(`${dir}/${n}`, n)
        await upload(`${dir}/sub/deep.txt`, 'd')
        const first = (await (await fetch(`${url('list', dir)}?limit=2`)).json()) as { entries: FileJson[]; nextCursor: string }
        expect(first.entries.map((e) => `${e.type}:${e.name}`)).toEqual(['directory:sub', 'file:a.txt'])
        expect(first.entries[1]).toMatchObject({ store, size: 5, sha256: sha256('a.txt') })
        const second = (await (await fetch(`${url('list', dir)}?limit=2&cursor=${encodeURIComponent(first.nextCursor)}`)).json()) as {
          entries: FileJson[]
          nextCursor: string | null
        }
        expect(second.entries.map((e) => e.name)).toEqual(['b.txt', 'c.txt'])
        expect(second.nextCursor).toBeNull()
        const slash = await fetch(`${url('list', dir)}/`)
        expect(((await slash.json()) as { entries: unknown[] }).entries).toHaveLength(4)
      })

      it('lists recursively', async () => {
        const dir = folder()
        await upload(`${dir}/x/y/z.txt`, 'z')
        await upload(`${dir}/a.txt`, 'a')
        const page = (await (await fetch(`${url('list', dir)}?recursive=true`)).json()) as { entries: FileJson[] }
        expect(page.entries.map((e) => e.path)).toEqual([`${dir}/a.txt`, `${dir}/x/y/z.txt`])
      })

      it('lists the root with /list/ and /list', async () => {
        const dir = folder()
        await upload(`${dir}/r.txt`, 'r')
        for (const root of [`${api}/${store}/list/`, `${api}/${store}/list`]) {
          const page = (await (await fetch(`${root}?limit=10000`)).json()) as { entries: { name: string }[] }
          expect(page.entries.map((e) => e.name)).toContain(dir)
        }
      })

      it('refuses a bad limit or cursor; 404 for a missing folder or a file', async () => {
        const dir = folder()
        await upload(`${dir}/f.txt`, 'f')
        await expectError(await fetch(`${url('list', dir)}?limit=0`), 400, 'invalid_request')
        await expectError(await fetch(`${url('list', dir)}?limit=abc`), 400, 'invalid_request')
        await expectError(await fetch(`${url('list', dir)}?limit=10001`), 400, 'invalid_request')
        for (const limit of ['1e1', '0x10', '+1', '%201', '01', '1.0', '']) {
          await expectError(await fetch(`${url('list', dir)}?limit=${limit}`), 400, 'invalid_request')
        }
        expect((await fetch(`${url('list', dir)}?limit=10000`)).status).toBe(200)
        await expectError(await fetch(`${url('list', dir)}?recursive=maybe`), 400, 'invalid_request')
        await expectError(await fetch(`${url('list', dir)}?cursor=bogus`), 400, 'invalid_request')
        await expectError(await fetch(url('list', `${dir}/missing`)), 404, 'not_found')
        await expectError(await fetch(url('list', `${dir}/f.txt`)), 404, 'not_found')
      })
    })

    describe('move', () => {
      const move = (path: string, body: unknown, headers: Record<string, string> = {}) =>
        fetch(url('move', path), { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } })

      it('renames a file and answers FileInfo at the new place', async () => {
        const dir = folder()
        const file = await upload(`${dir}/old.txt`, 'm')
        const res = await move(`${dir}/old.txt`, { to: `${dir}/new/name.txt` })
        expect(res.status).toBe(200)
        expect(await res.json()).toMatchObject({ store, path: `${dir}/new/name.txt`, sha256: file.sha256 })
        await expectError(await fetch(url('info', `${dir}/old.txt`)), 404, 'not_found')
      })

      it('moves a folder with everything under it', async () => {
        const dir = folder()
        await upload(`${dir}/p/a.txt`, 'a')
        await upload(`${dir}/p/b/c.txt`, 'c')
        const res = await move(`${dir}/p`, { to: `${dir}/q` })
        expect(await res.json()).toEqual({ type: 'directory', store, path: `${dir}/q`, name: 'q' })
        expect(await (await fetch(url('download', `${dir}/q/b/c.txt`))).text()).toBe('c')
      })

      it('answers 409 onto an existing path unless overwrite, and 412 on If-Match', async () => {
        const dir = folder()
        await upload(`${dir}/a`, 'a')
        await upload(`${dir}/b`, 'b')
        await expectError(await move(`${dir}/a`, { to: `${dir}/b` }), 409, 'already_exists')
        await expectError(await move(`${dir}/a`, { to: `${dir}/b`, overwrite: true }, { 'if-match': '"nope"' }), 412, 'precondition_failed')
        expect((await move(`${dir}/a`, { to: `${dir}/b`, overwrite: true })).status).toBe(200)
        expect(await (await fetch(url('download', `${dir}/b`))).text()).toBe('a')
      })

      it('refuses bad bodies, bad targets and unknown stores', async () => {
        const dir = folder()
        await upload(`${dir}/s`, 's')
        await expectError(await move(`${dir}/s`, {}), 400, 'invalid_request')
        await expectError(await move(`${dir}/s`, { to: 42 }), 400, 'invalid_request')
        await expectError(await move(`${dir}/s`, { to: 'x', overwrite: 'yes' }), 400, 'invalid_request')
        await expectError(await fetch(url('move', `${dir}/s`), { method: 'POST', body: '{"to":', headers: { 'content-type': 'application/json' } }), 400, 'invalid_request')
        await expectError(await fetch(url('move', `${dir}/s`), { method: 'POST', body: 'to=x', headers: { 'content-type': 'text/plain' } }), 400, 'invalid_request')
        await expectError(await move(`${dir}/s`, { to: '../escape' }), 400, 'invalid_path')
        await expectError(await move(`${dir}/s`, { to: '.filestorage/x' }), 400, 'invalid_path')
        await expectError(await move(`${dir}/s`, { to: `${dir}/t`, toStore: 'nope' }), 404, 'unknown_store')
        await expectError(await move(`${dir}/missing`, { to: `${dir}/t` }), 404, 'not_found')
        await expectError(await move(dir, { to: `${dir}/inside` }), 400, 'invalid_request')
      })
    })

    describe('delete', () => {
      it('deletes a file with 204, then 404', async () => {
        const dir = folder()
        await upload(`${dir}/d.txt`, 'd')
        const res = await fetch(url('delete', `${dir}/d.txt`), { method: 'DELETE' })
        expect(res.status).toBe(204)
        await expectError(await fetch(url('delete', `${dir}/d.txt`), { method: 'DELETE' }), 404, 'not_found')
      })

      it('answers 409 directory_not_empty without recursive, deletes with it', async () => {
        const dir = folder()
        await upload(`${dir}/x/y.txt`, 'y')
        await expectError(await fetch(url('delete', dir), { method: 'DELETE' }), 409, 'directory_not_empty')
        await expectError(await fetch(`${url('delete', dir)}?recursive=false`, { method: 'DELETE' }), 409, 'directory_not_empty')
        // Only the declared boolean's spellings: an empty or numeric value removes nothing.
        for (const value of ['', '1', 'yes', 'TRUE']) {
          await expectError(await fetch(`${url('delete', dir)}?recursive=${value}`, { method: 'DELETE' }), 400, 'invalid_request')
        }
        expect((await fetch(url('info', `${dir}/x/y.txt`))).status).toBe(200)
        expect((await fetch(`${url('delete', dir)}?recursive=true`, { method: 'DELETE' })).status).toBe(204)
        await expectError(await fetch(url('info', dir)), 404, 'not_found')
      })

      it('checks If-Match with 412', async () => {
        const dir = folder()
        const file = await upload(`${dir}/m.txt`, 'm')
        await expectError(await fetch(url('delete', `${dir}/m.txt`), { method: 'DELETE', headers: { 'if-match': '"nope"' } }), 412, 'precondition_failed')
        expect((await fetch(url('delete', `${dir}/m.txt`), { method: 'DELETE', headers: { 'if-match': file.etag } })).status).toBe(204)
      })
    })

    describe('uploads in parts', () => {
      const part = (n: number, size: number) => new Uint8Array(size).fill(n)
      const create = async (path: string, init: RequestInit = {}) => {
        const res = await fetch(url('createupload', path), { method: 'POST', ...init })
        expect(res.status, await res.clone().text()).toBe(201)
        return (await res.json()) as { uploadId: string; partSizeLimit: number; expiresAt: string; path: string }
      }
      const sendPart = (id: string, n: number | string, body: Uint8Array | string, headers: Record<string, string> = {}) =>
        fetch(`${api}/${store}/uploadpart/${id}?part=${n}`, { method: 'PUT', body, headers })

      it('creates, takes parts in any order, reports them, and completes into the file', async () => {
        const path = `${folder()}/parts.bin`
        const session = await create(path, {
          body: JSON.stringify({ contentType: 'application/x-parts', metadata: { via: 'parts' } }),
          headers: { 'content-type': 'application/json' },
        })
        expect(session).toMatchObject({ path, partSizeLimit: Number(API_LIMITS.PART_SIZE_LIMIT) })
        expect(Date.parse(session.expiresAt)).toBeGreaterThan(Date.now())
        const p2 = await sendPart(session.uploadId, 2, part(2, 1000))
        expect(await p2.json()).toEqual({ part: 2, size: 1000, sha256: sha256(part(2, 1000)) })
        expect((await sendPart(session.uploadId, 1, part(1, 3000), { 'x-content-sha256': sha256(part(1, 3000)) })).status).toBe(200)
        const status = (await (await fetch(`${api}/${store}/uploadstatus/${session.uploadId}`)).json()) as { parts: { part: number }[] }
        expect(status.parts.map((p) => p.part)).toEqual([1, 2])
        const whole = Buffer.concat([part(1, 3000), part(2, 1000)])
        const done = await fetch(`${api}/${store}/completeupload/${session.uploadId}`, {
          method: 'POST',
          body: JSON.stringify({ sha256: sha256(whole) }),
          headers: { 'content-type': 'application/json' },
        })
        expect(done.status).toBe(201)
        expect(await done.json()).toMatchObject({ path, size: 4000, sha256: sha256(whole), contentType: 'application/x-parts', metadata: { via: 'parts' } })
        expect(Buffer.from(await (await fetch(url('download', path))).arrayBuffer()).equals(whole)).toBe(true)
        await expectError(await fetch(`${api}/${store}/uploadstatus/${session.uploadId}`), 404, 'not_found')
        // Its answer lost (a crash, a cut connection): completing again answers the stored file.
        const again = await fetch(`${api}/${store}/completeupload/${session.uploadId}`, { method: 'POST' })
        expect(again.status, await again.clone().text()).toBe(201)
        expect(await again.json()).toMatchObject({ path, size: 4000, sha256: sha256(whole), contentType: 'application/x-parts' })
      })

      it('answers 409 upload_incomplete for a missing part, naming it', async () => {
        const { uploadId } = await create(`${folder()}/gap.bin`)
        await sendPart(uploadId, 1, 'a')
        await sendPart(uploadId, 3, 'c')
        const body = await expectError(await fetch(`${api}/${store}/completeupload/${uploadId}`, { method: 'POST' }), 409, 'upload_incomplete')
        expect(body.error.details).toEqual({ missing: [2] })
      })

      it('refuses bad part numbers, oversized parts, wrong checksums and bad completion bodies', async () => {
        const { uploadId } = await create(`${folder()}/bad.bin`)
        await expectError(await sendPart(uploadId, 0, 'x'), 400, 'invalid_request')
        await expectError(await sendPart(uploadId, 'one', 'x'), 400, 'invalid_request')
        // Only plain decimal digits: Number() would read every one of these as a valid part number.
        for (const n of ['1e0', '1e3', '0x10', '+1', '%201', '1%20', '01', '1.0', '', '10001']) {
          await expectError(await sendPart(uploadId, n, 'x'), 400, 'invalid_request')
        }
        expect((await (await fetch(`${api}/${store}/uploadstatus/${uploadId}`)).json()) as unknown).toMatchObject({ parts: [] })
        await expectError(await fetch(`${api}/${store}/uploadpart/${uploadId}`, { method: 'PUT', body: 'x' }), 400, 'invalid_request')
        await expectError(await sendPart(uploadId, 1, part(1, Number(API_LIMITS.PART_SIZE_LIMIT) + 1)), 413, 'payload_too_large')
        await expectError(await sendPart(uploadId, 1, 'x', { 'x-content-sha256': sha256('y') }), 400, 'checksum_mismatch')
        await expectError(
          await fetch(`${api}/${store}/completeupload/${uploadId}`, { method: 'POST', body: '{"parts":"all"}', headers: { 'content-type': 'application/json' } }),
          400,
          'invalid_request',
        )
      })

      it('refuses JSON bodies nested too deep (400) or too large (413) on every JSON route, and deep metadata in createupload', async () => {
        const path = `${folder()}/json.bin`
        const deepMetadata = `{"metadata":${nested(3000)}}`
        for (const body of [deepMetadata, `{"metadata":${nested(33)}}`]) {
          await expectError(await fetch(url('createupload', path), { method: 'POST', body, headers: JSON_HEADERS }), 400, 'invalid_request')
        }
        await expectError(await fetch(url('createupload', path), { method: 'POST', headers: { 'x-file-metadata': nested(3000) } }), 400, 'invalid_request')
        const { uploadId } = await create(path, { body: `{"metadata":${nested(32)}}`, headers: JSON_HEADERS })
        // Every JSON route, each with fields it takes: a body 100,000 deep (200 KB) is refused by the
        // depth check (its message), before a parser or validator sees it; 300 KiB is refused unread.
        const routes: [string, Record<string, unknown>][] = [
          [url('createupload', path), { contentType: 'text/plain' }],
          [`${api}/${store}/completeupload/${uploadId}`, { parts: [1] }],
          [url('move', path), { to: 'x' }],
          [url('sign', path), { operation: 'download' }],
        ]
        const deep = (fields: Record<string, unknown>) => `${JSON.stringify(fields).slice(0, -1)},"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`
        for (const [target, fields] of routes) {
          const tooDeep = await expectError(await fetch(target, { method: 'POST', body: deep(fields), headers: JSON_HEADERS }), 400, 'invalid_request')
          expect(tooDeep.error.message, target).toMatch(/nests deeper than 64 levels/)
          const huge = JSON.stringify({ ...fields, padding: 'x'.repeat(300 * 1024) })
          await expectError(await fetch(target, { method: 'POST', body: huge, headers: JSON_HEADERS }), 413, 'payload_too_large')
        }
        // The bounded body still reaches the route: anonymous access signs with the process's own key.
        const signed = await fetch(url('sign', path), { method: 'POST', body: '{"operation":"download"}', headers: JSON_HEADERS })
        expect(signed.status, await signed.clone().text()).toBe(200)
        // The largest legitimate body passes: every one of 10,000 part numbers, spaced out.
        const allParts = JSON.stringify({ parts: Array.from({ length: 10_000 }, (_, i) => i + 1) }, null, 1)
        const listed = await fetch(`${api}/${store}/completeupload/${uploadId}`, { method: 'POST', body: allParts, headers: JSON_HEADERS })
        await expectError(listed, 409, 'upload_incomplete')
      })

      it('answers 412 when If-None-Match: * no longer holds at completion', async () => {
        const path = `${folder()}/race.txt`
        const { uploadId } = await create(path, { headers: { 'if-none-match': '*' } })
        await sendPart(uploadId, 1, 'mine')
        await upload(path, 'theirs')
        await expectError(await fetch(`${api}/${store}/completeupload/${uploadId}`, { method: 'POST' }), 412, 'precondition_failed')
        await expectError(await fetch(url('createupload', path), { method: 'POST', headers: { 'if-none-match': '*' } }), 412, 'precondition_failed')
      })

      it('aborts with 204; unknown ids are 404', async () => {
        const { uploadId } = await create(`${folder()}/abort.bin`)
        await sendPart(uploadId, 1, 'x')
        expect((await fetch(`${api}/${store}/abortupload/${uploadId}`, { method: 'DELETE' })).status).toBe(204)
        await expectError(await fetch(`${api}/${store}/abortupload/${uploadId}`, { method: 'DELETE' }), 404, 'not_found')
        await expectError(await sendPart(uploadId, 1, 'x'), 404, 'not_found')
        await expectError(await fetch(`${api}/${store}/uploadstatus/not-an-id`), 404, 'not_found')
      })
    })

    describe('tus (SPEC 3.3): the round trip of a tus client', () => {
      const collection = () => `${api}/${store}/tus/`
      const patch = (location: string, offset: number, body: string) =>
        fetch(location, { method: 'PATCH', headers: { ...TUS_HEADERS, 'content-type': OFFSET_STREAM, 'upload-offset': String(offset) }, body })

      it('creates, resumes from HEAD with PATCH into the file, and terminates an unfinished one', async () => {
        const dir = folder()
        expect((await fetch(collection(), { method: 'OPTIONS' })).status).toBe(204)
        const created = await fetch(collection(), {
          method: 'POST',
          headers: { ...TUS_HEADERS, 'upload-length': '16', 'upload-metadata': uploadMetadata({ path: `${dir}/tus.bin`, filetype: 'text/plain' }) },
        })
        expect(created.status, await created.clone().text()).toBe(201)
        const location = new URL(created.headers.get('location')!, api).href
        expect((await patch(location, 0, '0123456789')).headers.get('upload-offset')).toBe('10')
        const head = await fetch(location, { method: 'HEAD', headers: TUS_HEADERS })
        expect([head.status, head.headers.get('upload-offset'), head.headers.get('upload-length')]).toEqual([200, '10', '16'])
        expect((await patch(location, 10, 'abcdef')).status).toBe(204)
        const download = await fetch(url('download', `${dir}/tus.bin`))
        expect([download.status, download.headers.get('content-type'), await download.text()]).toEqual([200, 'text/plain', '0123456789abcdef'])

        // Creation with upload, then termination: the unfinished upload is gone, and no file was made.
        const partial = await fetch(collection(), {
          method: 'POST',
          headers: { ...TUS_HEADERS, 'upload-length': '10', 'upload-metadata': uploadMetadata({ path: `${dir}/dropped.bin` }), 'content-type': OFFSET_STREAM },
          body: 'four',
        })
        expect([partial.status, partial.headers.get('upload-offset')]).toEqual([201, '4'])
        const dropped = new URL(partial.headers.get('location')!, api).href
        expect((await fetch(dropped, { method: 'DELETE', headers: TUS_HEADERS })).status).toBe(204)
        expect((await fetch(dropped, { method: 'HEAD', headers: TUS_HEADERS })).status).toBe(404)
        await expectError(await fetch(url('info', `${dir}/dropped.bin`)), 404, 'not_found')
      })
    })

    describe('bad paths (SPEC 3.2): 400 invalid_path on every route, nothing touched', () => {
      const badPaths: [string, string][] = [
        ['plain ..', 'a/../b'],
        ['leading ..', '../etc/passwd'],
        ['encoded ..', 'a/%2e%2e/b'],
        ['mixed-case encoded ..', '%2E%2e/x'],
        ['half-encoded ..', '.%2e/x'],
        ['plain .', 'a/./b'],
        ['encoded .', 'a/%2e/b'],
        ['NUL', 'a%00b'],
        ['control character', 'a%07b'],
        ['encoded backslash', '..%5c..%5cx'],
        ['raw backslash', 'a\\b'],
        ['empty segment', 'a//b'],
        ['over-long segment', 'x'.repeat(256)],
        ['over-long path', Array.from({ length: 9 }, () => 'y'.repeat(120)).join('/')],
        ['reserved name', '.filestorage/meta'],
        ['encoded reserved name', '%2Efilestorage/tmp'],
        ['percent-escape that is not UTF-8', 'a%ffb.txt'],
        ['overlong UTF-8 dot', 'a/%c0%ae%c0%ae/b'],
        ['malformed percent-escape', 'a%zzb.txt'],
      ]
      const routes: [string, string][] = [
        ['PUT', 'upload'],
        ['GET', 'download'],
        ['HEAD', 'download'],
        ['GET', 'info'],
        ['GET', 'list'],
        ['POST', 'move'],
        ['DELETE', 'delete'],
        ['POST', 'createupload'],
      ]
      /** A body each route accepts, so that only the path can be wrong. */
      const requestFor = (method: string, verb: string) =>
        verb === 'move'
          ? { body: '{"to":"elsewhere"}', headers: { 'content-type': 'application/json' } }
          : method === 'PUT'
            ? { body: 'x' }
            : {}
      /**
       * Bun resolves `.` and `..` segments (also as %2e) and backslashes of the request target before
       * the app sees it, as the URL standard does (and Deno and Workers): such a request is the request
       * for the resolved path. Proven on the read routes, whose answers must be the same, and never 5xx.
       */
      const resolvedByRuntime = (target: string) => run.runtime === 'bun' && rawTargetProblem(target) !== null
      const expectAnsweredAsResolved = async (target: string) => {
        for (const [method, verb] of routes.filter(([m]) => m === 'GET' || m === 'HEAD')) {
          const raw = await rawRequest(svc.origin, method, `/filestorage/v1/${store}/${verb}/${target}`)
          const resolved = await rawRequest(svc.origin, method, new URL(`/filestorage/v1/${store}/${verb}/${target}`, svc.origin).pathname)
          expect(raw.status, `${method} ${verb}`).toBeLessThan(500)
          expect({ status: raw.status, body: raw.body.toString() }, `${method} ${verb}`).toEqual({ status: resolved.status, body: resolved.body.toString() })
        }
      }
      for (const [label, bad] of badPaths) {
        if (resolvedByRuntime(bad)) {
          it(`answers ${label} as the path it resolves to (Bun resolves it)`, () => expectAnsweredAsResolved(bad))
          continue
        }
        it(`refuses ${label}`, async () => {
          for (const [method, verb] of routes) {
            const res = await rawRequest(svc.origin, method, `/filestorage/v1/${store}/${verb}/${bad}`, requestFor(method, verb))
            if (method === 'HEAD') {
              expect(res.status, `${method} ${verb}`).toBe(400)
              continue
            }
            await expectError(res, 400, 'invalid_path')
          }
        })
      }

      it('refuses an empty path on every route but list (where it is the root)', async () => {
        for (const [method, verb] of routes.filter(([, v]) => v !== 'list')) {
          const res = await rawRequest(svc.origin, method, `/filestorage/v1/${store}/${verb}/`, requestFor(method, verb))
          if (method === 'HEAD') expect(res.status).toBe(400)
          else await expectError(res, 400, 'invalid_path')
        }
      })

      const backslashes = '..\\..\\etc\\passwd'
      if (resolvedByRuntime(backslashes)) {
        it('answers raw backslashes as the path they resolve to (Bun resolves them)', () => expectAnsweredAsResolved(backslashes))
      } else {
        it('answers 400 for a raw backslash before Hono sees it', async () => {
          await expectError(await rawRequest(svc.origin, 'GET', `/filestorage/v1/${store}/download/${backslashes}`), 400, 'invalid_path')
        })
      }
    })

    describe('service routes', () => {
      it('check answers 200 with this store up', async () => {
        const res = await fetch(`${api}/check`)
        expect(res.status).toBe(200)
        const body = (await res.json()) as { status: string; stores: Record<string, { status: string }> }
        expect(body.status).toBe('ok')
        expect(body.stores[store]?.status).toBe('up')
      })

      it('help lists every route and links the docs', async () => {
        const body = (await (await fetch(`${api}/help`)).json()) as { docs: string; routes: { method: string; path: string }[] }
        expect(body.docs).toBe('/filestorage/v1/docs')
        const routes = body.routes.map((r) => `${r.method} ${r.path}`)
        for (const r of [
          'PUT /filestorage/v1/{store}/upload/{path}',
          'POST /filestorage/v1/{store}/upload/{path}',
          'GET /filestorage/v1/{store}/download/{path}',
          'GET /filestorage/v1/{store}/info/{path}',
          'GET /filestorage/v1/{store}/list/{dir}',
          'POST /filestorage/v1/{store}/move/{path}',
          'DELETE /filestorage/v1/{store}/delete/{path}',
          'POST /filestorage/v1/{store}/createupload/{path}',
          'PUT /filestorage/v1/{store}/uploadpart/{uploadId}',
          'GET /filestorage/v1/{store}/uploadstatus/{uploadId}',
          'POST /filestorage/v1/{store}/completeupload/{uploadId}',
          'DELETE /filestorage/v1/{store}/abortupload/{uploadId}',
          'GET /filestorage/v1/check',
          'GET /filestorage/v1/help',
        ]) {
          expect(routes).toContain(r)
        }
      })

      if (run.headers) {
        it("refuses a request without the run's headers (the run really has access control on)", async () => {
          const res = await globalThis.fetch(`${api}/${store}/list/`)
          await expectError(res, 401, 'unauthorized')
          expect((await fetch(`${api}/${store}/list/`)).status).toBe(200)
        })
      }

      it('unknown routes answer 404 JSON', async () => {
        await expectError(await fetch(`${api}/${store}/frobnicate/x`), 404, 'not_found')
        await expectError(await fetch(`${svc.origin}/elsewhere`), 404, 'not_found')
      })
    })
  })
}
