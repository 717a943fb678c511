/**
 * The tus 1.0 protocol's vocabulary: versions, extensions, and the parsing of its request headers.
 * Every malformed header is a client error with our JSON shape (SPEC 3.5).
 */
import { type ChecksumAlgorithm, StorageError } from '../../storage/index.js'

export const TUS_VERSION = '1.0.0'
export const TUS_EXTENSIONS = [
  'creation',
  'creation-with-upload',
  'creation-defer-length',
  'termination',
  'checksum',
  'expiration',
] as const
export const CHECKSUM_ALGORITHMS: readonly ChecksumAlgorithm[] = ['sha1', 'sha256']
export const OFFSET_STREAM = 'application/offset+octet-stream'
/** The status tus gives a checksum mismatch (checksum extension). */
export const CHECKSUM_MISMATCH_STATUS = 460

/** Thrown for a missing or unsupported `Tus-Resumable`: `412`, answered with `Tus-Version`. */
export class UnsupportedVersion extends StorageError {
  constructor(given: string | undefined) {
    super(
      'precondition_failed',
      given === undefined
        ? `the Tus-Resumable header is required (this server speaks tus ${TUS_VERSION})`
        : `tus version "${given}" is not supported; this server speaks ${TUS_VERSION}`,
      { details: { tusVersion: [TUS_VERSION] } },
    )
  }
}

export function checkTusResumable(value: string | undefined): void {
  if (value?.trim() !== TUS_VERSION) throw new UnsupportedVersion(value)
}

const DIGITS = /^\d{1,16}$/

/** A header holding a byte count (`Upload-Offset`, `Upload-Length`): digits only. */
export function parseByteCount(name: string, value: string): number {
  const n = DIGITS.test(value.trim()) ? Number(value.trim()) : Number.NaN
  if (!Number.isSafeInteger(n)) throw new StorageError('invalid_request', `${name} must be a non-negative integer`)
  return n
}

/** True for `application/offset+octet-stream` (parameters and case aside). */
export function isOffsetStream(contentType: string | undefined): boolean {
  return contentType?.split(';')[0]?.trim().toLowerCase() === OFFSET_STREAM
}

export function requireOffsetStream(contentType: string | undefined): void {
  if (!isOffsetStream(contentType)) {
    throw new StorageError('unsupported_media_type', `upload data must be sent as Content-Type: ${OFFSET_STREAM}`, {
      details: { contentType: contentType ?? null },
    })
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/
const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * `Upload-Metadata`: comma-separated `key base64value` pairs (the value may be absent). Keys are
 * unique, non-empty, without spaces or commas. Values come back as UTF-8 text, null when absent.
 */
export function parseUploadMetadata(header: string): Map<string, string | null> {
  const entries = new Map<string, string | null>()
  if (header.trim() === '') return entries
  for (const pair of header.split(',')) {
    const [key, value, ...rest] = pair.trim().split(' ')
    if (!key || rest.length > 0) throw badMetadata('each pair is a key, a space and a base64 value')
    if (entries.has(key)) throw badMetadata(`the key "${key}" appears twice`)
    if (value === undefined || value === '') {
      entries.set(key, null)
      continue
    }
    if (!BASE64.test(value) || value.length % 4 === 1) throw badMetadata(`the value of "${key}" is not base64`)
    try {
      entries.set(key, utf8.decode(Buffer.from(value, 'base64')))
    } catch {
      throw badMetadata(`the value of "${key}" is not UTF-8 text`)
    }
  }
  return entries
}

const badMetadata = (why: string) => new StorageError('invalid_request', `Upload-Metadata is malformed: ${why}`)

const DIGEST_BYTES: Record<ChecksumAlgorithm, number> = { sha1: 20, sha256: 32 }

/** `Upload-Checksum: <algorithm> <base64 digest>`, as the hex digest the storage core checks. */
export function parseUploadChecksum(header: string): { algorithm: ChecksumAlgorithm; hex: string } {
  const [name, digest, ...rest] = header.trim().split(/\s+/)
  const algorithm = name?.toLowerCase() as ChecksumAlgorithm
  if (!CHECKSUM_ALGORITHMS.includes(algorithm)) {
    throw new StorageError('invalid_request', `checksum algorithm "${name ?? ''}" is not supported; use ${CHECKSUM_ALGORITHMS.join(' or ')}`)
  }
  const bytes = digest && rest.length === 0 && BASE64.test(digest) ? Buffer.from(digest, 'base64') : Buffer.alloc(0)
  if (bytes.length !== DIGEST_BYTES[algorithm]) {
    throw new StorageError('invalid_request', `Upload-Checksum must be "${algorithm} <base64 digest of ${DIGEST_BYTES[algorithm]} bytes>"`)
  }
  return { algorithm, hex: bytes.toString('hex') }
}

/** RFC 9110 date, as `Upload-Expires` wants it. */
export const httpDate = (iso: string): string => new Date(iso).toUTCString()
