/** CORS_ORIGINS: browsers on the allowed origins may call the API and read its headers. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/adapters/service/config.js'
import { startTestService, type TestService } from '../helpers/test-service.js'

describe('CORS for browser clients', () => {
  let svc: TestService
  beforeAll(async () => {
    svc = await startTestService({ CORS_ORIGINS: 'https://app.example.com, http://localhost:5173' })
  })
  afterAll(async () => svc?.stop())

  it('answers a preflight for an allowed origin with the methods and headers an upload needs', async () => {
    const res = await fetch(`${svc.api}/disk/upload/a.txt`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example.com',
        'access-control-request-method': 'PUT',
        'access-control-request-headers': 'content-type, x-file-metadata, if-none-match',
      },
    })
    expect(res.status).toBe(204)
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example.com')
    expect(res.headers.get('access-control-allow-methods')).toContain('PUT')
    expect(res.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('x-file-metadata')
  })

  it('lets the browser read the headers of a download and a tus creation', async () => {
    await fetch(`${svc.api}/disk/upload/b.txt`, { method: 'PUT', body: Buffer.from('b') })
    const res = await fetch(`${svc.api}/disk/download/b.txt`, { headers: { origin: 'http://localhost:5173' } })
    expect(res.headers.get('access-control-allow-origin')).toBe('http://localhost:5173')
    const exposed = res.headers.get('access-control-expose-headers')?.toLowerCase() ?? ''
    for (const h of ['etag', 'content-range', 'location', 'upload-offset', 'tus-resumable']) expect(exposed).toContain(h)
  })

  it('sends no CORS headers to other origins', async () => {
    const res = await fetch(`${svc.api}/check`, { headers: { origin: 'https://evil.example' } })
    expect(res.headers.get('access-control-allow-origin')).toBeNull()
  })

  it("leaves a tus client's own OPTIONS to the tus handler", async () => {
    const res = await fetch(`${svc.api}/disk/tus/`, { method: 'OPTIONS', headers: { origin: 'https://app.example.com' } })
    expect(res.headers.get('tus-version')).toBe('1.0.0')
  })

  it('is off by default and refuses origins that are not URLs', () => {
    expect(loadConfig({}).CORS_ORIGINS).toEqual([])
    expect(() => loadConfig({ CORS_ORIGINS: 'not a url' })).toThrow(/CORS_ORIGINS=/)
  })
})
