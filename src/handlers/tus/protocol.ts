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

/**
 * A byte count (`Upload-Offset`, `Upload-Length`): plain decimal digits without a sign or a leading
 * zero, at most 15 of them (below 2^53, so every one is exact as a number). The document's pattern.
 */
export const BYTE_COUNT = /^(?:0|[1-9][0-9]{0,14})$/

/** A header holding a byte count: digits only (`BYTE_COUNT`). */
export function parseByteCount(name: string, value: string): number {
  if (!BYTE_COUNT.test(value.trim())) {
    throw new StorageError('invalid_request', `${name} must be a non-negative integer in plain decimal digits (at most 15)`)
  }
  return Number(value.trim())
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

/** Base64 as RFC 4648 writes it (padded), which tus asks for. */
const BASE64 = '(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?'
/** A key: visible ASCII (tus: ASCII, no space, no comma, not empty). */
const METADATA_PAIR = `[\\x21-\\x2b\\x2d-\\x7e]+(?: ${BASE64})?`

/**
 * `Upload-Metadata`'s grammar: comma-separated pairs of a key and, after one space, its base64 value
 * (which may be empty or absent). The document's pattern; what no pattern can say is checked after it:
 * keys are unique and values decode to UTF-8 text.
 */
export const UPLOAD_METADATA = new RegExp(`^(?:${METADATA_PAIR}(?:[ \\t]*,[ \\t]*${METADATA_PAIR})*)?$`)

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** `Upload-Metadata` (`UPLOAD_METADATA`), as its keys and their values as UTF-8 text, null when absent. */
export function parseUploadMetadata(header: string): Map<string, string | null> {
  const entries = new Map<string, string | null>()
  if (!UPLOAD_METADATA.test(header.trim())) {
    throw badMetadata('it takes comma-separated pairs of a key (visible ASCII) and, after a space, its value in padded base64')
  }
  if (header.trim() === '') return entries
  for (const pair of header.split(',')) {
    const [key, value] = pair.trim().split(' ') as [string, string | undefined]
    if (entries.has(key)) throw badMetadata(`the key "${key}" appears twice`)
    if (value === undefined || value === '') {
      entries.set(key, null)
      continue
    }
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
/** A digest's base64, padded or not (both sizes leave two bytes over, so one `=`). */
const DIGEST_BASE64: Record<ChecksumAlgorithm, string> = { sha1: '[A-Za-z0-9+/]{27}=?', sha256: '[A-Za-z0-9+/]{43}=?' }

/** `Upload-Checksum`'s grammar: a supported algorithm, one space, its digest in base64. The document's pattern. */
export const UPLOAD_CHECKSUM = new RegExp(`^(?:${CHECKSUM_ALGORITHMS.map((a) => `${a} ${DIGEST_BASE64[a]}`).join('|')})$`)

/** `Upload-Checksum: <algorithm> <base64 digest>` (`UPLOAD_CHECKSUM`), as the hex digest the storage core checks. */
export function parseUploadChecksum(header: string): { algorithm: ChecksumAlgorithm; hex: string } {
  const [name, digest] = header.trim().split(' ')
  const algorithm = name as ChecksumAlgorithm
  if (!CHECKSUM_ALGORITHMS.includes(algorithm)) {
    throw new StorageError('invalid_request', `checksum algorithm "${name ?? ''}" is not supported; use ${CHECKSUM_ALGORITHMS.join(' or ')}`)
  }
  if (!UPLOAD_CHECKSUM.test(header.trim())) {
    throw new StorageError('invalid_request', `Upload-Checksum must be "${algorithm} <base64 digest of ${DIGEST_BYTES[algorithm]} bytes>"`)
  }
  return { algorithm, hex: Buffer.from(digest!, 'base64').toString('hex') }
}

/** RFC 9110 date, as `Upload-Expires` wants it. */
export const httpDate = (iso: string): string => new Date(iso).toUTCString()
