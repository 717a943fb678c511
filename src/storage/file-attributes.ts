/**
 * What every driver derives the same way: ETags, content types, client metadata, timestamps.
 */
import { getMimeType } from 'hono/utils/mime'
import { alreadyExists, preconditionFailed, StorageError } from './errors.js'
import { jsonTextDepth, valueDepth } from './json-depth.js'
import type { StoredEntry, StoredFile, WritePreconditions } from './types.js'

export const etagOf = (sha256: string): string => `"${sha256}"`

/** `If-Match` semantics (RFC 9110 13.1.1, strong comparison): does the list admit this file? */
export function matchesEtag(candidates: string[], file: StoredFile | null): boolean {
  if (file === null) return false
  return candidates.some((c) => c === '*' || c === file.etag)
}

/** Throws `precondition_failed` unless the `If-Match` list (when given) admits the current file. */
export function checkIfMatch(ifMatch: string[] | undefined, current: StoredFile | null): void {
  if (ifMatch !== undefined && !matchesEtag(ifMatch, current)) {
    throw preconditionFailed('the file does not match If-Match')
  }
}

/** `If-Match` on a move or delete, whose target may be a folder: a folder has no ETag, so it never matches. */
export function checkEntryIfMatch(ifMatch: string[] | undefined, entry: StoredEntry): void {
  if (ifMatch === undefined) return
  if (entry.type === 'directory') throw preconditionFailed('a folder has no ETag to match If-Match')
  checkIfMatch(ifMatch, entry)
}

/**
 * The conditions of a write against what is at its path now: a folder is never replaced by a file,
 * `mustNotExist` refuses any file, `ifMatch` must admit the current one.
 */
export function checkWriteConditions(path: string, current: StoredEntry | null, conditions: WritePreconditions): void {
  if (current?.type === 'directory') throw alreadyExists(`a folder at "${path}"`)
  if (current && conditions.mustNotExist) throw preconditionFailed(`"${path}" already exists`)
  checkIfMatch(conditions.ifMatch, current)
}

/** What a move may find at its target: nothing, or (with `overwrite`) an entry of the same type. */
export function checkMoveTarget(source: StoredEntry, target: StoredEntry | null, to: string, overwrite?: boolean): void {
  if (!target) return
  if (!overwrite) throw alreadyExists(`"${to}"`)
  if (target.type !== source.type) {
    throw alreadyExists(`a ${target.type} at "${to}" (it cannot be replaced by a ${source.type})`)
  }
}

// curl -d and HTML forms label any body url-encoded; a stored file is never that, so it means "not said".
const GENERIC_TYPES = new Set(['', 'application/octet-stream', 'application/x-www-form-urlencoded'])

/** The client's content type when it gave a specific one, else a guess from the name. */
export function contentTypeFor(name: string, given?: string): string {
  const type = given?.trim() ?? ''
  if (!GENERIC_TYPES.has(type.split(';')[0]!.trim().toLowerCase())) return type
  return getMimeType(name) ?? 'application/octet-stream'
}

export const MAX_METADATA_BYTES = 16 * 1024
/** How deeply metadata may nest (the object itself is level 1): far more than any real use needs. */
export const MAX_METADATA_DEPTH = 32

const tooDeep = () =>
  new StorageError('invalid_request', `metadata nests deeper than ${MAX_METADATA_DEPTH} levels`, {
    details: { limit: MAX_METADATA_DEPTH },
  })

/** Checks a client metadata object: a JSON object of at most 16 KiB, nested at most 32 deep. */
export function validateMetadata(value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new StorageError('invalid_request', 'metadata must be a JSON object')
  }
  // Before JSON.stringify, which recurses: a few KB nested thousands deep would overflow the stack.
  if (valueDepth(value, MAX_METADATA_DEPTH) > MAX_METADATA_DEPTH) throw tooDeep()
  // JSON numbers beyond a double (1e999) parse as Infinity and would be stored as null: refuse them.
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'number' && !Number.isFinite(v)) {
      throw new StorageError('invalid_request', 'metadata has a number too large to store')
    }
    return v
  })
  const size = Buffer.byteLength(text)
  if (size > MAX_METADATA_BYTES) {
    throw new StorageError('invalid_request', `metadata is larger than ${MAX_METADATA_BYTES} bytes`, {
      details: { size, limit: MAX_METADATA_BYTES },
    })
  }
  return value as Record<string, unknown>
}

/** Parses metadata sent as JSON text (a header or a form field). */
export function parseMetadata(text: string): Record<string, unknown> {
  if (jsonTextDepth(text, MAX_METADATA_DEPTH) > MAX_METADATA_DEPTH) throw tooDeep()
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new StorageError('invalid_request', 'metadata is not valid JSON')
  }
  return validateMetadata(value)
}
