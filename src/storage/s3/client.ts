/**
 * The S3 client of a store, and what its failures mean for the store.
 *
 * - Every request has the store's timeout (`S3_TIMEOUT_SECONDS`) to get its answer (a write held by
 *   a server that cannot place it, as SeaweedFS holds one for 30 s when a volume server is down,
 *   fails then), and a body that stops flowing fails after a longer idle time; the SDK tries once
 *   more. A server that does not answer is `store_unavailable` (503), never a wait without end.
 * - Bodies are sent with `UNSIGNED-PAYLOAD`: the SDK would otherwise hash every byte once more to
 *   sign it (the store hashes them already, and S3 checks the sha256 of a single-request upload
 *   itself), and no CRC32 is added (`requestChecksumCalculation: WHEN_REQUIRED`).
 * - S3's answers become `StorageError`s: 404s and 412s are decided where they are expected; a key
 *   too long is `invalid_path`; anything else the server or the network says is `store_unavailable`
 *   with S3's error in the message (credentials refused, a missing bucket, a 5xx).
 */
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3'
import { isStorageError, StorageError } from '../errors.js'

export interface S3Connection {
  endpoint?: string
  region: string
  forcePathStyle: boolean
  /** Default: the SDK's chain (environment, profile, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }
  /** How long a request may take to be answered. */
  timeoutMs: number
}

/** A body may stall this long (a download whose client reads slowly) before its connection is dropped. */
const IDLE_BODY_MS = 120_000

export function createS3Client(connection: S3Connection, endpoint = connection.endpoint): S3Client {
  const config: S3ClientConfig = {
    region: connection.region,
    forcePathStyle: connection.forcePathStyle,
    maxAttempts: 2,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      requestTimeout: connection.timeoutMs,
      throwOnRequestTimeout: true,
      connectionTimeout: Math.min(connection.timeoutMs, 5_000),
      socketTimeout: Math.max(IDLE_BODY_MS, connection.timeoutMs),
      httpAgent: { keepAlive: true, maxSockets: 64 },
      httpsAgent: { keepAlive: true, maxSockets: 64 },
    },
    ...(endpoint !== undefined ? { endpoint } : {}),
    ...(connection.credentials ? { credentials: connection.credentials } : {}),
  }
  const client = new S3Client(config)
  client.middlewareStack.add(
    (next) => (args) => {
      const request = args.request as { headers?: Record<string, string>; body?: unknown }
      if (request.headers && request.body !== undefined && request.body !== null && typeof request.body !== 'string') {
        request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD'
      }
      return next(args)
    },
    { step: 'build', name: 'filestorageUnsignedPayload' },
  )
  return client
}

interface S3Failure {
  name?: string
  Code?: string
  message?: string
  $metadata?: { httpStatusCode?: number }
}

/** The HTTP status of an S3 failure (undefined for a network failure). */
export const statusOf = (e: unknown): number | undefined => (e as S3Failure | undefined)?.$metadata?.httpStatusCode

const nameOf = (e: unknown): string => (e as S3Failure | undefined)?.name ?? ''

/** The key (or upload) is not there. */
export const isMissing = (e: unknown): boolean =>
  !isStorageError(e) && (statusOf(e) === 404 || ['NoSuchKey', 'NotFound', 'NoSuchUpload'].includes(nameOf(e)))

/**
 * A condition of the request did not hold: 412, or 409 (AWS answers `ConditionalRequestConflict`
 * to a conditional write that raced another; either way: look again).
 */
export const isConditionFailed = (e: unknown): boolean =>
  !isStorageError(e) && (statusOf(e) === 412 || statusOf(e) === 409 || nameOf(e) === 'PreconditionFailed')

/** The server does not implement what was asked (a probe of a capability). */
export const isNotImplemented = (e: unknown): boolean =>
  !isStorageError(e) && (statusOf(e) === 501 || statusOf(e) === 405 || ['NotImplemented', 'MethodNotAllowed'].includes(nameOf(e)))

/** A failure of the S3 server or of the way to it, as the store answers it. */
export function toStorageError(e: unknown): StorageError {
  if (isStorageError(e)) return e
  const name = nameOf(e)
  const status = statusOf(e)
  if (name === 'KeyTooLongError') return new StorageError('invalid_path', 'the path is too long for the bucket', { cause: e })
  if (name === 'EntityTooLarge') return new StorageError('payload_too_large', 'the file is larger than the S3 server takes', { cause: e })
  const what = status === undefined ? (e as Error | undefined)?.message ?? String(e) : `${status} ${name}: ${(e as S3Failure).message ?? ''}`
  return new StorageError('store_unavailable', `the S3 server failed: ${what.trim()}`, { cause: e })
}
