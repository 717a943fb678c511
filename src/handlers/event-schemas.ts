/**
 * The events as consumers receive them (docs/events.md), as zod schemas: the OpenAPI document lists
 * each type under `webhooks` (OpenAPI 3.1), with the Standard Webhooks headers every request carries,
 * and the admin routes return them inside dead letters.
 */
import { createRoute, type RouteConfig, z } from '@hono/zod-openapi'
import { EVENT_SCHEMA_VERSION, EVENT_TYPES, type EventType } from '../storage/index.js'
import { MetadataSchema } from './schemas.js'

export const EventDataSchema = z
  .object({
    schemaVersion: z.literal(EVENT_SCHEMA_VERSION).openapi({ description: 'The version of this shape; a change that breaks a consumer raises it.' }),
    store: z.string().openapi({ example: 'disk' }),
    kind: z.enum(['file', 'directory']).optional().openapi({ description: 'A folder moved or deleted is one event, `directory`, with `files`.' }),
    path: z.string().openapi({ description: 'The file or folder (for a move: where it is now).', example: 'photos/cat.jpg' }),
    from: z.string().optional().openapi({ description: 'Where it was (`file.moved`).' }),
    size: z.number().int().optional(),
    sha256: z.string().optional(),
    etag: z.string().optional(),
    contentType: z.string().optional(),
    metadata: MetadataSchema.optional(),
    files: z.number().int().optional().openapi({ description: 'A folder moved or deleted: how many files it held when the change was made.' }),
    uploadId: z.string().optional().openapi({ description: 'Upload events, and the file event of a completed upload.' }),
    totalSize: z.number().int().optional().openapi({ description: '`upload.created`: the size declared, when known.' }),
    expiresAt: z.string().optional().openapi({ description: '`upload.created`: when the upload expires unless completed.' }),
    subject: z.string().optional().openapi({ description: "The subject of the principal that asked (a token's `sub`, `anonymous`, `signed-url:<kid>`)." }),
    requestId: z.string().optional().openapi({ description: 'The request that made the change (`X-Request-Id`).' }),
  })
  .openapi('EventData')

export const EventPayloadSchema = z
  .object({
    type: z.enum(EVENT_TYPES),
    timestamp: z.string().openapi({ description: 'When the change was recorded (ISO 8601).', example: '2026-11-30T12:00:00.000Z' }),
    data: EventDataSchema,
  })
  .openapi('Event')

const WEBHOOK_HEADERS = z.object({
  'webhook-id': z.string().openapi({ description: "The event's id: the same on every try and after a crash; drop an id seen before.", example: 'evt_0mxd8a3vp0000acw4c' }),
  'webhook-timestamp': z.string().openapi({ description: 'Unix seconds of this try; refuse one more than 5 minutes off.', example: '1796645616' }),
  'webhook-signature': z.string().openapi({
    description: 'Space-separated `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one per secret of the endpoint (rotation).',
  }),
})

const DESCRIPTIONS: Record<EventType, string> = {
  'file.created': 'A file was written where nothing was (an upload, a form, a completed upload, a copy into another store).',
  'file.replaced': 'A file was written over an existing one.',
  'file.moved': 'A file or a folder (`kind: directory`, with everything in it: one event) was moved or renamed within a store.',
  'file.deleted': 'A file or a folder (`kind: directory`, with everything in it: one event) was deleted.',
  'upload.created': 'An upload in parts or a tus upload was created.',
  'upload.completed': 'An upload was completed: its file was written (a `file.created` or `file.replaced` comes with it).',
  'upload.aborted': 'An upload was aborted (abortupload, tus termination).',
  'upload.expired': 'An upload expired unfinished and was removed.',
}

/** One OpenAPI 3.1 webhook per event type: what an endpoint receives and should answer. */
export const webhookRoutes: RouteConfig[] = EVENT_TYPES.map((type) =>
  createRoute({
    method: 'post',
    path: type,
    operationId: `event.${type}`,
    tags: ['events'],
    summary: type,
    description: `${DESCRIPTIONS[type]} Sent to every endpoint whose filters take it, signed per Standard Webhooks 1.0 (docs/events.md).`,
    request: {
      headers: WEBHOOK_HEADERS,
      body: { content: { 'application/json': { schema: EventPayloadSchema.extend({ type: z.literal(type) }) } }, required: true },
    },
    responses: {
      200: { description: 'Taken (any 2xx)' },
      410: { description: 'Gone: the endpoint is disabled until an operator enables it again' },
      500: { description: 'Anything else: tried again later, with backoff (after `Retry-After` when sent), until the event is too old' },
    },
  }),
)
