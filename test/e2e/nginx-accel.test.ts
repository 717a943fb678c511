/**
 * nginx sends the bytes (issue 12: ACCEL_REDIRECT_LOCATION): a real nginx running
 * deploy/nginx/nginx.conf unchanged, in front of an instance with the mode, answers every download
 * with the same status, headers and bytes as a second nginx in front of an instance without it, on
 * the same store: plain GETs, ranges nginx applies itself, ranges and conditions the service keeps,
 * HEAD, errors. A file replaced while it is downloaded again and again is always one whole version
 * with its own ETag; and when the version named is gone before nginx opens it, nginx asks the
 * service again, which then sends the bytes itself.
 */
import { createHash, randomBytes } from 'node:crypto'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type NginxProcess, nginxBinary, startNginx } from '../helpers/nginx.js'
import { type ProcessService, spawnService } from '../helpers/process-service.js'

const nginxBin = nginxBinary()
const LOCATION = '/_filestorage/disk/'
const upstream = (svc: ProcessService) => `server 127.0.0.1:${svc.port};\n`
/** Headers nginx makes per response (Date), not what this comparison is about. */
const PER_RESPONSE = new Set(['date'])

interface Answer {
  status: number
  headers: Record<string, string>
  body: Buffer
}

async function ask(origin: string, path: string, init: RequestInit = {}): Promise<Answer> {
  const response = await fetch(`${origin}/filestorage/v1${path}`, { ...init, signal: AbortSignal.timeout(15_000) })
  const headers: Record<string, string> = {}
  for (const [name, value] of response.headers) if (!PER_RESPONSE.has(name)) headers[name] = value
  return { status: response.status, headers, body: Buffer.from(await response.arrayBuffer()) }
}

