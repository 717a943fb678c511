/**
 * Blocking hooks (docs/events.md): a service the operator names is asked before an upload is
 * accepted (a PUT, each file of a form, a createupload, a tus creation) and before a delete, and
 * may refuse it: the client gets `rejected_by_hook` with the hook's own 4xx status (`403` when it
 * gave none) and its message in `details`. A pre-upload hook may also add metadata to the file.
 * When the hook does not answer, its configured policy decides: refuse (`503 hook_unavailable`) or
 * let the change through. Handlers only ask; `HandlerDeps.hooks` says who answers (src/events).
 */
import type { Context } from 'hono'
import { StorageError, validateMetadata } from '../storage/index.js'
import { principalOf } from './access.js'
import { StatusError } from './http-errors.js'
import { requestIdOf } from './request-id.js'

export interface HookRequest {
  /** The operation asked (`upload`, `uploadForm`, `createUpload`, `tusCreate`, `delete`). */
  operation: string
  store: string
  path: string
  /** The size announced, when known (Content-Length, Upload-Length). */
  size?: number
  contentType?: string
  metadata?: Record<string, unknown>
  recursive?: boolean
  subject?: string
  requestId?: string
}

export type HookVerdict =
  | { allowed: true; /** Metadata to add to the file's (pre-upload). */ metadata?: Record<string, unknown> }
  | { allowed: false; /** The hook's 4xx answer. */ status: number; message: string }
  | { allowed: false; unavailable: true; message: string }

/** Who answers the hooks; either may be absent (no hook). */
export interface ChangeHooks {
  preUpload?(request: HookRequest): Promise<HookVerdict>
  preDelete?(request: HookRequest): Promise<HookVerdict>
}

/**
 * Asks the pre-upload hook, when there is one; answers the metadata the file gets (the client's,
 * with what the hook added), or throws the refusal.
 */
export async function beforeUpload(
  c: Context,
  hooks: ChangeHooks | undefined,
  request: Omit<HookRequest, 'subject' | 'requestId'>,
): Promise<Record<string, unknown> | undefined> {
  if (!hooks?.preUpload) return request.metadata
  const verdict = refusalOr(await hooks.preUpload(withOrigin(c, request)))
  if (!verdict.metadata) return request.metadata
  try {
    return validateMetadata({ ...request.metadata, ...verdict.metadata })
  } catch (e) {
    throw new StorageError('invalid_request', `the metadata with what the pre-upload hook added is refused: ${(e as Error).message}`)
  }
}

/** Asks the pre-delete hook, when there is one; throws the refusal. */
export async function beforeDelete(c: Context, hooks: ChangeHooks | undefined, request: Omit<HookRequest, 'subject' | 'requestId'>): Promise<void> {
  if (hooks?.preDelete) refusalOr(await hooks.preDelete(withOrigin(c, request)))
}

function withOrigin(c: Context, request: Omit<HookRequest, 'subject' | 'requestId'>): HookRequest {
  const subject = principalOf(c)?.sub
  return { ...request, ...(subject !== undefined ? { subject } : {}), requestId: requestIdOf(c) }
}

function refusalOr(verdict: HookVerdict): { metadata?: Record<string, unknown> } {
  if (verdict.allowed) return verdict
  if ('unavailable' in verdict) throw new StorageError('hook_unavailable', `the change could not be checked: ${verdict.message}`)
  const status = verdict.status >= 400 && verdict.status < 500 ? verdict.status : 403
  throw new StatusError(status as 403, 'rejected_by_hook', 'the change was refused', { status: verdict.status, message: verdict.message })
}
