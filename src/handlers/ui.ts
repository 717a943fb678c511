/**
 * ui: `GET /ui`, the file browser page, and `GET /ui/{asset}`, its script and stylesheet (built from
 * src/ui into dist/ui by `npm run build`). Public like the docs: the page holds no data; the API
 * calls it makes carry the user's token. Everything comes from the service itself, and the page's
 * Content-Security-Policy lets it load nothing from anywhere else.
 *
 * Every URL in the page is relative to it (`ui/filestorage-ui.js`, the API at `./`), so it works
 * wherever the handlers are mounted.
 */
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { html } from 'hono/html'
import { notFound } from '../storage/index.js'
import { createHandlerApp } from './handler-app.js'

export interface UiOptions {
  /** Where the built assets are; `dist/ui` of this package by default. */
  assetsDir?: string
}

const ASSETS: Record<string, string> = {
  'filestorage-ui.js': 'text/javascript; charset=utf-8',
  'filestorage-ui.css': 'text/css; charset=utf-8',
  'filestorage-ui.js.LEGAL.txt': 'text/plain; charset=utf-8',
}

/** The routes this handler serves (not OpenAPI routes: they are pages, not API). */
export const UI_ROUTES = [{ method: 'get', path: '/ui' }, ...Object.keys(ASSETS).map((file) => ({ method: 'get', path: `/ui/${file}` }))]

/**
 * Scripts and styles from this origin only, API calls to it only, previews from blob: URLs in
 * sandboxed frames; no plugins, no forms sent anywhere, no framing of the page by others.
 */
export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob:",
  "connect-src 'self'",
  'frame-src blob:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

const SECURITY_HEADERS = {
  'Content-Security-Policy': UI_CSP,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer', // signed URLs never leak through a Referer
}

const page = html`<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>filestorage: files</title>
    <link rel="stylesheet" href="ui/filestorage-ui.css" />
    <script type="module" src="ui/filestorage-ui.js"></script>
  </head>
  <body>
    <header>
      <h1>filestorage <small>files</small></h1>
      <form id="token-form">
        <label for="token">Token</label>
        <input id="token" type="password" autocomplete="off" placeholder="paste a bearer token" />
        <button type="submit">Use</button>
        <button type="button" id="token-clear">Forget</button>
        <span id="token-state"></span>
      </form>
    </header>
    <div id="toolbar">
      <label for="store">Store</label>
      <select id="store"></select>
      <label class="button primary">Upload files<input id="picker" type="file" multiple /></label>
      <button type="button" id="new-folder">New folder</button>
      <button type="button" id="refresh">Refresh</button>
      <a href="docs">API docs</a>
    </div>
    <nav id="crumbs" aria-label="folders"></nav>
    <div id="error" role="alert" hidden></div>
    <main id="drop">
      <table id="files">
        <thead>
          <tr>
            <th><button type="button" data-sort="name">Name</button></th>
            <th class="size"><button type="button" data-sort="size">Size</button></th>
            <th><button type="button" data-sort="modified">Modified</button></th>
            <th></th>
          </tr>
        </thead>
        <tbody id="file-rows"></tbody>
      </table>
      <p id="status" role="status"></p>
    </main>
    <ul id="uploads" aria-label="uploads"></ul>
    <section id="preview" hidden></section>
    <dialog id="ask"></dialog>
  </body>
</html>
`

/** The package's root: `filestorage/package.json` resolves to it from the sources and from dist alike. */
const defaultAssetsDir = () => join(dirname(createRequire(import.meta.url).resolve('filestorage/package.json')), 'dist/ui')

interface Asset {
  body: Uint8Array<ArrayBuffer>
  etag: string
}

export function createUiHandler(options: UiOptions = {}) {
  const app = createHandlerApp()
  const dir = options.assetsDir ?? defaultAssetsDir()
  const cache = new Map<string, Promise<Asset>>()
  const load = (file: string): Promise<Asset> => {
    let asset = cache.get(file)
    if (!asset) {
      asset = readFile(join(dir, file)).then((buffer) => ({
        body: new Uint8Array(buffer),
        etag: `"${createHash('sha256').update(buffer).digest('base64url').slice(0, 27)}"`,
      }))
      cache.set(file, asset)
      asset.catch(() => cache.delete(file)) // built later: read again next time
    }
    return asset
  }

  // no-cache: a browser checks (ETag) before using what it kept, so a new build shows at once.
  app.get('/ui', (c) => c.html(page, 200, { ...SECURITY_HEADERS, 'Cache-Control': 'no-cache' }))
  for (const [file, type] of Object.entries(ASSETS)) {
    app.get(`/ui/${file}`, async (c) => {
      const asset = await load(file).catch(() => {
        throw notFound(`the page's ${file} (build it: npm run build)`)
      })
      const headers = { ...SECURITY_HEADERS, 'Content-Type': type, 'Cache-Control': 'no-cache', ETag: asset.etag }
      if (c.req.header('if-none-match') === asset.etag) return c.body(null, 304, headers)
      return c.body(asset.body, 200, headers)
    })
  }
  return app
}
