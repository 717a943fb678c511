/**
 * A file's attributes as S3 user metadata (`x-amz-meta-*`), read back from the same response as the
 * bytes (GET) or from a HEAD, so they always describe the version they came with:
 *
 *   fs-sha256    hex sha256 of the bytes (absent on a version written in parts: see digests.ts)
 *   fs-rev       the version's revision token, unique per version written (`lookupRevision`)
 *   fs-created   when the path was first created (ISO), kept across replacements and moves
 *   fs-modified  when this version was written (ISO), kept by moves
 *   fs-meta      the client's JSON metadata (absent when `{}`)
 *
 * The content type is the object's own `Content-Type`, so that any S3 tool sees it.
 *
 * AWS limits user metadata to 2 KB (keys and values, in UTF-8 bytes); SeaweedFS has no limit but
 * lower-cases names and mangles non-ASCII values and surrounding blanks. So names are lower case,
 * values are percent-encoded where they must be (`%`, anything outside printable ASCII, and blanks
 * at the ends or in runs, which signing collapses), and the whole stays within 2 KB, counted with
 * `x-amz-meta-` and room for `fs-sha256` (a move may add it): a write whose metadata does not fit
 * is refused with `invalid_request`, never truncated.
 */
import { randomBytes } from 'node:crypto'
import { StorageError } from '../errors.js'

/** S3's limit on user metadata (AWS), in bytes: names (with `x-amz-meta-`) and values. */
export const MAX_USER_METADATA_BYTES = 2048

const NAMES = { sha256: 'fs-sha256', revision: 'fs-rev', created: 'fs-created', modified: 'fs-modified', metadata: 'fs-meta' } as const
const HEADER_PREFIX = 'x-amz-meta-'
const SHA256_HEX_LENGTH = 64

export interface ObjectAttributes {
  revision: string
  created: string
  modified: string
  metadata: Record<string, unknown>
  /** Known when the version is written in one request (or copied); else in its digest. */
  sha256?: string
}

/** What a version's metadata says about it; fields another tool's object lacks are absent. */
export type StoredAttributes = Partial<ObjectAttributes>

/** Percent-encodes what S3 metadata cannot carry as it is (see above). */
export function encodeValue(value: string): string {
  return value.replace(/[^\x21-\x24\x26-\x7e ]/gu, (ch) => encodeURIComponent(ch)).replace(/^ | $| (?= )/g, '%20')
}

export function decodeValue(value: string): string {
  try {
    return decodeURIComponent(value)
  } catch {
    return value // another tool's value, not ours
  }
}

/**
 * The user metadata of a version: `invalid_request` when it would not fit in 2 KB (with room for a
 * sha256 added later). `attributes.sha256` may be left out (a version written in parts).
 */
export function encodeAttributes(attributes: ObjectAttributes): Record<string, string> {
  const meta: Record<string, string> = {
    [NAMES.revision]: attributes.revision,
    [NAMES.created]: attributes.created,
    [NAMES.modified]: attributes.modified,
  }
  if (attributes.sha256 !== undefined) meta[NAMES.sha256] = attributes.sha256
  if (Object.keys(attributes.metadata).length > 0) meta[NAMES.metadata] = encodeValue(JSON.stringify(attributes.metadata))
  checkMetadataSize(meta)
  return meta
}

/** Throws `invalid_request` when `meta` (and a sha256 it may get) exceeds S3's 2 KB. */
function checkMetadataSize(meta: Record<string, string>): void {
  let size = 0
  for (const [name, value] of Object.entries(meta)) size += HEADER_PREFIX.length + name.length + Buffer.byteLength(value)
  if (meta[NAMES.sha256] === undefined) size += HEADER_PREFIX.length + NAMES.sha256.length + SHA256_HEX_LENGTH
  if (size > MAX_USER_METADATA_BYTES) {
    const room = MAX_USER_METADATA_BYTES - (size - Buffer.byteLength(meta[NAMES.metadata] ?? ''))
    throw new StorageError(
      'invalid_request',
      `metadata is too large for the s3 store: S3 keeps at most ${MAX_USER_METADATA_BYTES} bytes of metadata per file, ` +
        `which leaves ${room} bytes for the JSON of yours (non-ASCII characters and "%" count three times per byte)`,
      { details: { size: Buffer.byteLength(meta[NAMES.metadata] ?? ''), limit: room } },
    )
  }
}

/** Checks that metadata given for a file to be written fits (before its body is read). */
export function checkMetadataFits(metadata: Record<string, unknown> | undefined): void {
  const now = new Date().toISOString()
  encodeAttributes({ revision: newRevision(), created: now, modified: now, metadata: metadata ?? {} })
}

export function decodeAttributes(meta: Record<string, string> | undefined): StoredAttributes {
  if (!meta) return {}
  const out: StoredAttributes = {}
  const sha256 = meta[NAMES.sha256]
  if (sha256 !== undefined && /^[0-9a-f]{64}$/.test(sha256)) out.sha256 = sha256
  const { [NAMES.revision]: revision, [NAMES.created]: created, [NAMES.modified]: modified } = meta
  if (revision) out.revision = revision
  if (created && !Number.isNaN(Date.parse(created))) out.created = created
  if (modified && !Number.isNaN(Date.parse(modified))) out.modified = modified
  const json = meta[NAMES.metadata]
  if (json !== undefined) {
    try {
      const value = JSON.parse(decodeValue(json)) as unknown
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) out.metadata = value as Record<string, unknown>
    } catch {
      // not ours: no metadata
    }
  }
  return out
}

/** The metadata of `attributes` with a sha256: what a copy of a version written in parts carries. */
export function withSha256(meta: Record<string, string> | undefined, sha256: string): Record<string, string> {
  return { ...meta, [NAMES.sha256]: sha256 }
}

/** A new version's revision token (24 hex digits). */
export const newRevision = (): string => randomBytes(12).toString('hex')
