/**
 * Typed errors of the storage core. Each carries a stable code; the HTTP layer maps codes to
 * statuses (SPEC 3.5). The core itself knows nothing of HTTP.
 */
export const errorCodes = [
  'invalid_request',
  'invalid_path',
  'checksum_mismatch',
  'unauthorized',
  'forbidden',
  /** A change would take a store or a path prefix over its quota (quotas/). */
  'quota_exceeded',
  'not_found',
  'unknown_store',
  'already_exists',
  'directory_not_empty',
  'upload_incomplete',
  'offset_mismatch',
  'precondition_failed',
  /** Too many requests or bytes for the principal's rate limit (HTTP only). */
  'rate_limited',
  'request_timeout',
  'payload_too_large',
  'unsupported_media_type',
  'range_not_satisfiable',
  'store_unavailable',
  /** A route asked with a method it does not take (HTTP only). */
  'method_not_allowed',
  'insufficient_storage',
  /** A blocking hook (pre-upload, pre-delete) refused the change (HTTP only). */
  'rejected_by_hook',
  /** A blocking hook did not answer, and its policy is to refuse then (HTTP only). */
  'hook_unavailable',
  /** The store cannot do what was asked (a conditional write on an S3 server without conditional writes). */
  'not_supported',
] as const

export type ErrorCode = (typeof errorCodes)[number]

export class StorageError extends Error {
  readonly code: ErrorCode
  readonly details: unknown

  constructor(code: ErrorCode, message: string, options: { details?: unknown; cause?: unknown } = {}) {
    super(message, { cause: options.cause })
    this.name = 'StorageError'
    this.code = code
    this.details = options.details
  }
}

export const isStorageError = (e: unknown, code?: ErrorCode): e is StorageError =>
  e instanceof StorageError && (code === undefined || e.code === code)

export const invalidPath = (message: string, path?: string) =>
  new StorageError('invalid_path', message, path === undefined ? {} : { details: { path } })

export const notFound = (what: string) => new StorageError('not_found', `${what} does not exist`)

export const alreadyExists = (what: string) => new StorageError('already_exists', `${what} already exists`)

export const preconditionFailed = (message: string) => new StorageError('precondition_failed', message)

/** A write under `file`, which is a file, not a folder. */
export const fileInTheWay = (file: string) => alreadyExists(`a file at "${file}", so nothing can be stored under it`)

/** An operation that gave up after its target changed under it again and again (other writers racing it). */
export const keepsChanging = (what: string) => new StorageError('store_unavailable', `${what} keeps changing; try again`)

/** The store has no room left for the write (a full disk, an exhausted quota). */
export const insufficientStorage = (cause?: unknown) =>
  new StorageError('insufficient_storage', 'the store is full; free some space, or try another instance', { cause })

/** What the store cannot do at all (SPEC 3.5 `501`), rather than do unsafely. */
export const notSupported = (message: string) => new StorageError('not_supported', message)

export const payloadTooLarge = (limit: number) =>
  new StorageError('payload_too_large', `the body is larger than the limit of ${limit} bytes`, {
    details: { limit },
  })

export const checksumMismatch = (expected: string, actual: string, algorithm = 'sha256') =>
  new StorageError('checksum_mismatch', `the content does not match the given ${algorithm}`, {
    details: { expected, actual },
  })

/** An append that does not continue where the upload stands (another write came first, or the client lost track). */
export const offsetMismatch = (offset: number, received: number) =>
  new StorageError('offset_mismatch', `the upload stands at byte ${received}, not ${offset}`, {
    details: { offset: received },
  })
