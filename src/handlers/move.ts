/**
 * move: `POST /{store}/move/{path}` with `{ to, toStore?, overwrite? }` moves or renames a file or a
 * folder. Within a store it is the driver's own move (a rename, a catalog update); to another
 * store it is a streamed copy, then a delete.
 */
import { createRoute, z } from '@hono/zod-openapi'
import { entryInfo, moveAcrossStores, parsePath } from '../storage/index.js'
import { authorize } from './access.js'
import { requestPath } from './request-path.js'
import { withBoundedJsonBody } from './json-body.js'
import { createHandlerApp, type HandlerDeps } from './handler-app.js'
import { errorResponses } from './http-errors.js'
import { originOf } from './request-id.js'
import { ifMatchOf } from './request-options.js'
import { EntrySchema, EtagListHeader, PATH_PATTERN, PathParam, StoreParam } from './schemas.js'

const MoveBody = z
  .object({
    to: z.string().min(1).openapi({
      description: 'The new path; the path rules apply.',
      pattern: PATH_PATTERN,
      maxLength: 1024,
      example: 'archive/2024/summary.pdf',
    }),
    toStore: z.string().optional().openapi({ description: 'Move into another store (streamed copy, then delete).' }),
    overwrite: z.boolean().optional().openapi({ description: 'Replace what is at `to` (default false: `409`).' }),
  })
  .openapi('MoveRequest')

export const moveRoute = createRoute({
  method: 'post',
  path: '/{store}/move/{path{[\\s\\S]*}}',
  operationId: 'move',
  tags: ['files'],
  summary: 'Move or rename a file or folder',
  request: {
    params: z.object({ store: StoreParam, path: PathParam }),
    headers: z.object({ 'if-match': EtagListHeader('Move only this version.').optional() }),
    body: { content: { 'application/json': { schema: MoveBody } }, required: true },
  },
  responses: {
    200: { description: 'What is now at the new place', content: { 'application/json': { schema: EntrySchema } } },
    ...errorResponses(400, 403, 404, 408, 409, 412, 413, 501, 503, 507),
  },
})

export function createMoveHandler(deps: HandlerDeps) {
  const app = createHandlerApp(deps, [moveRoute])
  app.openapi(withBoundedJsonBody(moveRoute, deps), async (c) => {
    const { store, path: rawPath } = c.req.valid('param')
    const body = c.req.valid('json')
    const source = deps.stores.get(store)
    const targetStore = body.toStore ?? store
    const target = deps.stores.get(targetStore)
    const from = requestPath(c, rawPath)
    const to = parsePath(body.to)
    // Both ends: the source is read and removed, the target written.
    await authorize(c, { operation: 'move', action: 'read', store, path: from })
    await authorize(c, { operation: 'move', action: 'delete', store, path: from })
    await authorize(c, { operation: 'move', action: 'write', store: targetStore, path: to })
    const options = { overwrite: body.overwrite ?? false, ...ifMatchOf(c), origin: originOf(c) }
    const moved =
      target === source
        ? await source.move(from, to, options)
        : await moveAcrossStores(source, from, target, to, {
            ...options,
            ...(deps.maxUploadBytes !== undefined ? { maxBytes: deps.maxUploadBytes } : {}),
          })
    return c.json(entryInfo(targetStore, moved), 200)
  })
  return app
}
