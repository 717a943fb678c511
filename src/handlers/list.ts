/**
 * list: `GET /{store}/list/{dir}` lists a folder (`{dir}` empty for the root): folders first, then
 * files, by name; `recursive` lists every file below, by path. Paged with `limit` and `cursor`.
 *
 * A listing shows only what the caller may read (SPEC 6). A caller who may read only part of the
 * folder (`users/ana` when listing `users`) sees that part: its pages are filtered, reading at most
 * SCAN_PAGES driver pages per request, so a page can hold fewer entries than `limit` (even none)
 * and still have a `nextCursor`.
 */
import { createRoute, z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import {
  CURSOR,
  encodeCursor,
  entryInfo,
  listLimit,
  type ListPage,
  type ListOptions,
  MAX_LIST_LIMIT,
  notFound,
  ROOT,
  type Store,
  type StoredEntry,
} from '../storage/index.js'
import { allows, authorize } from './access.js'
import { requestPath } from './request-path.js'
import { createHandlerApp, type HandlerDeps } from './handler-app.js'
import { errorResponses } from './http-errors.js'
import { BooleanQuery, decimalQuery, DirParam, ListPageSchema, StoreParam } from './schemas.js'

const listQuery = z.object({
  recursive: BooleanQuery.openapi({ description: 'List every file below the folder (files only, by path).' }),
  limit: decimalQuery(1, MAX_LIST_LIMIT, 'Page size (default 1000).').optional(),
  cursor: z
    .string()
    .regex(CURSOR, 'must be the nextCursor of a previous page')
    .optional()
    .openapi({ description: '`nextCursor` of the previous page (opaque; base64url).' }),
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
  const app = createHandlerApp(deps, [listRoute, listRootRoute])
  const list = async (c: Context, store: string, rawDir: string, query: z.infer<typeof listQuery>) => {
    const driver = deps.stores.get(store)
    const dir = requestPath(c, rawDir, { folder: true })
    const readable = { operation: 'list', action: 'read', store } as const
    await authorize(c, { ...readable, path: dir, below: true })
    if (dir !== ROOT) {
      const entry = await driver.lookup(dir)
      if (entry?.type !== 'directory') throw notFound(`a folder at "${dir}"`)
    }
    const options: ListOptions = {
      recursive: query.recursive,
      ...(query.limit !== undefined ? { limit: query.limit } : {}),
      ...(query.cursor !== undefined ? { cursor: query.cursor } : {}),
    }
    const page = (await allows(c, { ...readable, path: dir }))
      ? await driver.list(dir, options)
      : await filteredList(driver, dir, options, (e) =>
          allows(c, { ...readable, path: e.path, below: e.type === 'directory' }),
        )
    return c.json({ entries: page.entries.map((e) => entryInfo(store, e)), nextCursor: page.nextCursor }, 200)
  }
  app.openapi(listRoute, (c) => list(c, c.req.valid('param').store, c.req.valid('param').dir, c.req.valid('query')))
  app.openapi(listRootRoute, (c) => list(c, c.req.valid('param').store, ROOT, c.req.valid('query')))
  return app
}

/** Driver pages a filtered listing reads at most per request. */
const SCAN_PAGES = 10

/** The entries `visible` admits, a page of at most `limit`, with the cursor after the last one looked at. */
async function filteredList(
  driver: Store,
  dir: string,
  options: ListOptions,
  visible: (entry: StoredEntry) => Promise<boolean>,
): Promise<ListPage> {
  const limit = listLimit(options.limit)
  const recursive = options.recursive ?? false
  const entries: StoredEntry[] = []
  let cursor = options.cursor
  for (let read = 0; read < SCAN_PAGES; read++) {
    const page = await driver.list(dir, { ...options, limit, ...(cursor !== undefined ? { cursor } : {}) })
    for (const [i, entry] of page.entries.entries()) {
      if (!(await visible(entry))) continue
      entries.push(entry)
      if (entries.length === limit) {
        const more = i < page.entries.length - 1 || page.nextCursor !== null
        return { entries, nextCursor: more ? cursorAfter(entry, recursive) : null }
      }
    }
    if (page.nextCursor === null) return { entries, nextCursor: null }
    cursor = page.nextCursor
  }
  return { entries, nextCursor: cursor ?? null }
}

/** The cursor of a listing that resumes after `entry` (the storage core's cursor format). */
const cursorAfter = (entry: StoredEntry, recursive: boolean): string =>
  encodeCursor(recursive ? { recursive: true, path: entry.path } : { recursive: false, type: entry.type, name: entry.name })
