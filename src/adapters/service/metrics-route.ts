/**
 * `GET /metrics` on the main port (METRICS_ON_MAIN_PORT), for a caller holding the operator's right
 * `filestorage:admin` (SPEC 6), which no `files:` right grants: a bearer token with that scope; in
 * anonymous mode, whoever may reach the service. Without credentials `401`, without the right `403`.
 * The same answer as METRICS_PORT's: every WORKERS process summed.
 */
import type { OpenAPIHono } from '@hono/zod-openapi'
import { authorizeAdmin } from '../../handlers/access.js'
import { type AccessOptions, createHandlerApp, errorBody } from '../../handlers/index.js'
import { scrape } from './metrics-endpoint.js'

export function metricsRoute(access: AccessOptions): OpenAPIHono {
  const app = createHandlerApp({ access }, ['/metrics'])
  app.get('/metrics', async (c) => {
    await authorizeAdmin(c)
    try {
      const { contentType, body } = await scrape()
      return c.body(body, 200, { 'Content-Type': contentType, 'Cache-Control': 'no-store' })
    } catch (e) {
      return c.json(errorBody('store_unavailable', `the metrics could not be gathered: ${(e as Error).message}`), 503)
    }
  })
  return app
}
