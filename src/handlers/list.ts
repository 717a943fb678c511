/**
 * list: `GET /{store}/list/{dir}` lists a folder (`{dir}` empty for the root): folders first, then
 * files, by name; `recursive` lists every file below, by path. Paged with `limit` and `cursor`.
 */
import { createRoute, z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { entryInfo, MAX_LIST_LIMIT, notFound, ROOT } from '../storage/index.js'
import { requestPath } from './request-path.js'
import { createHandlerApp, type HandlerDeps } from './handler-app.js'
import { errorResponses } from './http-errors.js'
import { BooleanQuery, decimalQuery, DirParam, ListPageSchema, StoreParam } from './schemas.js'

const listQuery = z.object({
  recursive: BooleanQuery.openapi({ description: 'List every file below the folder (files only, by path).' }),
  limit: decimalQuery(1, MAX_LIST_LIMIT, 'Page size (default 1000).').optional(),
  cursor: z.string().optional().openapi({ description: '`nextCursor` of the previous page.' }),
})

const listResponses = {
  200: { description: 'One page of the listing', content: { 'application/json': { schema: ListPageSchema } } },
  ...errorResponses(400, 403, 404, 503),
}

export const listRoute = createRoute({
  method: 'get',
  path: '/{store}/list/{dir{[\\s\\S]*}}',
  operationId: 'list',
  tags: ['files'],
  summary: 'List a folder',
  description: 'Folders first, then files, each by name (code point order). An empty `dir` (`/list/`) lists the root.',
  request: { params: z.object({ store: StoreParam, dir: DirParam }), query: listQuery },
  responses: listResponses,
})

/** `/{store}/list` without a trailing slash: the root. */
export const listRootRoute = createRoute({
  method: 'get',
  path: '/{store}/list',
  operationId: 'listRoot',
  tags: ['files'],
  summary: 'List the root folder',
  request: { params: z.object({ store: StoreParam }), query: listQuery },
  responses: listResponses,
})

export function createListHandler(deps: HandlerDeps) {
  const app = createHandlerApp()
  const list = async (c: Context, store: string, rawDir: string, query: z.infer<typeof listQuery>) => {
    const driver = deps.stores.get(store)
    const dir = requestPath(c, rawDir, { folder: true })
    if (dir !== ROOT) {
      const entry = await driver.lookup(dir)
      if (entry?.type !== 'directory') throw notFound(`a folder at "${dir}"`)
    }
    const page = await driver.list(dir, {
      recursive: query.recursive,
      ...(query.limit !== undefined ? { limit: query.limit } : {}),
      ...(query.cursor !== undefined ? { cursor: query.cursor } : {}),
    })
    return c.json({ entries: page.entries.map((e) => entryInfo(store, e)), nextCursor: page.nextCursor }, 200)
  }
  app.openapi(listRoute, (c) => list(c, c.req.valid('param').store, c.req.valid('param').dir, c.req.valid('query')))
  app.openapi(listRootRoute, (c) => list(c, c.req.valid('param').store, ROOT, c.req.valid('query')))
  return app
}
