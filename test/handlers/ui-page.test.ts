/**
 * The ui handler over real HTTP: mounted alone under another prefix, its page names only assets
 * beside it, which it serves with their types, validators and the page's Content-Security-Policy;
 * with access control on, the page and its assets stay public. (The page at work: test/e2e/ui.test.ts.)
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RunningServer, serve } from '../../src/adapters/node/server.js'
import { createUiHandler, UI_CSP } from '../../src/handlers/index.js'
import { hmacKey, keysEnv } from '../helpers/auth.js'
import { expectError } from '../helpers/http.js'
import { startTestService, type TestService } from '../helpers/test-service.js'

describe('the ui handler mounted alone', () => {
  let server: RunningServer
  let assets: string
  beforeAll(async () => {
    assets = await mkdtemp(join(tmpdir(), 'filestorage-ui-assets-'))
    await writeFile(join(assets, 'filestorage-ui.js'), 'console.log("page")')
    await writeFile(join(assets, 'filestorage-ui.css'), 'body{}')
    const host = new Hono()
    host.route('/admin/files', createUiHandler({ assetsDir: assets }))
    server = await serve(host.fetch, { host: '127.0.0.1', port: 0 })
  })
  afterAll(async () => {
    await server?.stop(1000)
    await rm(assets, { recursive: true, force: true })
  })

  it('serves the page with a strict Content-Security-Policy, naming its assets relative to itself', async () => {
    const res = await fetch(`${server.url}/admin/files/ui`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/html; charset=UTF-8')
    expect(res.headers.get('content-security-policy')).toBe(UI_CSP)
    expect(UI_CSP).toContain("default-src 'none'")
    expect(UI_CSP).toContain("script-src 'self'")
    expect(UI_CSP).not.toContain('unsafe')
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
    expect(res.headers.get('referrer-policy')).toBe('no-referrer')
    const page = await res.text()
    const urls = [...page.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => new URL(m[1]!, `${server.url}/admin/files/ui`).href)
    expect(urls).toEqual([`${server.url}/admin/files/ui/filestorage-ui.css`, `${server.url}/admin/files/ui/filestorage-ui.js`, `${server.url}/admin/files/docs`])
    expect(page).not.toMatch(/<script>|<style>|\sstyle="|\son[a-z]+="/) // nothing inline: the CSP would refuse it
  })

  it('serves its assets with their types and an ETag that answers 304', async () => {
    for (const [file, type, body] of [
      ['filestorage-ui.js', 'text/javascript; charset=utf-8', 'console.log("page")'],
      ['filestorage-ui.css', 'text/css; charset=utf-8', 'body{}'],
    ] as const) {
      const res = await fetch(`${server.url}/admin/files/ui/${file}`)
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toBe(type)
      expect(res.headers.get('cache-control')).toBe('no-cache')
      expect(await res.text()).toBe(body)
      const etag = res.headers.get('etag')!
      expect(etag).toMatch(/^"[\w-]{27}"$/)
      const again = await fetch(`${server.url}/admin/files/ui/${file}`, { headers: { 'If-None-Match': etag } })
      expect(again.status).toBe(304)
      expect(await again.text()).toBe('')
    }
  })

  it('answers JSON errors: an asset not built, anything else', async () => {
    const missing = await fetch(`${server.url}/admin/files/ui/filestorage-ui.js.LEGAL.txt`)
    await expectError(missing, 404, 'not_found')
    expect((await fetch(`${server.url}/admin/files/ui/other.js`)).status).toBe(404)
  })
})

describe('the ui in the service, with access control on', () => {
  let svc: TestService
  beforeAll(async () => {
    svc = await startTestService({ AUTH_HMAC_SECRETS: keysEnv(hmacKey('ui')) })
  })
  afterAll(async () => svc?.stop())

  it('is public, as the docs are; the API behind it is not', async () => {
    expect((await fetch(`${svc.api}/ui`)).status).toBe(200)
    const script = await fetch(`${svc.api}/ui/filestorage-ui.js`) // built by the test run's global setup
    expect(script.status).toBe(200)
    expect(Number(script.headers.get('content-length'))).toBeGreaterThan(10_000)
    await expectError(await fetch(`${svc.api}/disk/list/`), 401, 'unauthorized')
    const wrongMethod = await fetch(`${svc.api}/ui`, { method: 'POST' })
    expect(wrongMethod.status).toBe(405)
    expect(wrongMethod.headers.get('allow')).toBe('GET, HEAD')
  })
})
