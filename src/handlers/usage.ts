/**
 * usage: `GET /{store}/usage/{path}` answers the quotas that hold for a write at `path` (the whole
 * store's, and those of the prefixes above it: with a `users/{sub}` rule, `users/ana/...` gives
 * ana's), each with its limits and what counts against them. Behind `read` on `path`, so a principal
 * holding `users/ana` reads its own usage there, and no one else's.
 */
import { createRoute, z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { ROOT } from '../storage/index.js'
import { authorize } from './access.js'
import { createHandlerApp, type HandlerDeps } from './handler-app.js'
import { errorResponses } from './http-errors.js'
import { requestPath } from './request-path.js'
import { DirParam, StoreParam } from './schemas.js'

const Amount = z
  .object({
    bytes: z.number().int().openapi({ example: 734003200 }),
    files: z.number().int().openapi({ example: 1290 }),
  })
  .openapi('QuotaAmount')

const QuotaUsageSchema = z
  .object({
    prefix: z.string().openapi({ description: 'Where the limits hold (`""`: the whole store).', example: 'users/ana' }),
    rule: z.string().openapi({ description: 'The rule that gives them, `{sub}` standing for any one segment.', example: 'users/{sub}' }),
    limits: z
      .object({ bytes: z.number().int().optional(), files: z.number().int().optional() })
      .openapi({ description: 'At most this many bytes, files, or both.' }),
    stored: Amount.openapi({ description: 'What the files there use.' }),
    reserved: Amount.openapi({ description: 'What changes under way may add: uploads in flight, uploads in parts and tus uploads by their declared size (or what they received).' }),
    usage: Amount.openapi({ description: '`stored` and `reserved` together: what a new write is checked against (`403 quota_exceeded` beyond the limits).' }),
  })
  .openapi('QuotaUsage')

const UsageSchema = z
  .object({
    store: z.string(),
    path: z.string(),
    quotas: z.array(QuotaUsageSchema).openapi({ description: 'Every quota a write at `path` counts in; empty when none holds there.' }),
  })
  .openapi('Usage')

const usageResponses = {
  200: { description: 'The quotas that hold at the path, with their usage', content: { 'application/json': { schema: UsageSchema } } },
  ...errorResponses(400, 403, 404, 503),
}

const description =
  'The quotas a write at `path` counts in (the store\'s, and those of prefixes above it), with their limits and usage. ' +
  'Needs `read` on `path`: with a `users/{sub}` quota, a principal holding `users/ana` asks `/usage/users/ana`.'

export const usageRoute = createRoute({
  method: 'get',
  path: '/{store}/usage/{path{[\\s\\S]*}}',
  operationId: 'usage',
  tags: ['files'],
  summary: 'Quota usage at a path',
  description,
  request: { params: z.object({ store: StoreParam, path: DirParam.openapi({ param: { name: 'path', in: 'path' } }) }) },
  responses: usageResponses,
})

/** `/{store}/usage` without a trailing slash: the whole store's. */
export const usageRootRoute = createRoute({
  method: 'get',
  path: '/{store}/usage',
  operationId: 'usageRoot',
  tags: ['files'],
  summary: 'Quota usage of the whole store',
  description,
  request: { params: z.object({ store: StoreParam }) },
  responses: usageResponses,
})

export function createUsageHandler(deps: HandlerDeps) {
  const app = createHandlerApp(deps, [usageRoute, usageRootRoute])
  const usage = async (c: Context, store: string, rawPath: string) => {
    const driver = deps.stores.get(store)
    const path = requestPath(c, rawPath, { folder: true })
    await authorize(c, { operation: 'usage', action: 'read', store, path })
    const quotas = (await driver.quotaUsage?.(path)) ?? []
    return c.json({ store, path, quotas }, 200, { 'Cache-Control': 'no-store' })
  }
  app.openapi(usageRoute, (c) => usage(c, c.req.valid('param').store, c.req.valid('param').path))
  app.openapi(usageRootRoute, (c) => usage(c, c.req.valid('param').store, ROOT))
  return app
}