describe.runIf(nginxBin)('nginx sends the bytes of disk downloads (X-Accel-Redirect)', () => {
  let storage: string
  let accel: ProcessService
  let plain: ProcessService
  let viaAccel: NginxProcess
  let viaPlain: NginxProcess
  /** nginx that cannot see the store's folder: every redirect falls back to the service. */
  let blind: NginxProcess
  const binary = randomBytes(300_000)
  let etag = ''

  beforeAll(async () => {
    storage = await mkdtemp(join(tmpdir(), 'filestorage-accel-'))
    await chmod(storage, 0o755) // nginx's workers may run as another user (nobody, under root)
    // One after the other: two processes opening a new store at once race on its store.json.
    accel = await spawnService({ STORAGE_DIR: storage, ACCEL_REDIRECT_LOCATION: LOCATION })
    plain = await spawnService({ STORAGE_DIR: storage })
    ;[viaAccel, viaPlain, blind] = await Promise.all([
      startNginx(nginxBin!, upstream(accel), { storageDir: storage }),
      startNginx(nginxBin!, upstream(plain), { storageDir: storage }),
      startNginx(nginxBin!, upstream(accel)),
    ])
    const put = (path: string, body: Uint8Array | string, type?: string) =>
      fetch(`${plain.api}/disk/upload/${path}`, { method: 'PUT', body, ...(type ? { headers: { 'Content-Type': type } } : {}) })
    const stored = await put('docs/report.bin', binary)
    expect(stored.status).toBe(201)
    etag = stored.headers.get('etag')!
    expect((await put('docs/page.html', '<h1>hi</h1>', 'text/html; charset=utf-8')).status).toBe(201)
    expect((await put('docs/empty.txt', '')).status).toBe(201)
  }, 60_000)

  afterAll(async () => {
    await Promise.all([viaAccel?.dispose(), viaPlain?.dispose(), blind?.dispose()])
    await Promise.all([accel?.stop('SIGKILL'), plain?.stop('SIGKILL')])
    await rm(storage, { recursive: true, force: true })
  })

  it('redirects nginx to a link of its own to the version it described, with no body of its own', async () => {
    const direct = await ask(accel.origin, '/disk/download/docs/report.bin')
    expect(direct.status).toBe(200)
    expect(direct.headers['x-accel-redirect']).toMatch(/^\/_filestorage\/disk\/\.filestorage\/tmp\/[\w-]+\/[\w-]+$/)
    expect(direct.headers.etag).toBe(etag)
    expect(direct.body.length).toBe(0)
    // A HEAD opens nothing, and is answered by the service alone.
    expect((await ask(accel.origin, '/disk/download/docs/report.bin', { method: 'HEAD' })).headers['x-accel-redirect']).toBeUndefined()
  })

  const cases: [string, string, RequestInit][] = [
    ['a plain GET', '/disk/download/docs/report.bin', {}],
    ['an active type, as an attachment', '/disk/download/docs/page.html', {}],
    ['inline on request', '/disk/download/docs/page.html?disposition=inline', {}],
    ['a save-as name', '/disk/download/docs/report.bin?disposition=attachment', {}],
    ['an empty file', '/disk/download/docs/empty.txt', {}],
    ['an empty file with a Range', '/disk/download/docs/empty.txt', { headers: { Range: 'bytes=0-9' } }],
    ['a range', '/disk/download/docs/report.bin', { headers: { Range: 'bytes=100-1099' } }],
    ['an open range', '/disk/download/docs/report.bin', { headers: { Range: 'bytes=299000-' } }],
    ['a suffix range', '/disk/download/docs/report.bin', { headers: { Range: 'bytes=-500' } }],
    ['a suffix longer than the file', '/disk/download/docs/report.bin', { headers: { Range: 'bytes=-500000' } }],
    ['a range past the end', '/disk/download/docs/report.bin', { headers: { Range: 'bytes=299990-400000' } }],
    ['several ranges (the whole file)', '/disk/download/docs/report.bin', { headers: { Range: 'bytes=0-9,100-109' } }],
    ['overlapping ranges (merged)', '/disk/download/docs/report.bin', { headers: { Range: 'bytes=0-99,50-149' } }],
    ['a malformed range', '/disk/download/docs/report.bin', { headers: { Range: 'bytes=x-' } }],
    ['an unsatisfiable range', '/disk/download/docs/report.bin', { headers: { Range: 'bytes=300000-' } }],
    ['a current If-Range', '/disk/download/docs/report.bin', { headers: { Range: 'bytes=0-9', 'If-Range': 'ETAG' } }],
    ['a stale If-Range', '/disk/download/docs/report.bin', { headers: { Range: 'bytes=0-9', 'If-Range': '"stale"' } }],
    ['If-None-Match, current', '/disk/download/docs/report.bin', { headers: { 'If-None-Match': 'ETAG' } }],
    ['If-None-Match, another', '/disk/download/docs/report.bin', { headers: { 'If-None-Match': '"other"' } }],
    ['If-Modified-Since, later', '/disk/download/docs/report.bin', { headers: { 'If-Modified-Since': 'Fri, 01 Jan 2100 00:00:00 GMT' } }],
    ['If-Modified-Since, earlier', '/disk/download/docs/report.bin', { headers: { 'If-Modified-Since': 'Thu, 01 Jan 2015 00:00:00 GMT' } }],
    ['If-Match, another (ignored on a GET)', '/disk/download/docs/report.bin', { headers: { 'If-Match': '"other"' } }],
    ['If-Unmodified-Since, earlier (ignored on a GET)', '/disk/download/docs/report.bin', { headers: { 'If-Unmodified-Since': 'Thu, 01 Jan 2015 00:00:00 GMT' } }],
    ['a HEAD', '/disk/download/docs/report.bin', { method: 'HEAD' }],
    ['a HEAD with a range', '/disk/download/docs/report.bin', { method: 'HEAD', headers: { Range: 'bytes=0-9' } }],
    ['a missing file', '/disk/download/docs/missing.bin', {}],
    ['a folder', '/disk/download/docs', {}],
  ]

  it.each(cases)('answers %s exactly as without the mode', async (name, path, init) => {
    // One request id for the three: every answer says it back, through nginx too.
    const headers = Object.fromEntries(Object.entries(init.headers ?? {}).map(([k, v]) => [k, v === 'ETAG' ? etag : v]))
    const withEtag = { ...init, headers: { ...headers, 'X-Request-Id': `accel-${cases.findIndex(([n]) => n === name)}` } }
    const [withMode, without] = await Promise.all([ask(viaAccel.origin, path, withEtag), ask(viaPlain.origin, path, withEtag)])
    expect(withMode.status).toBe(without.status)
    expect(without.headers['x-request-id']).toBe(withEtag.headers['X-Request-Id'])
    expect(withMode.headers).toEqual(without.headers)
    expect(withMode.body.equals(without.body)).toBe(true)
    // And through an nginx that cannot open the store's files: the service sends them after all.
    const fallback = await ask(blind.origin, path, withEtag)
    expect(fallback.status).toBe(without.status)
    expect(fallback.headers).toEqual(without.headers)
    expect(fallback.body.equals(without.body)).toBe(true)
  })

  it('always sends one whole version, with its own ETag, while the file is replaced again and again', async () => {
    const versions = Array.from({ length: 8 }, (_, i) => Buffer.alloc(256 * 1024 + i * 4096, i + 1))
    const digests = new Set(versions.map((v) => createHash('sha256').update(v).digest('hex')))
    expect((await fetch(`${accel.api}/disk/upload/race/file.bin`, { method: 'PUT', body: versions[0] })).status).toBe(201)
    let writing = true
    const writer = (async () => {
      for (let i = 1; writing && i < 2000; i++) {
        const put = await fetch(`${plain.api}/disk/upload/race/file.bin`, { method: 'PUT', body: versions[i % versions.length] })
        expect(put.status).toBe(200)
      }
    })()
    const seen = new Set<string>()
    try {
      for (let i = 0; i < 150; i++) {
        const [whole, part, fallback] = await Promise.all([
          ask(viaAccel.origin, '/disk/download/race/file.bin'),
          ask(viaAccel.origin, '/disk/download/race/file.bin', { headers: { Range: 'bytes=1000-' } }),
          ask(blind.origin, '/disk/download/race/file.bin', { headers: { Range: 'bytes=10-' } }),
        ])
        expect(fallback.status).toBe(206)
        expect(versions.find((v) => `"${createHash('sha256').update(v).digest('hex')}"` === fallback.headers.etag)!.subarray(10).equals(fallback.body)).toBe(true)
        expect(whole.status).toBe(200)
        const sha = createHash('sha256').update(whole.body).digest('hex')
        expect(digests.has(sha)).toBe(true)
        expect(whole.headers['x-content-sha256']).toBe(sha)
        expect(whole.headers.etag).toBe(`"${sha}"`)
        expect(Number(whole.headers['content-length'])).toBe(whole.body.length)
        seen.add(sha)
        expect(part.status).toBe(206)
        const version = versions.find((v) => `"${createHash('sha256').update(v).digest('hex')}"` === part.headers.etag)!
        expect(part.headers['content-range']).toBe(`bytes 1000-${version.length - 1}/${version.length}`)
        expect(part.body.equals(version.subarray(1000))).toBe(true)
      }
    } finally {
      writing = false
      await writer
    }
    expect(seen.size).toBeGreaterThan(1)
  }, 120_000)
})
