/**
 * The operator's routes for events (docs/events.md, "Dead letters"), behind the operator's right
 * `filestorage:admin` (SPEC 6), which no `files:` right grants:
 *
 *   GET  /admin/events                                 backlog, consumers and dead letters per store
 *   GET  /admin/events/{store}/deadletters             the dead letters, oldest first, in pages
 *   POST /admin/events/{store}/deadletters/replay      delivers them again (the same webhook-id)
 *   POST /admin/events/{store}/deadletters/discard     deletes them
 *   POST /admin/events/consumers/{consumer}/enable     takes an endpoint disabled by `410` back
 *
 * What answers is `HandlerDeps.events` (src/events); without it, these routes answer `404`.
 */
import { createRoute, z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { StorageError } from '../storage/index.js'
import { authorizeAdmin } from './access.js'
import { EventPayloadSchema } from './event-schemas.js'
import { createHandlerApp, type HandlerDeps } from './handler-app.js'
import { errorResponses } from './http-errors.js'
import { withBoundedJsonBody } from './json-body.js'
import { decimalQuery, StoreParam } from './schemas.js'

export interface ConsumerOverview {
  name: string
  /** Where it delivers (an endpoint's URL without credentials or query, the Redis stream). */
  target: string
  /** Entries waiting to be delivered to it. */
  pending: number
  deadLetters: number
  /** Disabled by a `410 Gone` until an operator enables it. */
  disabled: boolean
}

export interface EventsOverview {
  stores: Record<string, { backlog: number; max: number; full: boolean; consumers: ConsumerOverview[] }>
}

export interface DeadLetterView {
  consumer: string
  /** The entry's key: one change, one or two events. */
  key: string
  events: z.infer<typeof EventPayloadSchema>[]
  ids: string[]
  deadAt: string
  attempts: number
  status?: number
  error: string
}

/** What the admin routes ask (src/events implements it). */
export interface EventsAdmin {
  /** The consumers' names (endpoints, `.redis`). */
  consumers(): string[]
  overview(): Promise<EventsOverview>
  deadLetters(store: string, query: { consumer?: string; limit: number; cursor?: string }): Promise<{ entries: DeadLetterView[]; nextCursor: string | null }>
  /** Replays (or discards) the dead letters of `consumer` named by `ids` (event ids or keys), or the first 1,000. */
  replay(store: string, consumer: string, ids?: string[]): Promise<{ count: number; remaining: number }>
  discard(store: string, consumer: string, ids?: string[]): Promise<{ count: number; remaining: number }>
  /** False when there is no such consumer. */
  enable(consumer: string): Promise<boolean>
  /** For `/check`: `degraded` while some store's backlog is at its bound (changes refused with 507). */
  health(): { status: 'ok' | 'degraded'; stores: Record<string, { backlog: number; max: number; full: boolean }> }
}

/** A page's `nextCursor`: `<consumer>/<entry key>`. */
const CURSOR = /^(?:\.redis|[A-Za-z0-9][A-Za-z0-9_-]{0,62})\/[0-9a-z]{18}$/

const ConsumerSchema = z.object({
  name: z.string(),
  target: z.string(),
  pending: z.number().int(),
  deadLetters: z.number().int(),
  disabled: z.boolean(),
})

const OverviewSchema = z
  .object({
    stores: z.record(
      z.string(),
      z.object({
        backlog: z.number().int().openapi({ description: 'Entries kept (to deliver, and dead letters), as last counted.' }),
        max: z.number().int().openapi({ description: 'EVENTS_BACKLOG_MAX: at this, changes are refused with 507.' }),
        full: z.boolean(),
        consumers: z.array(ConsumerSchema),
      }),
    ),
  })
  .openapi('EventsOverview')

const DeadLetterSchema = z
  .object({
    consumer: z.string(),
    key: z.string(),
    ids: z.array(z.string()).openapi({ description: 'The `webhook-id` of each event.' }),
    events: z.array(EventPayloadSchema),
    deadAt: z.string(),
    attempts: z.number().int(),
    status: z.number().int().optional().openapi({ description: "The consumer's last answer, when it answered." }),
    error: z.string(),
  })
  .openapi('DeadLetter')

const SelectionBody = z
  .object({
    consumer: z.string().min(1).openapi({ description: 'The endpoint (or `.redis`) whose dead letters these are.' }),
    ids: z
      .array(z.string().min(1).max(64))
      .min(1)
      .max(1000)
      .optional()
      .openapi({ description: 'Event ids (`webhook-id`) or entry keys; absent: the first 1,000.' }),
  })
  .openapi('DeadLetterSelection')

const CountSchema = z.object({ count: z.number().int(), remaining: z.number().int().openapi({ description: "Dead letters of this consumer left." }) })

const overviewRoute = createRoute({
  method: 'get',
  path: '/admin/events',
  operationId: 'eventsOverview',
  tags: ['events'],
  summary: 'Backlog, consumers and dead letters of every store (operator)',
  responses: {
    200: { description: 'The overview', content: { 'application/json': { schema: OverviewSchema } } },
    ...errorResponses(403, 404, 503),
  },
})

const deadLettersRoute = createRoute({
  method: 'get',
  path: '/admin/events/{store}/deadletters',
  operationId: 'eventsDeadLetters',
  tags: ['events'],
  summary: 'Dead letters of a store, oldest first (operator)',
  request: {
    params: z.object({ store: StoreParam }),
    query: z.object({
      consumer: z.string().optional().openapi({ description: 'Only this consumer\'s.' }),
      limit: decimalQuery(1, 1000, 'At most this many (default 100).').optional(),
      cursor: z
        .string()
        .regex(CURSOR, 'not a cursor this route gave')
        .optional()
        .openapi({ description: 'From a previous page\'s `nextCursor`: a consumer and an entry key.' }),
    }),
  },
  responses: {
    200: {
      description: 'A page of dead letters',
      content: { 'application/json': { schema: z.object({ entries: z.array(DeadLetterSchema), nextCursor: z.string().nullable() }) } },
    },
    ...errorResponses(400, 403, 404, 503),
  },
})

const selectionRoute = (action: 'replay' | 'discard', summary: string, description: string) =>
  createRoute({
    method: 'post',
    path: `/admin/events/{store}/deadletters/${action}`,
    operationId: `eventsDeadLetters${action === 'replay' ? 'Replay' : 'Discard'}`,
    tags: ['events'],
    summary,
    description,
    request: {
      params: z.object({ store: StoreParam }),
      body: { content: { 'application/json': { schema: SelectionBody } }, required: true },
    },
    responses: {
      200: { description: 'How many', content: { 'application/json': { schema: CountSchema } } },
      ...errorResponses(400, 403, 404, 408, 413, 503),
    },
  })

const replayRoute = selectionRoute(
  'replay',
  'Deliver dead letters again (operator)',
  'Each goes back to its consumer\'s queue with its own `webhook-id`, and is delivered as a new try: after the events of its path that came since.',
)
const discardRoute = selectionRoute('discard', 'Delete dead letters (operator)', 'They are gone for good; the backlog has room for as many.')

const enableRoute = createRoute({
  method: 'post',
  path: '/admin/events/consumers/{consumer}/enable',
  operationId: 'eventsConsumerEnable',
  tags: ['events'],
  summary: 'Enable an endpoint disabled by 410 Gone (operator)',
  request: { params: z.object({ consumer: z.string().openapi({ param: { name: 'consumer', in: 'path' } }) }) },
  responses: { 204: { description: 'Enabled, in every store' }, ...errorResponses(403, 404, 503) },
})

export const eventsAdminRoutes = [overviewRoute, deadLettersRoute, replayRoute, discardRoute, enableRoute]

function adminOf(deps: HandlerDeps): EventsAdmin {
  if (!deps.events) throw new StorageError('not_found', 'no events are configured (WEBHOOK_URL, EVENTS_CONFIG or EVENTS_REDIS_URL)')
  return deps.events
}

export function createEventsAdminHandler(deps: HandlerDeps) {
  const app = createHandlerApp(deps, eventsAdminRoutes)
  const guard = async (c: Context) => {
    await authorizeAdmin(c)
    return adminOf(deps)
  }
  app.openapi(overviewRoute, async (c) => c.json(await (await guard(c)).overview(), 200, { 'Cache-Control': 'no-store' }))
  app.openapi(deadLettersRoute, async (c) => {
    const events = await guard(c)
    const { store } = c.req.valid('param')
    deps.stores.get(store)
    const { consumer, limit, cursor } = c.req.valid('query')
    const page = await events.deadLetters(store, {
      limit: limit ?? 100,
      ...(consumer !== undefined ? { consumer } : {}),
      ...(cursor !== undefined ? { cursor } : {}),
    })
    return c.json(page, 200, { 'Cache-Control': 'no-store' })
  })
  for (const [route, act] of [
    [replayRoute, (e: EventsAdmin, store: string, consumer: string, ids?: string[]) => e.replay(store, consumer, ids)],
    [discardRoute, (e: EventsAdmin, store: string, consumer: string, ids?: string[]) => e.discard(store, consumer, ids)],
  ] as const) {
    app.openapi(withBoundedJsonBody(route, deps), async (c) => {
      const events = await guard(c)
      const { store } = c.req.valid('param')
      deps.stores.get(store)
      const { consumer, ids } = c.req.valid('json')
      return c.json(await act(events, store, consumer, ids), 200)
    })
  }
  app.openapi(enableRoute, async (c) => {
    const events = await guard(c)
    const { consumer } = c.req.valid('param')
    if (!(await events.enable(consumer))) throw new StorageError('not_found', `there is no consumer named "${consumer}"`)
    return c.body(null, 204)
  })
  return app
}
