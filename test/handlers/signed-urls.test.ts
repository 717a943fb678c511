/**
 * Signed URLs (SPEC 6) over real HTTP, used from a plain curl with no token: download, upload and
 * tus creation work; every signed part tampered gives 403; expiry is honoured; the limits hold; and
 * keys rotate: a URL signed by a key still listed works, one by a key taken off the list is refused.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { expectError } from '../helpers/http.js'
import { bearer, hmacKey, hmacToken, keysEnv } from '../helpers/auth.js'
import { startTestService, type TestService } from '../helpers/test-service.js'
import { storeEnv, TUS_HEADERS, uploadMetadata } from '../helpers/tus.js'

const run = promisify(execFile)
const tokenKey = hmacKey('tokens')
const urlKey = hmacKey('urls-1')

const withMongo = Boolean(process.env.MONGODB_URI)
let svc: TestService
let ana: string
let work: string

/** curl, as a page or a script would use the URL: no token. Answers status, headers and body. */
async function curl(args: string[]): Promise<{ status: number; headers: string; body: string }> {
  const { stdout } = await run('curl', ['-sS', '--max-time', '20', '-D', '-', '-w', '\n%{http_code}', ...args], { maxBuffer: 1 << 20 })
  const status = Number(stdout.slice(stdout.lastIndexOf('\n') + 1))
  const rest = stdout.slice(0, stdout.lastIndexOf('\n'))
  const split = rest.lastIndexOf('\r\n\r\n')
  return { status, headers: rest.slice(0, split), body: rest.slice(split + 4) }
}

const sign = async (path: string, request: Record<string, unknown>, token = ana) => {
  const res = await fetch(`${svc.api}/disk/sign/${path}`, {
    method: 'POST',
    headers: { ...bearer(token), 'Content-Type': 'application/json' },
    body: JSON.stringify(request),
  })
  expect(res.status, await res.clone().text()).toBe(200)
  return (await res.json()) as { url: string; method: string; expiresAt: string }
}

const read = async (path: string) => {
  const res = await fetch(`${svc.api}/disk/download/${path}`, { headers: bearer(ana) })
  return res.status === 200 ? res.text() : res.status
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'filestorage-signed-'))
  svc = await startTestService({
    AUTH_HMAC_SECRETS: keysEnv(tokenKey),
    AUTH_URL_SIGNING_KEYS: keysEnv(urlKey),
    AUTH_URL_MAX_EXPIRY: '10m',
    // A second store, so that a URL moved to it is refused for its signature, not for a missing store.
    ...(withMongo ? storeEnv('mongo') : {}),
  })
  ana = await hmacToken(tokenKey, 'ana', ['files:*:disk:users/ana'])
  await fetch(`${svc.api}/disk/upload/users/ana/photo.png`, { method: 'PUT', headers: { ...bearer(ana), 'Content-Type': 'image/png' }, body: 'PNG bytes' })
  await fetch(`${svc.api}/disk/upload/users/ana/page.html`, { method: 'PUT', headers: { ...bearer(ana), 'Content-Type': 'text/html' }, body: '<script>alert(1)</script>' })
})
afterAll(async () => {
  await svc?.stop()
  await rm(work, { recursive: true, force: true })
})

