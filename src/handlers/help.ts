/**
 * help: `GET /filestorage/v1/help` lists the routes and links to the docs.
 */
import { createRoute, type RouteConfig, z } from '@hono/zod-openapi'
import { createHandlerApp } from './handler-app.js'
import { openApiPath } from './openapi-paths.js'

const HelpSchema = z
  .object({
    service: z.string(),
    version: z.string(),
    docs: z.string(),
    openapi: z.string(),
    routes: z.array(z.object({ method: z.string(), path: z.string(), summary: z.string() })),
  })
  .openapi('Help')

export const helpRoute = createRoute({
  method: 'get',
  path: '/help',
  operationId: 'help',
  tags: ['service'],
  summary: 'The routes of the API and where the docs are',
  responses: { 200: { description: 'Routes and links', content: { 'application/json': { schema: HelpSchema } } } },
})

export interface HelpOptions {
  /** Where the API is mounted, e.g. `/filestorage/v1`. */
  basePath: string
  routes: RouteConfig[]
  service?: { name: string; version: string }
}

export function createHelpHandler(options: HelpOptions) {
  const app = createHandlerApp()
  const body = {
    service: options.service?.name ?? 'filestorage',
    version: options.service?.version ?? 'unknown',
    docs: `${options.basePath}/docs`,
    openapi: `${options.basePath}/openapi.json`,
    routes: options.routes
      .filter((r) => !r.hide)
      .map((r) => ({
        method: r.method.toUpperCase(),
        path: options.basePath + openApiPath(r.path),
        summary: r.summary ?? '',
      })),
  }
  app.openapi(helpRoute, (c) => c.json(body, 200))
  return app
}
