/**
 * check: `GET /filestorage/v1/check` reports every store's health: `200` when all answer, else `503`.
 * Consul's health check and load balancers call it, so it never waits long on a stuck store.
 *
 * It is public, so without credentials it says only up or down per store: the driver, latency and
 * error text (which can name server paths) go to a caller who may read something in that store.
 */
import { createRoute, z } from '@hono/zod-openapi'
import type { HealthReport, StorageDriver } from '../storage/index.js'
import { ROOT } from '../storage/index.js'
import { allows } from './access.js'
import { createHandlerApp, type HandlerDeps } from './handler-app.js'

const StoreHealth = z
  .object({
    status: z.enum(['up', 'down']),
    driver: z.string().optional().openapi({ description: 'For a caller who may read in the store.' }),
    latencyMs: z.number().optional().openapi({ description: 'For a caller who may read in the store.' }),
    message: z.string().optional().openapi({ description: 'Why it is down, for a caller who may read in the store.' }),
  })
  .openapi('StoreHealth')

const CheckSchema = z
  .object({
    status: z.enum(['ok', 'unavailable']),
    stores: z.record(z.string(), StoreHealth),
  })
  .openapi('Check')

export const checkRoute = createRoute({
  method: 'get',
  path: '/check',
  operationId: 'check',
  tags: ['service'],
  summary: 'Health of the service and of every store',
  responses: {
    200: { description: 'Every store answers', content: { 'application/json': { schema: CheckSchema } } },
    503: { description: 'Some store does not answer', content: { 'application/json': { schema: CheckSchema } } },
  },
})

/** How long one store may take to answer before it counts as down. */
export const CHECK_TIMEOUT_MS = 2000

async function probe(driver: StorageDriver, timeoutMs: number): Promise<HealthReport> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<HealthReport>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, latencyMs: timeoutMs, message: 'no answer in time' }), timeoutMs)
  })
  try {
    return await Promise.race([
      driver.health().catch((e: Error) => ({ ok: false, latencyMs: 0, message: e.message })),
      timeout,
    ])
  } finally {
    clearTimeout(timer)
  }
}

export function createCheckHandler(deps: HandlerDeps & { checkTimeoutMs?: number }) {
  const app = createHandlerApp(deps, [checkRoute], { public: true })
  app.openapi(checkRoute, async (c) => {
    const entries = deps.stores.entries()
    const reports = await Promise.all(entries.map(([, d]) => probe(d, deps.checkTimeoutMs ?? CHECK_TIMEOUT_MS)))
    const detailed = await Promise.all(
      entries.map(([store]) => allows(c, { operation: 'check', action: 'read', store, path: ROOT, below: true })),
    )
    const stores = Object.fromEntries(
      entries.map(([name, driver], i) => {
        const r = reports[i]!
        const status = r.ok ? ('up' as const) : ('down' as const)
        if (!detailed[i]) return [name, { status }]
        return [
          name,
          {
            status,
            driver: driver.kind,
            latencyMs: Math.round(r.latencyMs * 10) / 10,
            ...(r.message ? { message: r.message } : {}),
          },
        ]
      }),
    )
    const ok = reports.every((r) => r.ok)
    return c.json({ status: ok ? ('ok' as const) : ('unavailable' as const), stores }, ok ? 200 : 503, {
      'Cache-Control': 'no-store',
    })
  })
  return app
}