describe('signed URLs from curl, without a token', () => {
  it('download: GET and HEAD', async () => {
    const signed = await sign('users/ana/photo.png', { operation: 'download', expiresIn: 120 })
    expect(signed.method).toBe('GET')
    expect(signed.url).toMatch(new RegExp(`^${svc.api}/disk/download/users/ana/photo\\.png\\?exp=\\d+&kid=urls-1&sig=[\\w-]{43}$`))
    expect(Date.parse(signed.expiresAt) - Date.now()).toBeGreaterThan(100_000)
    const got = await curl([signed.url])
    expect(got).toMatchObject({ status: 200, body: 'PNG bytes' })
    expect((await curl(['-I', signed.url])).status).toBe(200)
  })

  it('upload: PUT of the raw body, within its size and content type', async () => {
    const signed = await sign('users/ana/drop/report.pdf', { operation: 'upload', maxBytes: 100, contentType: 'application/pdf' })
    expect(signed.method).toBe('PUT')
    const file = join(work, 'report.pdf')
    await writeFile(file, '%PDF-1.7 small')
    const put = await curl(['-T', file, '-H', 'Content-Type: application/pdf', signed.url])
    expect(put.status, put.body).toBe(201)
    expect(JSON.parse(put.body)).toMatchObject({ path: 'users/ana/drop/report.pdf', contentType: 'application/pdf', size: 14 })
    // No Content-Type at all: the signed one is stored.
    expect((await curl(['-T', file, signed.url])).status).toBe(200)

    await writeFile(file, 'x'.repeat(101))
    expect((await curl(['-T', file, signed.url])).status).toBe(413)
    await writeFile(file, '<html>')
    expect((await curl(['-T', file, '-H', 'Content-Type: text/html', signed.url])).status).toBe(403)
    expect(await read('users/ana/drop/report.pdf')).toBe('%PDF-1.7 small')
  })

  it('tus creation: the whole file in the creation request, or PATCHes to the signed Location', async () => {
    const signed = await sign('users/ana/video.mp4', { operation: 'tus', maxBytes: 1000, contentType: 'video/mp4' })
    expect(signed.method).toBe('POST')
    expect(new URL(signed.url).pathname).toBe('/filestorage/v1/disk/tus/')
    const tus = ['-H', 'Tus-Resumable: 1.0.0', '-H', 'Content-Type: application/offset+octet-stream']
    const one = await curl(['-X', 'POST', ...tus, '-H', 'Upload-Length: 5', '--data-binary', 'hello', signed.url])
    expect(one.status, one.body).toBe(201)
    expect(await read('users/ana/video.mp4')).toBe('hello')

    // Placement metadata cannot move the file off the signed path.
    const meta = `Upload-Metadata: ${uploadMetadata({ path: 'users/bob/evil.mp4', filetype: 'video/mp4' })}`
    const created = await curl(['-X', 'POST', '-H', 'Tus-Resumable: 1.0.0', '-H', 'Upload-Length: 6', '-H', meta, signed.url])
    expect(created.status, created.body).toBe(201)
    const location = /^location: (.+)$/im.exec(created.headers)![1]!.trim()
    expect(location).toMatch(/\/disk\/tus\/[0-9a-f]{32}\?exp=\d+&kid=urls-1&sig=[\w-]{43}$/)
    const head = await curl(['-I', '-H', 'Tus-Resumable: 1.0.0', location])
    expect(head.headers).toMatch(/^upload-offset: 0\r?$/im)
    const patched = await curl(['-X', 'PATCH', ...tus, '-H', 'Upload-Offset: 0', '--data-binary', 'again!', location])
    expect(patched.status, patched.body).toBe(204)
    expect(await read('users/ana/video.mp4')).toBe('again!')

    // The Location reaches that upload only (not another one made through a signed URL), and not without its signature.
    const second = await curl(['-X', 'POST', '-H', 'Tus-Resumable: 1.0.0', '-H', 'Upload-Length: 6', signed.url])
    const secondId = /^location: .*\/([0-9a-f]{32})\?/im.exec(second.headers)![1]!
    const other = new URL(location)
    other.pathname = other.pathname.replace(/[0-9a-f]{32}$/, secondId)
    expect((await curl(['-I', '-H', 'Tus-Resumable: 1.0.0', other.href])).status).toBe(403)
    expect((await curl(['-I', '-H', 'Tus-Resumable: 1.0.0', location.split('?')[0]!])).status).toBe(401)
    // Its limits hold.
    expect((await curl(['-X', 'POST', '-H', 'Tus-Resumable: 1.0.0', '-H', 'Upload-Length: 1001', signed.url])).status).toBe(413)
    const wrongType = `Upload-Metadata: ${uploadMetadata({ filetype: 'text/html' })}`
    expect((await curl(['-X', 'POST', '-H', 'Tus-Resumable: 1.0.0', '-H', 'Upload-Length: 3', '-H', wrongType, signed.url])).status).toBe(403)
  })
})

