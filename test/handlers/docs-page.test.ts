/**
 * The docs page over real HTTP: it loads Swagger UI from the service itself, never from another
 * origin, so it works without internet access; and it does so wherever the docs handler is mounted.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Hono } from 'hono'
import { Parser } from 'htmlparser2'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RunningServer, serve } from '../../src/adapters/node/server.js'
import { createDocsHandler, createFileStorageApp } from '../../src/handlers/index.js'
import { DiskDriver, StoreRegistry } from '../../src/storage/index.js'
import { expectError, rawRequest } from '../helpers/http.js'
import { startTestService, type TestService } from '../helpers/test-service.js'

/** Attributes that make a browser fetch something (or navigate: `a href`). */
const URL_ATTRIBUTES = new Set(['src', 'href', 'srcset', 'action', 'formaction', 'poster', 'data', 'manifest'])

interface Page {
  /** Every URL the HTML names in an attribute, resolved against the page. */
  urls: URL[]
  /** The text of the inline scripts. */
  scripts: string[]
}

async function loadPage(pageUrl: string): Promise<Page> {
  const res = await fetch(pageUrl)
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toBe('text/html; charset=UTF-8')
  expect(res.headers.get('cache-control')).toBe('no-cache')
  const urls: URL[] = []
  const scripts: string[] = []
  let inScript = false
  const parser = new Parser({
    onopentag(name, attributes) {
      inScript = name === 'script' && attributes.src === undefined
      if (inScript) scripts.push('')
      for (const [attribute, value] of Object.entries(attributes)) {
        if (!URL_ATTRIBUTES.has(attribute)) continue
        const refs = attribute === 'srcset' ? value.split(',').map((c) => c.trim().split(/\s+/)[0]!) : [value]
        for (const ref of refs) urls.push(new URL(ref, pageUrl))
      }
    },
    ontext(text) {
      if (inScript) scripts[scripts.length - 1] += text
    },
    onclosetag() {
      inScript = false
    },
  })
  parser.end(await res.text())
  return { urls, scripts }
}

const EXPECTED_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
}

/** Fetches every URL the page names; each must be same-origin, 200, of its type, and cacheable for good. */
async function expectAssetsServed(pageUrl: string, page: Page): Promise<void> {
  const origin = new URL(pageUrl).origin
  expect(page.urls.length).toBeGreaterThanOrEqual(3) // the stylesheet, the script, the icon
  for (const url of page.urls) {
    expect(url.origin, url.href).toBe(origin)
    const res = await fetch(url)
    const body = new Uint8Array(await res.arrayBuffer())
    expect(res.status, url.href).toBe(200)
    const extension = url.pathname.slice(url.pathname.lastIndexOf('.'))
    expect(res.headers.get('content-type'), url.href).toBe(EXPECTED_TYPES[extension])
    expect(res.headers.get('cache-control'), url.href).toBe('public, max-age=31536000, immutable')
    expect(res.headers.get('x-content-type-options'), url.href).toBe('nosniff')
    expect(body.byteLength, url.href).toBe(Number(res.headers.get('content-length')))
    expect(body.byteLength, url.href).toBeGreaterThan(0)
  }
  // The inline script starts Swagger UI on the document beside the page, with no validator badge.
  expect(page.scripts.join('\n')).toContain("url: 'openapi.json'")
  expect(page.scripts.join('\n')).toContain("validatorUrl: 'none'")
  const document = await fetch(new URL('openapi.json', pageUrl))
  expect(document.status).toBe(200)
  expect(((await document.json()) as { openapi: string }).openapi).toBe('3.1.0')
}

describe('the docs page of the service', () => {
  let service: TestService
  beforeAll(async () => {
    service = await startTestService()
  })
  afterAll(async () => service?.stop())

  it('names only same-origin URLs, and every one answers 200 with its content type', async () => {
    const pageUrl = `${service.api}/docs`
    await expectAssetsServed(pageUrl, await loadPage(pageUrl))
  })

  it('answers HEAD for an asset with its headers and no body', async () => {
    const { urls } = await loadPage(`${service.api}/docs`)
    const script = urls.find((u) => u.pathname.endsWith('/swagger-ui-bundle.js'))!
    const res = await fetch(script, { method: 'HEAD' })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    expect(Number(res.headers.get('content-length'))).toBeGreaterThan(100_000)
    expect(await res.text()).toBe('')
  })

  it('serves only the files the page needs, never others of the package or beyond it', async () => {
    const { urls } = await loadPage(`${service.api}/docs`)
    const folder = urls[0]!.pathname.slice(0, urls[0]!.pathname.lastIndexOf('/'))
    expect(folder).toMatch(/^\/filestorage\/v1\/docs\/swagger-ui-dist@\d+\.\d+\.\d+$/)
    for (const name of ['index.html', 'package.json', 'swagger-initializer.js', 'swagger-ui.css%00', 'swagger-ui.css/']) {
      await expectError(await fetch(`${service.origin}${folder}/${name}`), 404, 'not_found')
    }
    // A dot segment sent as it is (fetch would resolve it) never reaches the files.
    await expectError(await rawRequest(service.origin, 'GET', `${folder}/%2e%2e/package.json`), 400, 'invalid_path')
    // Another version of the package is not served under this one's name.
    await expectError(await fetch(`${service.api}/docs/swagger-ui-dist@0.0.1/swagger-ui.css`), 404, 'not_found')
    // The source map the stylesheet names is there for developer tools.
    const map = await fetch(`${service.origin}${folder}/swagger-ui.css.map`)
    expect(map.status).toBe(200)
    expect(((await map.json()) as { version: number }).version).toBe(3)
    // Assets are read-only: another method answers 405 with what is allowed.
    const put = await fetch(`${service.origin}${folder}/swagger-ui.css`, { method: 'PUT', body: 'x' })
    await expectError(put, 405, 'method_not_allowed')
    expect(put.headers.get('allow')).toBe('GET, HEAD')
  })
})

describe('the docs handler mounted alone under another prefix', () => {
  let server: RunningServer
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'filestorage-docs-'))
    // The composed API gives the document something to describe; the host mounts the docs handler alone.
    const api = createFileStorageApp({ stores: new StoreRegistry({ disk: await DiskDriver.open({ dir }) }) })
    const host = new Hono()
    host.route('/internal/api-docs', createDocsHandler({ app: api, basePath: '/filestorage/v1' }))
    server = await serve(host.fetch, { host: '127.0.0.1', port: 0 })
  })
  afterAll(async () => {
    await server?.stop(1000)
    await rm(dir, { recursive: true, force: true })
  })

  it('serves the page and its assets under that prefix', async () => {
    const pageUrl = `${server.url}/internal/api-docs/docs`
    const page = await loadPage(pageUrl)
    for (const url of page.urls) expect(url.pathname).toMatch(/^\/internal\/api-docs\/docs\//)
    await expectAssetsServed(pageUrl, page)
  })
})
