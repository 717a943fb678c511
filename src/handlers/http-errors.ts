/**
 * The JSON error shape of SPEC 3.5 and the mapping from storage error codes to HTTP statuses.
 * Every handler app installs `onError` and `validationHook`, so a handler mounted alone answers
 * errors exactly as the composed service does.
 */
import { z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { AccessError } from '../auth/index.js'
import { type ErrorCode, errorCodes, StorageError } from '../storage/index.js'

export const statusOf: Record<ErrorCode, ContentfulStatusCode> = {
  invalid_request: 400,
  invalid_path: 400,
  checksum_mismatch: 400,
  unauthorized: 401,
  forbidden: 403,
  quota_exceeded: 403,
  not_found: 404,
  unknown_store: 404,
  already_exists: 409,
  directory_not_empty: 409,
  upload_incomplete: 409,
  offset_mismatch: 409,
  precondition_failed: 412,
  rate_limited: 429,
  request_timeout: 408,
  payload_too_large: 413,
  unsupported_media_type: 415,
  range_not_satisfiable: 416,
  store_unavailable: 503,
  method_not_allowed: 405,
  insufficient_storage: 507,
  not_supported: 501,
  rejected_by_hook: 403,
  hook_unavailable: 503,
}

/** A refusal that keeps a status of its own: a hook's 4xx answer (`rejected_by_hook`). */
export class StatusError extends StorageError {
  constructor(
    readonly status: ContentfulStatusCode,
    code: ErrorCode,
    message: string,
    details?: unknown,
  ) {
    super(code, message, details === undefined ? {} : { details })
  }
}

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.enum(errorCodes).openapi({ example: 'not_found' }),
      message: z.string().openapi({ example: '"reports/2024.pdf" does not exist' }),
      details: z.unknown().optional(),
    }),
  })
  .openapi('Error')

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown }
}

export function errorBody(code: ErrorCode, message: string, details?: unknown): ErrorBody {
  return { error: { code, message, ...(details === undefined ? {} : { details }) } }
}

export function errorResponse(c: Context, error: StorageError, headers?: Record<string, string>): Response {
  const status = error instanceof StatusError ? error.status : statusOf[error.code]
  return c.json(errorBody(error.code, error.message, error.details), status, headers)
}

/** Statuses Hono or its middleware raise as HTTPException, mapped into our codes. */
function fromHttpException(e: HTTPException): StorageError {
  switch (e.status) {
    case 401:
      return new StorageError('unauthorized', e.message || 'authentication is required')
    case 403:
      return new StorageError('forbidden', e.message || 'forbidden')
    case 404:
      return new StorageError('not_found', e.message || 'not found')
    case 413:
      return new StorageError('payload_too_large', e.message || 'the body is too large')
    case 415:
      return new StorageError('invalid_request', 'this route takes a JSON body (Content-Type: application/json)')
    default:
      if (e.status >= 400 && e.status < 500) return new StorageError('invalid_request', e.message || 'bad request')
      return new StorageError('store_unavailable', e.message || 'the service could not answer')
  }
}

/** Errors a driver raises that are not StorageErrors but mean the backing service is unreachable. */
const UNAVAILABLE_NAMES = new Set([
  'MongoServerSelectionError',
  'MongoNetworkError',
  'MongoNetworkTimeoutError',
  'MongoNotConnectedError',
  'MongoTopologyClosedError',
  'MongoPoolClearedError',
])

export function toStorageError(e: unknown): StorageError | null {
  if (e instanceof StorageError) return e
  if (e instanceof HTTPException) return fromHttpException(e)
  if (e instanceof Error && UNAVAILABLE_NAMES.has(e.name)) {
    return new StorageError('store_unavailable', 'the store is unavailable right now; try again shortly')
  }
  return null
}

/** Where an unexpected error (a bug, answered 500) is told: stderr, unless the app says otherwise. */
let reportUnexpected = (e: Error, c: Context): void => console.error(`[filestorage] unexpected error on ${c.req.method} ${c.req.path}:`, e)

/** Tells unexpected errors to `report` instead of stderr (the service: its logger), for the whole process, until the returned function puts back the previous one. */
export function onUnexpectedError(report: (e: Error, c: Context) => void): () => void {
  const previous = reportUnexpected
  reportUnexpected = report
  return () => {
    if (reportUnexpected === report) reportUnexpected = previous
  }
}

/** `onError` for every handler app: known errors become SPEC 3.5 JSON; anything else is a bug (500). */
export function onError(e: Error, c: Context): Response {
  const known = toStorageError(e)
  // 401 and 403 carry their WWW-Authenticate challenge.
  if (known) return errorResponse(c, known, known instanceof AccessError ? known.headers : undefined)
  reportUnexpected(e, c)
  return c.json({ error: { code: 'internal_error', message: 'an unexpected error occurred' } }, 500)
}

/** `notFound` for apps composing the handlers: unknown routes answer JSON too. */
export function notFoundHandler(c: Context): Response {
  return c.json(errorBody('not_found', `no route for ${c.req.method} ${c.req.path}`), 404)
}

/** zod-openapi's hook: validation failures become `400 invalid_request` with the issues as details. */
export function validationHook(
  result: { success: true } | { success: false; error: z.ZodError },
  c: Context,
): Response | undefined {
  if (result.success) return undefined
  const issues = result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }))
  const first = issues[0]
  const message = first ? `${first.path ? `${first.path}: ` : ''}${first.message}` : 'invalid request'
  return c.json(errorBody('invalid_request', message, { issues }), 400)
}

/** OpenAPI response entries for the error statuses a route can give. */
export function errorResponses(...statuses: number[]) {
  const descriptions: Record<number, string> = {}
  for (const [code, status] of Object.entries(statusOf)) {
    descriptions[status] = descriptions[status] ? `${descriptions[status]}, \`${code}\`` : `\`${code}\``
  }
  return Object.fromEntries(
    statuses.map((s) => [
      s,
      { description: `Error: ${descriptions[s] ?? 'see message'}`, content: { 'application/json': { schema: ErrorSchema } } },
    ]),
  )
}