describe('what a signed URL does not grant', () => {
  it('answers 403 when any signed part is changed', async () => {
    const download = new URL((await sign('users/ana/photo.png', { operation: 'download' })).url)
    const upload = new URL((await sign('users/ana/up.bin', { operation: 'upload', maxBytes: 10, contentType: 'text/plain' })).url)
    const tus = new URL((await sign('users/ana/t.bin', { operation: 'tus', maxBytes: 10 })).url)
    const changed = (url: URL, change: (u: URL) => void) => {
      const copy = new URL(url)
      change(copy)
      return copy.href
    }
    const cases: [string, string, RequestInit][] = [
      ['the path', changed(download, (u) => (u.pathname = u.pathname.replace('photo.png', 'page.html'))), {}],
      ['the store', changed(download, (u) => (u.pathname = u.pathname.replace('/disk/', '/mongo/'))), {}],
      ['the operation', changed(download, (u) => (u.pathname = u.pathname.replace('/download/', '/info/'))), {}],
      ['the expiry', changed(download, (u) => u.searchParams.set('exp', String(Number(u.searchParams.get('exp')) + 1))), {}],
      ['the signature', changed(download, (u) => u.searchParams.set('sig', `${u.searchParams.get('sig')!.startsWith('A') ? 'B' : 'A'}${u.searchParams.get('sig')!.slice(1)}`)), {}],
      ['the key id', changed(download, (u) => u.searchParams.set('kid', 'tokens')), {}],
      ['the size limit', changed(upload, (u) => u.searchParams.set('max', '1000000')), { method: 'PUT', body: 'x' }],
      ['a removed size limit', changed(upload, (u) => u.searchParams.delete('max')), { method: 'PUT', body: 'x' }],
      ['the content type', changed(upload, (u) => u.searchParams.set('type', 'text/html')), { method: 'PUT', body: 'x' }],
      ['the method (a download URL used to upload)', changed(download, (u) => (u.pathname = u.pathname.replace('/download/', '/upload/'))), { method: 'PUT', body: 'x' }],
      ['the tus target', changed(tus, (u) => u.searchParams.set('path', 'users/bob/t.bin')), { method: 'POST', headers: { ...TUS_HEADERS, 'Upload-Length': '1' } }],
      ['a tus creation from a download URL', changed(download, (u) => (u.pathname = '/filestorage/v1/disk/tus/')), {
        method: 'POST',
        headers: { ...TUS_HEADERS, 'Upload-Length': '1', 'Upload-Metadata': uploadMetadata({ path: 'users/ana/photo.png' }) },
      }],
      ['a form upload from an upload URL', changed(upload, (u) => (u.pathname = u.pathname.replace('/up.bin', ''))), { method: 'POST', body: new FormData() }],
    ]
    for (const [what, url, init] of cases) {
      const res = await fetch(url, init)
      if (what === 'the store' && !withMongo) await expectError(res, 404, 'unknown_store')
      else expect((await expectError(res, 403, 'forbidden')).error.message, what).toBeTruthy()
    }
    expect(await read('users/ana/up.bin')).toBe(404)
  })

  it('cannot be signed on a path the caller has no right to, nor live beyond the longest life', async () => {
    for (const [path, body, status] of [
      ['users/bob/x.txt', { operation: 'download' }, 403],
      ['users/ana/x.txt', { operation: 'download', maxBytes: 5 }, 400],
      ['users/ana/x.txt', { operation: 'upload', contentType: 'text/html\r\nX-Evil: 1' }, 400],
      ['users/ana/x.txt', { operation: 'delete' }, 400],
    ] as const) {
      const res = await fetch(`${svc.api}/disk/sign/${path}`, { method: 'POST', headers: { ...bearer(ana), 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
      expect(res.status, JSON.stringify(body)).toBe(status)
    }
    // Asked to live longer than AUTH_URL_MAX_EXPIRY (10m here), a URL lives that long, and says so.
    const long = await sign('users/ana/x.txt', { operation: 'download', expiresIn: 86_400 })
    expect(Date.parse(long.expiresAt) - Date.now()).toBeLessThanOrEqual(600_000)
    expect(Date.parse(long.expiresAt) - Date.now()).toBeGreaterThan(590_000)
    const readOnly = await hmacToken(tokenKey, 'ana', ['files:read:disk:users/ana'])
    const res = await fetch(`${svc.api}/disk/sign/users/ana/x.txt`, { method: 'POST', headers: { ...bearer(readOnly), 'Content-Type': 'application/json' }, body: '{"operation":"upload"}' })
    await expectError(res, 403, 'forbidden')
    // A signed URL is no credential for signing more.
    const signed = new URL((await sign('users/ana/photo.png', { operation: 'download' })).url)
    const again = await fetch(`${svc.api}/disk/sign/users/ana/photo.png${signed.search}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"operation":"download"}' })
    await expectError(again, 403, 'forbidden')
  })

  it('serves active content as an attachment even when the URL asks for inline', async () => {
    const signed = await sign('users/ana/page.html', { operation: 'download' })
    const res = await fetch(`${signed.url}&disposition=inline`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-disposition')).toMatch(/^attachment/)
    expect(res.headers.get('content-security-policy')).toBe("default-src 'none'; sandbox")
  })

  it('expires', async () => {
    const signed = await sign('users/ana/photo.png', { operation: 'download', expiresIn: 1 })
    await new Promise((r) => setTimeout(r, 2100))
    const body = await expectError(await fetch(signed.url), 403, 'forbidden')
    expect(body.error.message).toMatch(/expired at \d{4}-\d\d-\d\dT/)
  })
})

describe('key rotation', () => {
  it('keeps URLs of a still-listed key working and refuses those of a key taken off the list', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'filestorage-rotation-'))
    const oldKey = hmacKey('2024')
    const newKey = hmacKey('2025')
    const serve = (keys: string) => startTestService({ STORAGE_DIR: dir, AUTH_HMAC_SECRETS: keysEnv(tokenKey), AUTH_URL_SIGNING_KEYS: keys })
    const pathAndQuery = (url: string) => url.slice(new URL(url).origin.length)
    try {
      let current = await serve(keysEnv(oldKey))
      await fetch(`${current.api}/disk/upload/users/ana/r.txt`, { method: 'PUT', headers: bearer(ana), body: 'rotated' })
      const signUrl = async () =>
        pathAndQuery(
          ((await (await fetch(`${current.api}/disk/sign/users/ana/r.txt`, { method: 'POST', headers: { ...bearer(ana), 'Content-Type': 'application/json' }, body: '{"operation":"download"}' })).json()) as { url: string }).url,
        )
      const byOld = await signUrl()
      expect(byOld).toContain('kid=2024')
      await current.stop()

      // Step 1: the new key signs, the old one still verifies.
      current = await serve(keysEnv(newKey, oldKey))
      expect(await (await fetch(current.origin + byOld)).text()).toBe('rotated')
      const byNew = await signUrl()
      expect(byNew).toContain('kid=2025')
      await current.stop()

      // Step 2, once the old URLs have expired: the old key is gone.
      current = await serve(keysEnv(newKey))
      const refused = await expectError(await fetch(current.origin + byOld), 403, 'forbidden')
      expect(refused.error.message).toContain('"2024" is no longer accepted')
      expect(await (await fetch(current.origin + byNew)).text()).toBe('rotated')
      await current.stop()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
