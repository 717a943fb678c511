/**
 * Served content is inert (SPEC 6): a content type that is not an RFC 9110 media type is refused
 * wherever it enters (PUT, form part, tus filetype, createupload) and never stored; one stored before
 * is served as application/octet-stream, never a 500; downloads carry a sandboxing CSP, and active
 * types go as attachments unless the caller asks for inline.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { expectError, rawRequest } from '../helpers/http.js'
import { snapshot } from '../helpers/auth.js'
import { startTestService, type TestService } from '../helpers/test-service.js'
import { createTusUpload, uploadMetadata } from '../helpers/tus.js'

let svc: TestService
const url = (verb: string, path: string) => `${svc.api}/disk/${verb}/${path}`
const CSP = "default-src 'none'; sandbox"

beforeAll(async () => {
  svc = await startTestService()
})
afterAll(async () => svc?.stop())

describe('content types are checked where they enter', () => {
  const BAD = ['not a media type', 'text/', '/html', 'text/html; charset', 'text/html;;x=', 'text/plain; a="unterminated', `x/${'y'.repeat(300)}`]

  it('refuses a tus filetype with CR/LF at creation, and creates nothing', async () => {
    const before = await snapshot(svc.storageDir)
    for (const filetype of ['text/plain\r\nSet-Cookie: stolen=1', 'text/html\n', 'image/png\u0000', ...BAD]) {
      for (const key of ['filetype', 'type']) {
        const { res } = await createTusUpload(`${svc.api}/disk/tus/`, { 'Upload-Length': '3', 'Upload-Metadata': uploadMetadata({ path: 'tus/x.txt', [key]: filetype }) })
        const body = await expectError(res, 400, 'invalid_request')
        expect(body.error.message).toContain('filetype')
      }
    }
    expect(await snapshot(svc.storageDir)).toEqual(before)
  })

  it('refuses a bad Content-Type on PUT, on a form part and in createupload; stores nothing', async () => {
    const before = await snapshot(svc.storageDir)
    const boundary = 'b0undary'
    const formPart = (type: string) =>
      rawRequest(svc.origin, 'POST', '/filestorage/v1/disk/upload/form', {
        headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` },
        body: `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.txt"\r\nContent-Type: ${type}\r\n\r\nx\r\n--${boundary}--\r\n`,
      })
    for (const type of BAD) {
      await expectError(await rawRequest(svc.origin, 'PUT', '/filestorage/v1/disk/upload/put/x.txt', { headers: { 'Content-Type': type }, body: 'x' }), 400, 'invalid_request')
    }
    // busboy hands over a part's type as type/subtype: one that parses but is no media type is refused...
    await expectError(await formPart(`x/${'y'.repeat(300)}`), 400, 'invalid_request')
    for (const contentType of ['text/html\r\nX-Injected: 1', 'ünïcode/type', ...BAD]) {
      await expectError(
        await fetch(url('createupload', 'parts/x.bin'), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ contentType }) }),
        400,
        'invalid_request',
      )
    }
    expect(await snapshot(svc.storageDir)).toEqual(before)
    // ...and one it cannot parse comes through as its default, text/plain.
    const parsed = await formPart('text/html; charset')
    expect(parsed.status).toBe(201)
    expect(parsed.json<{ contentType: string }[]>()[0]!.contentType).toBe('text/plain')
  })

  it('takes every valid form: parameters, quoted strings, Latin-1 in quotes', async () => {
    for (const type of ['text/plain', 'Text/Plain; Charset="UTF-8"', 'application/vnd.api+json;profile="a b"', 'text/plain; name="caf\u00e9"', 'multipart/x-mixed; boundary=abc']) {
      const res = await rawRequest(svc.origin, 'PUT', '/filestorage/v1/disk/upload/valid/x.txt', {
        headers: { 'Content-Type': Buffer.from(type, 'latin1').toString('latin1') },
        body: 'x',
      })
      expect(res.status, type).toBeLessThan(300)
      expect(res.json<{ contentType: string }>().contentType).toBe(type)
    }
  })
})

describe('downloads are inert', () => {
  it('serves a type stored before the rule as application/octet-stream, never a 500', async () => {
    const disk = svc.service.stores.get('disk')
    await disk.put('legacy/evil.txt', new Blob(['legacy']).stream(), { contentType: 'text/plain\r\nSet-Cookie: stolen=1' })
    for (const method of ['GET', 'HEAD']) {
      const res = await fetch(url('download', 'legacy/evil.txt'), { method })
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toBe('application/octet-stream')
      expect(res.headers.get('set-cookie')).toBeNull()
    }
    expect(await (await fetch(url('download', 'legacy/evil.txt'))).text()).toBe('legacy')
    const ranged = await fetch(url('download', 'legacy/evil.txt'), { headers: { Range: 'bytes=0-1' } })
    expect([ranged.status, ranged.headers.get('content-type')]).toEqual([206, 'application/octet-stream'])
  })

  it('sends HTML, SVG, XML and JavaScript as attachments with the sandbox CSP; inline only when asked', async () => {
    for (const [name, type] of [
      ['page.html', 'text/html; charset=utf-8'],
      ['PAGE.HTM', 'Text/HTML'],
      ['image.svg', 'image/svg+xml'],
      ['feed.xml', 'application/atom+xml'],
      ['data.xml', 'text/xml'],
      ['app.js', 'text/javascript'],
      ['page.xhtml', 'application/xhtml+xml'],
    ]) {
      await fetch(url('upload', `active/${name}`), { method: 'PUT', headers: { 'Content-Type': type! }, body: '<script>alert(document.cookie)</script>' })
      const res = await fetch(url('download', `active/${name}`))
      expect(res.headers.get('content-disposition'), type).toMatch(new RegExp(`^attachment; filename="?${name!.replace('.', '\\.')}"?$`))
      expect(res.headers.get('content-security-policy')).toBe(CSP)
      expect(res.headers.get('x-content-type-options')).toBe('nosniff')
      const inline = await fetch(`${url('download', `active/${name}`)}?disposition=inline`)
      expect(inline.headers.get('content-disposition')).toMatch(/^inline/)
      expect(inline.headers.get('content-security-policy')).toBe(CSP)
    }
  })

  it('leaves inert types inline, still with the CSP', async () => {
    await fetch(url('upload', 'inert/photo.png'), { method: 'PUT', headers: { 'Content-Type': 'image/png' }, body: 'png' })
    const res = await fetch(url('download', 'inert/photo.png'))
    expect(res.headers.get('content-disposition')).toBeNull()
    expect(res.headers.get('content-security-policy')).toBe(CSP)
  })
})
