/**
 * check: `GET /filestorage/v1/check` reports every store's health. Consul's health check and load
 * balancers call it, so it never waits long on a stuck store.
 *
 * A store is `up`, `degraded` (it answers, but cannot take writes: a full disk, a read-only file
 * system, a database refusing writes) or `down` (it does not answer). The answer is `200` only when
 * every store is up, else `503`: that is what takes an instance out of rotation everywhere (Consul
 * marks any status but 2xx and 429 critical, so it leaves `?passing` and the nginx upstream; nginx,
 * HAProxy and cloud load balancers fail a check on a 5xx). A degraded instance keeps serving reads to
 * whoever calls it directly, and passes again at the next check once it can write again.
 *
 * With events configured it also says whether a store's event backlog is at its bound (its changes
 * refused with 507), and with rate limits shared through Redis whether Redis answers (the policy of
 * RATE_LIMIT_REDIS_DOWN applies meanwhile): either makes it `degraded`, but still `200`, since both
 * are the same on every instance and taking them all out of rotation would mend neither
 * (docs/events.md, docs/operations.md).
 *
 * It is public, so without credentials it says only the status per store: the driver, latency,
 * writability and error text (which can name server paths) go to a caller who may read in that store.
 */
import { createRoute, z } from '@hono/zod-openapi'
import type { HealthReport, Store } from '../storage/index.js'
import { ROOT } from '../storage/index.js'
import { allows } from './access.js'
import { createHandlerApp, type HandlerDeps } from './handler-app.js'

const StoreHealth = z
  .object({
    status: z.enum(['up', 'degraded', 'down']),
    driver: z.string().optional().openapi({ description: 'For a caller who may read in the store.' }),
    writable: z
      .boolean()
      .optional()
      .openapi({ description: 'False when the store answers but cannot take writes now. For a caller who may read in the store.' }),
    latencyMs: z.number().optional().openapi({ description: 'For a caller who may read in the store.' }),
    message: z.string().optional().openapi({ description: 'Why it is down or degraded, for a caller who may read in the store.' }),
  })
  .openapi('StoreHealth')

const RateLimiterHealth = z
  .object({
    status: z.enum(['ok', 'degraded']).openapi({
      description: '`degraded` while the Redis that rate limits are shared through does not answer (RATE_LIMIT_REDIS_DOWN applies meanwhile).',
    }),
    message: z.string().optional(),
  })
  .openapi('RateLimiterHealth')

const EventsHealth = z
  .object({
    status: z.enum(['ok', 'degraded']).openapi({ description: '`degraded` while a store\'s event backlog is at its bound: its changes are refused with 507 until it drains.' }),
    stores: z
      .record(z.string(), z.object({ backlog: z.number().int(), max: z.number().int(), full: z.boolean() }))
      .optional()
      .openapi({ description: 'Per store, for a caller who may read in it.' }),
  })
  .openapi('EventsHealth')

const CheckSchema = z
  .object({
    status: z.enum(['ok', 'degraded', 'unavailable']),
    stores: z.record(z.string(), StoreHealth),
    rateLimiter: RateLimiterHealth.optional().openapi({ description: 'Present when rate limits are shared through Redis.' }),
    events: EventsHealth.optional().openapi({ description: 'Present when events are configured.' }),
  })
  .openapi('Check')

export const checkRoute = createRoute({
  method: 'get',
  path: '/check',
  operationId: 'check',
  tags: ['service'],
  summary: 'Health of the service and of every store',
  description:
    '`200` when every store answers and takes writes. `503` when a store does not answer (`unavailable`) ' +
    'or cannot take writes (`degraded`: a full disk, a read-only file system, a database refusing writes), ' +
    'so that Consul and load balancers stop sending it traffic; it passes again by itself once the store recovers. ' +
    'A rate limiter that cannot reach Redis, or a full event backlog, makes it `degraded` but still `200`: either is the ' +
    'same for every instance, and taking them all out of rotation at once would bring neither back.',
  responses: {
    200: { description: 'Every store answers and takes writes', content: { 'application/json': { schema: CheckSchema } } },
    503: { description: 'Some store is down or cannot take writes', content: { 'application/json': { schema: CheckSchema } } },
  },
})

/** How long one store may take to answer before it counts as down. */
export const CHECK_TIMEOUT_MS = 2000

async function probe(driver: Store, timeoutMs: number): Promise<HealthReport> {
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

/** A store's health report, or `down` when it does not answer in time: /check's probe, which the metrics share. */
export const probeHealth = (store: Store, timeoutMs = CHECK_TIMEOUT_MS): Promise<HealthReport> => probe(store, timeoutMs)

const statusOf = (r: HealthReport): 'up' | 'degraded' | 'down' => (!r.ok ? 'down' : r.writable === false ? 'degraded' : 'up')

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
        const status = statusOf(r)
        if (!detailed[i]) return [name, { status }]
        return [
          name,
          {
            status,
            driver: driver.kind,
            writable: r.ok && r.writable !== false,
            latencyMs: Math.round(r.latencyMs * 10) / 10,
            ...(r.message ? { message: r.message } : {}),
          },
        ]
      }),
    )
    const statuses = reports.map(statusOf)
    const storesStatus = statuses.includes('down') ? 'unavailable' : statuses.includes('degraded') ? 'degraded' : 'ok'
    const rateLimiter = deps.rateLimits?.health()
    const events = deps.events?.health()
    const eventsHealth = events && {
      status: events.status,
      ...(detailed.some(Boolean)
        ? { stores: Object.fromEntries(Object.entries(events.stores).filter(([store]) => detailed[entries.findIndex(([name]) => name === store)])) }
        : {}),
    }
    const degradedBeside = rateLimiter?.status === 'degraded' || events?.status === 'degraded'
    const status = storesStatus === 'ok' && degradedBeside ? 'degraded' : storesStatus
    return c.json(
      { status, stores, ...(rateLimiter ? { rateLimiter } : {}), ...(eventsHealth ? { events: eventsHealth } : {}) },
      storesStatus === 'ok' ? 200 : 503,
      { 'Cache-Control': 'no-store' },
    )
  })
  return app
}
