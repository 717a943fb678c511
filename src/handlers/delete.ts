/**
 * delete: `DELETE /{store}/delete/{path}` removes a file, or a folder (`recursive` when not empty).
 */
import { createRoute, z } from '@hono/zod-openapi'
import { authorize } from './access.js'
import { requestPath } from './request-path.js'
import { createHandlerApp, type HandlerDeps } from './handler-app.js'
import { errorResponses } from './http-errors.js'
import { beforeDelete } from './hooks.js'
import { originOf } from './request-id.js'
import { ifMatchOf } from './request-options.js'
import { BooleanQuery, EtagListHeader, PathParam, StoreParam } from './schemas.js'

export const deleteRoute = createRoute({
  method: 'delete',
  path: '/{store}/delete/{path{[\\s\\S]*}}',
  operationId: 'delete',
  tags: ['files'],
  summary: 'Delete a file or folder',
  request: {
    params: z.object({ store: StoreParam, path: PathParam }),
    query: z.object({
      recursive: BooleanQuery.openapi({ description: 'Delete a folder with everything in it.' }),
    }),
    headers: z.object({ 'if-match': EtagListHeader('Delete only this version.').optional() }),
  },
  responses: {
    204: { description: 'Deleted' },
    ...errorResponses(400, 403, 404, 409, 412, 501, 503, 507),
  },
})

export function createDeleteHandler(deps: HandlerDeps) {
  const app = createHandlerApp(deps, [deleteRoute])
  app.openapi(deleteRoute, async (c) => {
    const { store, path: rawPath } = c.req.valid('param')
    const { recursive } = c.req.valid('query')
    const driver = deps.stores.get(store)
    const path = requestPath(c, rawPath)
    await authorize(c, { operation: 'delete', action: 'delete', store, path })
    await beforeDelete(c, deps.hooks, { operation: 'delete', store, path, recursive })
    await driver.delete(path, { recursive, ...ifMatchOf(c), origin: originOf(c) })
    return c.body(null, 204)
  })
  return app
}
