/**
 * The file browser page (/filestorage/v1/ui) and the docs page in headless Chromium, against the
 * service on loopback with access control on (HMAC tokens, as `npm run token` mints them). The
 * browser may reach the service and nothing else (helpers/browser.ts): every test also checks that
 * nothing was asked of another origin.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, CDPSession, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { SecretKey } from '../../src/auth/index.js'
import { bearer, hmacKey, hmacToken, keysEnv } from '../helpers/auth.js'
import { chromiumPath, type IsolatedContext, isolatedContext, launchChromium } from '../helpers/browser.js'
import { startTestService, type TestService } from '../helpers/test-service.js'

const MiB = 1024 * 1024

/** Run in the page: records every value each upload progress bar takes, in order, in `window.progressSeen`. */
const RECORD_PROGRESS = `
  window.progressSeen = []
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.target.tagName === 'PROGRESS') window.progressSeen.push({ path: r.target.parentElement.dataset.path, value: r.target.value, max: r.target.max })
    }
  }).observe(document.getElementById('uploads'), { subtree: true, attributes: true, attributeFilter: ['value', 'max'] })
`
const executablePath = chromiumPath()

describe.runIf(executablePath)('the file browser page, in Chromium', () => {
  let svc: TestService
  let browser: Browser
  let dir: string
  let key: SecretKey
  let writer: string
  let isolated: IsolatedContext | undefined
  /** What the browser refused under the page's Content-Security-Policy (it must refuse nothing the page does). */
  let refused: string[] = []

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'filestorage-ui-'))
    key = hmacKey('ui-test')
    svc = await startTestService({ AUTH_HMAC_SECRETS: keysEnv(key) })
    writer = await hmacToken(key, 'ui-writer', ['files:*:disk'])
    browser = await launchChromium(executablePath!)
  })
  afterEach(async () => {
    await isolated?.context.close()
    isolated = undefined
    const seen = refused
    refused = []
    expect(seen).toEqual([])
  })
  afterAll(async () => {
    await browser?.close()
    await svc?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  const info = (path: string, token = writer) => fetch(`${svc.api}/disk/info/${path}`, { headers: bearer(token) })

  /** The page, open on `folder`, with `token` set through its token field. */
  async function openPage(token: string | undefined, folder = ''): Promise<Page> {
    isolated = await isolatedContext(browser, svc.origin)
    const page = await isolated.context.newPage()
    const errors: string[] = []
    page.on('pageerror', (e) => errors.push(e.message))
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) refused.push(m.text())
    })
    await page.goto(`${svc.api}/ui#disk/${folder}`)
    if (token !== undefined) {
      await page.fill('#token', token)
      await page.click('#token-form button[type=submit]')
      await expect.poll(() => page.textContent('#token-state')).toBe('a token is set for this tab')
    }
    await listed(page)
    // The page must not have thrown (a CSP refusal of its own script would show here or as no rows).
    expect(errors).toEqual([])
    return page
  }

  /** Waits until the page shows its newest listing (the table is aria-busy while one is on its way). */
  const listed = (page: Page) => page.locator('#files[aria-busy=false]').waitFor()

  const row = (page: Page, path: string) => page.locator(`#file-rows tr[data-path="${path}"]`)

  /** Answers the page's dialog: fills its field when it has one, then presses the button named `button`. */
  async function answer(page: Page, button: string, value?: string): Promise<void> {
    const dialog = page.locator('dialog#ask[open]')
    await dialog.waitFor()
    if (value !== undefined) await dialog.locator('input').fill(value)
    await dialog.getByRole('button', { name: button }).click()
    await dialog.waitFor({ state: 'detached' }).catch(() => page.locator('dialog#ask[open]').waitFor({ state: 'hidden' }))
  }

  /** Slows uploads down in the browser (DevTools network emulation) so that progress is seen part-way. */
  async function throttleUploads(page: Page, bytesPerSecond: number): Promise<CDPSession> {
    const cdp = await page.context().newCDPSession(page)
    await cdp.send('Network.enable')
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: bytesPerSecond })
    return cdp
  }

  it('uploads two files by the picker into a new folder with progress, lists, sorts, renames, downloads and deletes', async () => {
    const page = await openPage(writer)
    // A folder is made by opening it and uploading into it.
    await page.click('#new-folder')
    await answer(page, 'Open', 'reports 2025')
    await expect.poll(() => page.textContent('#crumbs')).toBe('disk / reports 2025')
    await expect.poll(() => page.textContent('#status')).toContain('upload files into it to create it')

    const big = join(dir, 'summary #1.bin') // a name with a space and a '#': paths are encoded per segment
    const small = join(dir, 'notes.txt')
    const bigBytes = randomBytes(3 * MiB)
    const smallBytes = Buffer.from('first line\nsecond line\n'.repeat(60_000)) // 1.3 MiB
    await writeFile(big, bigBytes)
    await writeFile(small, smallBytes)

    // Every value each progress bar takes, in order.
    await page.evaluate(RECORD_PROGRESS)
    // Loopback is too fast to see progress: 2 MiB/s makes these uploads take about two seconds.
    const cdp = await throttleUploads(page, 2 * MiB)
    await page.setInputFiles('#picker', [big, small])

    const bigPath = 'reports 2025/summary #1.bin'
    const smallPath = 'reports 2025/notes.txt'
    await row(page, bigPath).waitFor({ timeout: 30_000 })
    await row(page, smallPath).waitFor({ timeout: 30_000 })
    await cdp.detach()
    for (const path of [bigPath, smallPath]) {
      const upload = page.locator(`#uploads li[data-path="${path}"]`)
      await expect.poll(() => upload.getAttribute('data-state')).toBe('done')
      expect(await upload.locator('.upload-state').textContent()).toBe('done')
    }
    const seen = (await page.evaluate('window.progressSeen')) as { path: string; value: number; max: number }[]
    for (const path of [bigPath, smallPath]) {
      const values = seen.filter((s) => s.path === path)
      // Shown part-way, never going back, ending full.
      expect(values.some((v) => v.value > 0 && v.value < v.max), `${path}: ${JSON.stringify(values)}`).toBe(true)
      expect(values.map((v) => v.value)).toEqual([...values.map((v) => v.value)].sort((a, b) => a - b))
      expect(values.at(-1)).toMatchObject({ value: values.at(-1)!.max })
    }
    // In parallel: at some point both bars stood part-way at once.
    const latest = new Map<string, { value: number; max: number }>()
    const both = seen.some((s) => {
      latest.set(s.path, s)
      return [bigPath, smallPath].every((p) => {
        const v = latest.get(p)
        return v !== undefined && v.value > 0 && v.value < v.max
      })
    })
    expect(both, 'the two uploads ran at the same time').toBe(true)

    // What the service stored is what was picked, byte for byte.
    for (const [path, bytes] of [[bigPath, bigBytes], [smallPath, smallBytes]] as const) {
      const res = await info(encodeURI(path).replaceAll('#', '%23'))
      expect(res.status).toBe(200)
      expect(await res.json()).toMatchObject({ size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') })
    }
    expect(await row(page, bigPath).locator('td.size').textContent()).toBe('3.0 MiB')

    // Sorted by size: descending on the second click; folders stay first whatever the order.
    await page.click('th button[data-sort=size]')
    await page.click('th button[data-sort=size]')
    expect(await page.locator('#file-rows tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-path')))).toEqual([bigPath, smallPath])
    await page.click('th button[data-sort=name]')
    expect(await page.locator('#file-rows tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-path')))).toEqual([smallPath, bigPath])

    // Rename.
    await row(page, smallPath).locator('button.rename').click()
    await answer(page, 'Move', 'reports 2025/notes-renamed.txt')
    await row(page, 'reports 2025/notes-renamed.txt').waitFor()
    await expect.poll(() => row(page, smallPath).count()).toBe(0)
    expect((await info('reports%202025/notes.txt')).status).toBe(404)
    expect((await info('reports%202025/notes-renamed.txt')).status).toBe(200)

    // Download (a signed URL the browser fetches itself): the same bytes, under the file's name.
    const [download] = await Promise.all([page.waitForEvent('download'), row(page, bigPath).locator('button.download').click()])
    expect(download.suggestedFilename()).toBe('summary #1.bin')
    expect((await readFile((await download.path())!)).equals(bigBytes)).toBe(true)

    // Delete, after confirming; cancelling first deletes nothing.
    await row(page, 'reports 2025/notes-renamed.txt').locator('button.delete').click()
    await answer(page, 'Cancel')
    expect((await info('reports%202025/notes-renamed.txt')).status).toBe(200)
    await row(page, 'reports 2025/notes-renamed.txt').locator('button.delete').click()
    await answer(page, 'Delete')
    await expect.poll(() => row(page, 'reports 2025/notes-renamed.txt').count()).toBe(0)
    expect((await info('reports%202025/notes-renamed.txt')).status).toBe(404)

    // Breadcrumbs lead back to the store's root, where the new folder is listed.
    await page.locator('#crumbs a', { hasText: 'disk' }).click()
    await row(page, 'reports 2025').waitFor()
    expect(await row(page, 'reports 2025').getAttribute('data-type')).toBe('directory')
    expect(isolated!.blocked).toEqual([])
  }, 120_000)

  it('uploads files dropped on the listing', async () => {
    const page = await openPage(writer, 'dropped')
    // A drop as the page receives it: a DataTransfer holding two files, dropped on the listing.
    await page.evaluate(`(() => {
      const transfer = new DataTransfer()
      transfer.items.add(new File(['dropped one'], 'one.txt', { type: 'text/plain' }))
      transfer.items.add(new File([new Uint8Array(300000).fill(7)], 'two.bin'))
      const target = document.getElementById('drop')
      target.dispatchEvent(new DragEvent('dragover', { dataTransfer: transfer, bubbles: true, cancelable: true }))
      target.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }))
    })()`)
    await row(page, 'dropped/one.txt').waitFor()
    await row(page, 'dropped/two.bin').waitFor()
    expect(await (await fetch(`${svc.api}/disk/download/dropped/one.txt`, { headers: bearer(writer) })).text()).toBe('dropped one')
    expect(await (await info('dropped/two.bin')).json()).toMatchObject({ size: 300_000, sha256: createHash('sha256').update(Buffer.alloc(300_000, 7)).digest('hex') })
    expect(isolated!.blocked).toEqual([])
  }, 60_000)

  it('uploads a folder dropped on the listing, keeping its tree', async () => {
    // A real folder on disk, dropped as the operating system drops one (DevTools' Input.dispatchDragEvent
    // with its path): the page gets a directory entry (webkitGetAsEntry) and walks it.
    const album = join(dir, 'album')
    const tree = new Map([
      ['cover.txt', 'the cover'],
      ['2024/spring.txt', 'spring'],
      ['2024/deep/down.bin', 'x'.repeat(200_000)],
    ])
    for (const [name, text] of tree) {
      await mkdir(join(album, name, '..'), { recursive: true })
      await writeFile(join(album, name), text)
    }
    const page = await openPage(writer, 'folders')
    const box = (await page.locator('#drop').boundingBox())!
    const at = { x: box.x + box.width / 2, y: box.y + box.height / 2 }
    const cdp = await page.context().newCDPSession(page)
    const data = { items: [], files: [album], dragOperationsMask: 1 } // 1: copy
    for (const type of ['dragEnter', 'dragOver', 'drop'] as const) await cdp.send('Input.dispatchDragEvent', { type, ...at, data })
    await cdp.detach()
    for (const [name, text] of tree) {
      const uploaded = page.locator(`#uploads li[data-path="folders/album/${name}"]`)
      await expect.poll(() => uploaded.getAttribute('data-state'), { timeout: 30_000 }).toBe('done')
      const res = await fetch(`${svc.api}/disk/download/folders/album/${name}`, { headers: bearer(writer) })
      expect(await res.text()).toBe(text)
    }
    await row(page, 'folders/album').waitFor()
    expect(await row(page, 'folders/album').getAttribute('data-type')).toBe('directory')
    expect(isolated!.blocked).toEqual([])
  }, 90_000)

  it('sorts by date, oldest first then newest first, folders first either way', async () => {
    // Stored one after the other, in an order that is neither the names' nor the sizes'.
    const inFolder = await fetch(`${svc.api}/disk/upload/dated/sub/inside.txt`, { method: 'PUT', headers: bearer(writer), body: 'in a folder' })
    expect(inFolder.status).toBe(201)
    const order = ['dated/b.txt', 'dated/c.txt', 'dated/a.txt']
    const sizes = [3, 1, 2]
    const modified: number[] = []
    for (const [i, path] of order.entries()) {
      const res = await fetch(`${svc.api}/disk/upload/${path}`, { method: 'PUT', headers: bearer(writer), body: 'x'.repeat(sizes[i]!) })
      expect(res.status).toBe(201)
      modified.push(Date.parse(((await (await info(path)).json()) as { modified: string }).modified))
      await new Promise((resolve) => setTimeout(resolve, 20)) // the next one's modification time is a later millisecond
    }
    expect(modified, 'distinct modification times, in the order stored').toEqual([...new Set(modified)].sort((a, b) => a - b))

    const page = await openPage(writer, 'dated')
    const shown = () => page.locator('#file-rows tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-path')))
    const dateHeader = page.locator('th:has(button[data-sort=modified])')
    // By name at first (polled: the listing may still be on its way once the token is set).
    await expect.poll(shown).toEqual(['dated/sub', 'dated/a.txt', 'dated/b.txt', 'dated/c.txt'])
    await page.click('th button[data-sort=modified]')
    await expect.poll(shown).toEqual(['dated/sub', ...order])
    expect(await dateHeader.getAttribute('aria-sort')).toBe('ascending')
    await page.click('th button[data-sort=modified]')
    await expect.poll(shown).toEqual(['dated/sub', ...[...order].reverse()])
    expect(await dateHeader.getAttribute('aria-sort')).toBe('descending')
    expect(isolated!.blocked).toEqual([])
  }, 60_000)

  it('a token given before the page knows its stores lists the folder once it does, never a store-less path', async () => {
    const stored = await fetch(`${svc.api}/disk/upload/early/here.txt`, { method: 'PUT', headers: bearer(writer), body: 'here' })
    expect(stored.status).toBe(201)
    isolated = await isolatedContext(browser, svc.origin)
    const page = await isolated.context.newPage()
    // The store names (GET /check) are held back until the token has been given.
    let releaseCheck!: () => void
    const checkHeld = new Promise<void>((resolve) => (releaseCheck = resolve))
    await page.route(`${svc.api}/check`, async (route) => {
      await checkHeld
      await route.fallback()
    })
    const asked: string[] = []
    page.on('request', (r) => asked.push(new URL(r.url()).pathname))
    await page.goto(`${svc.api}/ui#disk/early`)
    await page.fill('#token', writer)
    await page.click('#token-form button[type=submit]')
    await expect.poll(() => page.textContent('#token-state')).toBe('a token is set for this tab')
    releaseCheck()
    await row(page, 'early/here.txt').waitFor()
    await listed(page)
    // One listing, of the store in the URL: none without a store (which went to `/list/early`, outside the API).
    expect(asked.filter((p) => p.includes('/list/'))).toEqual(['/filestorage/v1/disk/list/early'])
    expect(await page.locator('#error').isHidden()).toBe(true)
    expect(isolated.blocked).toEqual([])
  }, 60_000)

  it('says so when GET check names no store (a proxy answering for the service), and asks for no listing', async () => {
    isolated = await isolatedContext(browser, svc.origin)
    const page = await isolated.context.newPage()
    await page.route(`${svc.api}/check`, (route) => route.fulfill({ status: 502, contentType: 'text/html', body: '<h1>Bad Gateway</h1>' }))
    const asked: string[] = []
    page.on('request', (r) => asked.push(new URL(r.url()).pathname))
    await page.goto(`${svc.api}/ui`)
    await page.locator('#error').waitFor()
    expect(await page.textContent('#error')).toContain('GET check answered 502 without the names of the stores')
    expect(asked.filter((p) => p.includes('/list'))).toEqual([])
    expect(isolated.blocked).toEqual([])
  }, 60_000)

  it('resumes an upload cut by a page reload: the same file picked again sends only the rest', async () => {
    const page = await openPage(writer, 'resume')
    const bytes = randomBytes(12 * MiB)
    const file = join(dir, 'large.bin')
    await writeFile(file, bytes)
    const cdp = await throttleUploads(page, 3 * MiB)
    await page.setInputFiles('#picker', [file])
    // Cut part-way: once some megabytes went, the page is reloaded (the request dies with it).
    await expect
      .poll(async () => Number(await page.locator('#uploads li[data-path="resume/large.bin"] progress').getAttribute('value')), { timeout: 20_000 })
      .toBeGreaterThan(2 * MiB)
    await cdp.detach()
    await page.reload()
    // tus-js-client kept the upload's URL in localStorage, under the file's fingerprint.
    const stored = (await page.evaluate(
      'Object.keys(localStorage).filter((k) => k.startsWith("tus::")).map((k) => JSON.parse(localStorage.getItem(k)).uploadUrl)',
    )) as string[]
    expect(stored).toHaveLength(1)
    const head = await fetch(stored[0]!, { method: 'HEAD', headers: { ...bearer(writer), 'Tus-Resumable': '1.0.0' } })
    expect(head.status).toBe(200)
    const had = Number(head.headers.get('upload-offset'))
    expect(had).toBeGreaterThan(0)
    expect(had).toBeLessThan(bytes.length)

    const creations: string[] = []
    const offsets: number[] = []
    page.on('request', (request) => {
      if (!request.url().includes('/disk/tus/')) return
      if (request.method() === 'POST') creations.push(request.url())
      if (request.method() === 'PATCH') offsets.push(Number(request.headers()['upload-offset']))
    })
    await expect.poll(() => page.textContent('#token-state')).toBe('a token is set for this tab') // the tab kept it
    await listed(page)
    await page.setInputFiles('#picker', [file])
    const upload = page.locator('#uploads li[data-path="resume/large.bin"]')
    await expect.poll(() => upload.getAttribute('data-state'), { timeout: 30_000 }).toBe('done')
    expect(creations).toEqual([]) // no new upload: the same one went on
    expect(offsets[0]).toBe(had) // from where the service stood, not from 0
    const res = await info('resume/large.bin')
    expect(await res.json()).toMatchObject({ size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') })
    // Finished: its fingerprint is gone, so the same file sent again is a new upload.
    expect(await page.evaluate('Object.keys(localStorage).filter((k) => k.startsWith("tus::")).length')).toBe(0)
    expect(isolated!.blocked).toEqual([])
  }, 90_000)

  it('explains a 403 when the token lacks the right, and a 401 for a token the service refuses', async () => {
    await fetch(`${svc.api}/disk/upload/guarded/keep.txt`, { method: 'PUT', headers: bearer(writer), body: 'keep me' })
    const reader = await hmacToken(key, 'ui-reader', ['files:read:disk'])
    const page = await openPage(reader, 'guarded')
    await row(page, 'guarded/keep.txt').waitFor()

    await row(page, 'guarded/keep.txt').locator('button.delete').click()
    await answer(page, 'Delete')
    const error = page.locator('#error')
    await error.waitFor()
    expect(await error.locator('.error-title').textContent()).toBe('delete disk:guarded/keep.txt: 403 forbidden')
    expect(await error.locator('.error-message').textContent()).toMatch(/\S/) // the API's own message
    expect(await error.locator('.error-hint').textContent()).toContain('does not grant this')
    expect((await info('guarded/keep.txt')).status).toBe(200)

    // An upload with a read-only token: refused before a byte is stored, explained the same way.
    const file = join(dir, 'refused.txt')
    await writeFile(file, 'not allowed')
    await page.setInputFiles('#picker', [file])
    const upload = page.locator('#uploads li[data-path="guarded/refused.txt"]')
    await expect.poll(() => upload.getAttribute('data-state')).toBe('failed')
    expect(await upload.locator('.upload-state').textContent()).toContain('403 forbidden')
    expect(await error.locator('.error-hint').textContent()).toContain('does not grant this')
    expect((await info('guarded/refused.txt')).status).toBe(404)

    // A token the service does not accept: 401, explained.
    await page.fill('#token', 'not-a-token')
    await page.click('#token-form button[type=submit]')
    await expect.poll(() => error.locator('.error-title').textContent()).toBe('list disk:guarded: 401 unauthorized')
    expect(await error.locator('.error-hint').textContent()).toContain('did not accept your token')
    expect(isolated!.blocked).toEqual([])
  }, 60_000)

  it('previews text in a sandboxed frame, images and PDF, from blob: URLs', async () => {
    // A 1x1 PNG.
    const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64')
    const pdf = [
      '%PDF-1.4',
      '1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj',
      '2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj',
      '3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj',
      'trailer<</Root 1 0 R>>',
      '%%EOF',
    ].join('\n')
    for (const [path, body, type] of [
      ['view/readme.md', '# Hello <script>alert(1)</script>', 'text/markdown'],
      ['view/dot.png', png, 'image/png'],
      ['view/one-page.pdf', pdf, 'application/pdf'],
    ] as const) {
      const res = await fetch(`${svc.api}/disk/upload/${path}`, { method: 'PUT', headers: { ...bearer(writer), 'Content-Type': type }, body })
      expect(res.status).toBe(201)
    }
    const page = await openPage(writer, 'view')
    await row(page, 'view/readme.md').locator('button.link').click()
    const frame = page.locator('#preview iframe')
    await frame.waitFor()
    expect(await frame.getAttribute('sandbox')).toBe('') // no scripts, an opaque origin
    expect(await frame.getAttribute('src')).toMatch(/^blob:/)
    // Shown as text, markup and all: nothing in it ran.
    await expect.poll(() => page.frameLocator('#preview iframe').locator('body').textContent()).toBe('# Hello <script>alert(1)</script>')

    // An image is an <img> (it runs nothing), from a blob: URL too.
    await row(page, 'view/dot.png').locator('button.link').click()
    const image = page.locator('#preview img[data-kind=image]')
    await image.waitFor()
    expect(await image.getAttribute('src')).toMatch(/^blob:/)
    await expect.poll(() => image.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth)).toBe(1)
    expect(await page.locator('#preview iframe').count()).toBe(0)

    // A PDF goes to the browser's own viewer (Chromium refuses PDFs in sandboxed frames: no sandbox
    // here, but a blob typed application/pdf, which nothing but the viewer renders).
    await row(page, 'view/one-page.pdf').locator('button.link').click()
    await expect.poll(() => frame.getAttribute('data-kind')).toBe('pdf')
    expect(await frame.getAttribute('src')).toMatch(/^blob:/)
    await expect.poll(() => page.frames().some((f) => f.url().startsWith('chrome-extension://')), { timeout: 20_000 }).toBe(true)
    expect(page.frames().filter((f) => f.url().startsWith('chrome-error://'))).toEqual([])
    expect(isolated!.blocked).toEqual([])
  }, 60_000)

  /** The API docs page (Swagger UI), once it has rendered its operations. */
  async function openDocs(): Promise<Page> {
    isolated = await isolatedContext(browser, svc.origin)
    const page = await isolated.context.newPage()
    await page.goto(`${svc.api}/docs`, { timeout: 60_000 }) // 1.7 MB of Swagger UI to parse on a busy machine
    await page
      .locator('.opblock')
      .first()
      .waitFor({ timeout: 30_000 })
      .catch((e: Error) => {
        throw new Error(`the docs page rendered no operation (asked of other origins: ${isolated!.blocked.join(', ') || 'nothing'}): ${e.message}`)
      })
    return page
  }

  it('the API docs page renders its operations with no network but the service', async () => {
    const page = await openDocs()
    const operations = page.locator('.opblock')
    expect(await operations.count()).toBeGreaterThan(10)
    expect(await page.locator('.opblock-summary-path').allTextContents()).toContain('/filestorage/v1/{store}/upload/{path}')
    expect(isolated!.blocked).toEqual([])
  }, 120_000)

  it("the API docs page's Authorize sends the token with Try it out: 401 before, 200 with the file's info after", async () => {
    const stored = await fetch(`${svc.api}/disk/upload/docs-try/hello.txt`, { method: 'PUT', headers: bearer(writer), body: 'hello from the docs page' })
    expect(stored.status).toBe(201)
    const expected = await (await info('docs-try/hello.txt')).json()
    const reader = await hmacToken(key, 'docs-reader', ['files:read:disk:docs-try'])
    const page = await openDocs()

    // Try it out on `info`, with the store and path filled in, then Execute: what the page shows.
    const operation = page.locator('#operations-files-info')
    await operation.locator('.opblock-summary').click()
    await operation.locator('.try-out__btn').click()
    await operation.locator('tr[data-param-name=store] select').selectOption('disk')
    await operation.locator('tr[data-param-name=path] input').fill('docs-try/hello.txt')
    const execute = async (): Promise<{ status: string; body: string }> => {
      const response = page.waitForResponse((r) => r.url().includes('/disk/info/'))
      await operation.locator('.btn.execute').click()
      await response
      const shown = operation.locator('.live-responses-table .response')
      await shown.first().waitFor()
      return {
        status: (await shown.locator('.response-col_status').first().textContent())!.trim(),
        body: (await shown.locator('.response-col_description pre').first().textContent())!,
      }
    }

    // Not authorized yet: the service's 401, shown as the page received it.
    const refused = await execute()
    expect(refused.status).toBe('401')
    expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'unauthorized' } })

    // Authorize: the bearer token, entered in the dialog.
    await page.locator('.auth-wrapper button.authorize').click()
    const dialog = page.locator('.modal-ux')
    await dialog.locator('input[aria-label=auth-bearer-value]').fill(reader)
    await dialog.locator('button.modal-btn.authorize').click()
    await dialog.locator('button.btn-done').click()
    await dialog.waitFor({ state: 'detached' })

    const sent: (string | undefined)[] = []
    page.on('request', (r) => {
      if (r.url().includes('/disk/info/')) sent.push(r.headers()['authorization'])
    })
    const answered = await execute()
    expect(sent).toEqual([`Bearer ${reader}`])
    expect(answered.status).toBe('200')
    expect(JSON.parse(answered.body)).toEqual(expected)
    expect(isolated!.blocked).toEqual([])
  }, 120_000)
})
