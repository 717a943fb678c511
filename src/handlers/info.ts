/**
 * info: `GET /{store}/info/{path}` describes a file (FileInfo), or a folder.
 */
import { createRoute, z } from '@hono/zod-openapi'
import { entryInfo, notFound } from '../storage/index.js'
import { authorize } from './access.js'
import { requestPath } from './request-path.js'
import { createHandlerApp, type HandlerDeps } from './handler-app.js'
import { errorResponses } from './http-errors.js'
import { EntrySchema, PathParam, StoreParam } from './schemas.js'

export const infoRoute = createRoute({
  method: 'get',
  path: '/{store}/info/{path{[\\s\\S]*}}',
  operationId: 'info',
  tags: ['files'],
  summary: 'Describe a file or folder',
  request: { params: z.object({ store: StoreParam, path: PathParam }) },
  responses: {
    200: { description: 'FileInfo, or a folder entry', content: { 'application/json': { schema: EntrySchema } } },
    ...errorResponses(400, 403, 404, 503),
  },
})

export function createInfoHandler(deps: HandlerDeps) {
  const app = createHandlerApp(deps, [infoRoute])
  app.openapi(infoRoute, async (c) => {
    const { store, path: rawPath } = c.req.valid('param')
    const driver = deps.stores.get(store)
    const path = requestPath(c, rawPath)
    await authorize(c, { operation: 'info', action: 'read', store, path })
    const entry = await driver.lookup(path)
    if (!entry) throw notFound(`"${path}"`)
    return c.json(entryInfo(store, entry), 200, entry.type === 'file' ? { ETag: entry.etag } : {})
  })
  return app
}
