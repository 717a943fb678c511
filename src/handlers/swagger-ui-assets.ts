/**
 * The Swagger UI that the docs page runs, from the swagger-ui-dist package, served by the service
 * itself: the page works where there is no internet access, and loads nothing from another origin.
 * The folder's name carries the package's version, so browsers may keep the files for good (a new
 * version has new URLs).
 */
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { OpenAPIHono } from '@hono/zod-openapi'
import { serveStatic } from '@hono/node-server/serve-static'

const require = createRequire(import.meta.url)
const packageJson = require.resolve('swagger-ui-dist/package.json')
const { version } = require('swagger-ui-dist/package.json') as { version: string }

/** The folder the files are served from, relative to where the assets are mounted. */
export const SWAGGER_UI_FOLDER = `swagger-ui-dist@${version}`

/** What the page loads, and the stylesheet's source map (which it names, for developer tools). */
const FILES = ['swagger-ui-bundle.js', 'swagger-ui.css', 'swagger-ui.css.map', 'favicon-32x32.png']

const IMMUTABLE = 'public, max-age=31536000, immutable'

/** The routes of the files under `under`: `GET` (and so `HEAD`) `{under}/swagger-ui-dist@{version}/{file}`. */
export function swaggerUiAssetRoutes(under: string): { method: 'get'; path: string }[] {
  return FILES.map((file) => ({ method: 'get', path: `${under}/${SWAGGER_UI_FOLDER}/${file}` }))
}

/** Serves the files at their routes (swaggerUiAssetRoutes); other names are not found. */
export function mountSwaggerUiAssets(app: OpenAPIHono, under: string): void {
  for (const { path } of swaggerUiAssetRoutes(under)) {
    const file = path.slice(path.lastIndexOf('/') + 1)
    app.get(
      path,
      async (c, next) => {
        // Set before serveStatic builds its response, which takes the headers prepared so far.
        c.header('Cache-Control', IMMUTABLE)
        c.header('X-Content-Type-Options', 'nosniff')
        await next()
      },
      serveStatic({ path: join(dirname(packageJson), file) }),
    )
  }
}
