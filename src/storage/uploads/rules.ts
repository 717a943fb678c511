/**
 * The rules of uploads in parts and appends (SPEC 3.3), which the engine applies on every driver:
 * ids, part numbers, expiry, sizes, and which parts a completion assembles.
 */
import { randomBytes } from 'node:crypto'
import { offsetMismatch, payloadTooLarge, StorageError } from '../errors.js'
import type { CreateUploadOptions, PartInfo, UploadSession, UploadStatus, WritePreconditions } from '../types.js'

export const MAX_PART_NUMBER = 10_000
export const DEFAULT_PART_SIZE_LIMIT = 1024 ** 3
export const DEFAULT_UPLOAD_TTL_MS = 24 * 60 * 60 * 1000

export interface UploadPolicy {
  /** Largest accepted part, in bytes. */
  partSizeLimit: number
  /** How long an unfinished upload lives. */
  ttlMs: number
  /**
   * On stores that cannot tell a dead process from a slow one (a driver without `exclusive`, such as
   * MongoDB), how long a completion holds its upload unless it renews that: a completion that died
   * blocks a retry at most this long.
   */
  completionLeaseMs: number
}

export const defaultUploadPolicy: UploadPolicy = {
  partSizeLimit: DEFAULT_PART_SIZE_LIMIT,
  ttlMs: DEFAULT_UPLOAD_TTL_MS,
  completionLeaseMs: 30_000,
}

/** What an upload in parts keeps until it completes: where the file goes, with what, under which conditions. */
export interface UploadRecord extends UploadSession, WritePreconditions {
  contentType?: string
  metadata: Record<string, unknown>
  /** Limit on the assembled file. */
  maxBytes?: number
  /** Opaque strings of a protocol layer (tus `Upload-Metadata`). */
  attributes?: Record<string, string>
  /** Who created it (CreateUploadOptions.owner). */
  owner?: string
}

/**
 * A new upload's record: a fresh id, the part size limit (never over the file's), the expiry, and the
 * total size and attributes when given (checked beforehand with `checkCreateOptions`).
 */
export function newUploadRecord(
  path: string,
  policy: UploadPolicy,
  options: CreateUploadOptions,
  now = new Date(),
): UploadRecord {
  return {
    uploadId: newUploadId(),
    path,
    partSizeLimit: Math.min(policy.partSizeLimit, options.maxBytes ?? Number.POSITIVE_INFINITY),
    createdAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + policy.ttlMs).toISOString(),
    metadata: options.metadata ?? {},
    ...(options.contentType !== undefined ? { contentType: options.contentType } : {}),
    ...(options.mustNotExist ? { mustNotExist: true } : {}),
    ...(options.ifMatch ? { ifMatch: options.ifMatch } : {}),
    ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}),
    ...(options.totalSize !== undefined ? { totalSize: options.totalSize } : {}),
    ...(options.attributes !== undefined ? { attributes: options.attributes } : {}),
    ...(options.owner !== undefined ? { owner: options.owner } : {}),
  }
}

/** The part of a record a client sees when it creates an upload (the total size once known). */
export function publicSession(record: UploadSession): UploadSession {
  const { uploadId, path, partSizeLimit, createdAt, expiresAt, totalSize } = record
  return { uploadId, path, partSizeLimit, createdAt, expiresAt, ...(totalSize !== undefined ? { totalSize } : {}) }
}

/** An upload's status: its session, what the file will get, and the parts received so far. */
export function uploadStatusOf(record: UploadRecord, parts: PartInfo[]): UploadStatus {
  return {
    ...publicSession(record),
    ...(record.contentType !== undefined ? { contentType: record.contentType } : {}),
    metadata: record.metadata,
    attributes: record.attributes ?? {},
    ...(record.owner !== undefined ? { owner: record.owner } : {}),
    parts,
    received: receivedBytes(parts),
  }
}

/** The conditions a completion checks again, as they were given at creation. */
export function uploadConditions(record: UploadRecord): WritePreconditions {
  return {
    ...(record.mustNotExist ? { mustNotExist: true } : {}),
    ...(record.ifMatch ? { ifMatch: record.ifMatch } : {}),
  }
}

const UPLOAD_ID = /^[0-9a-f]{32}$/

export const newUploadId = (): string => randomBytes(16).toString('hex')

/** Throws `not_found` for anything that cannot be an upload id, before it reaches a file name or a query. */
export function checkUploadId(uploadId: string): void {
  if (!UPLOAD_ID.test(uploadId)) throw uploadNotFound(uploadId)
}

export const uploadNotFound = (uploadId: string) =>
  new StorageError('not_found', 'no such upload (it may have completed, been aborted or expired)', {
    details: { uploadId },
  })

export function checkPartNumber(part: number): void {
  if (!Number.isInteger(part) || part < 1 || part > MAX_PART_NUMBER) {
    throw new StorageError('invalid_request', `part numbers run from 1 to ${MAX_PART_NUMBER}`)
  }
}

export const isExpired = (expiresAt: string, now = new Date()): boolean => Date.parse(expiresAt) <= now.getTime()

/**
 * The parts a completion assembles, in order of their numbers. Without a list: every received part,
 * which must run 1..N without a gap (appended parts may number past MAX_PART_NUMBER). With a list:
 * exactly those, each named once (in any order: a part's number is its place), each received.
 */
export function selectParts(received: PartInfo[], requested?: number[]): PartInfo[] {
  const byNumber = new Map(received.map((p) => [p.part, p]))
  const numbers = [...(requested ?? byNumber.keys())].sort((a, b) => a - b)
  if (numbers.length === 0) {
    throw new StorageError('upload_incomplete', 'no parts have been uploaded', { details: { missing: [1] } })
  }
  const missing: number[] = []
  const selected: PartInfo[] = []
  let previous = 0
  for (const n of numbers) {
    if (requested) checkPartNumber(n)
    if (n === previous) throw new StorageError('invalid_request', `part ${n} is listed twice`)
    previous = n
    const part = byNumber.get(n)
    if (part) selected.push(part)
    else missing.push(n)
  }
  if (requested === undefined) {
    for (let n = 1; n < previous; n++) if (!byNumber.has(n)) missing.push(n)
    missing.sort((a, b) => a - b)
  }
  if (missing.length > 0) {
    throw new StorageError('upload_incomplete', `missing parts: ${missing.slice(0, 20).join(', ')}`, {
      details: { missing },
    })
  }
  return selected
}

/** What a session records about its size: given at creation or declared later, and the total limit. */
export interface SizeRules {
  totalSize?: number
  maxBytes?: number
}

export const receivedBytes = (parts: PartInfo[]): number => parts.reduce((sum, p) => sum + p.size, 0)

/** The most bytes the parts of an upload may add up to (Infinity when unbounded). */
export const sizeCap = (rules: SizeRules): number =>
  Math.min(rules.totalSize ?? Number.POSITIVE_INFINITY, rules.maxBytes ?? Number.POSITIVE_INFINITY)

/** Throws `payload_too_large` when parts adding up to `total` bytes would not fit the upload. */
export function checkTotal(rules: SizeRules, total: number): void {
  if (total <= sizeCap(rules)) return
  throw rules.totalSize !== undefined && total > rules.totalSize
    ? new StorageError('payload_too_large', `the upload is declared as ${rules.totalSize} bytes; this would make it ${total}`, {
        details: { limit: rules.totalSize },
      })
    : payloadTooLarge(rules.maxBytes!)
}

/**
 * The parts a completion assembles, given the session's rules: with a declared `totalSize` they must
 * add up to exactly that, and an upload declared empty completes with no part at all.
 */
export function partsToAssemble(rules: SizeRules, received: PartInfo[], requested?: number[]): PartInfo[] {
  if (rules.totalSize === 0 && received.length === 0 && requested === undefined) return []
  const parts = selectParts(received, requested)
  const total = receivedBytes(parts)
  if (rules.totalSize !== undefined && total !== rules.totalSize) {
    throw new StorageError('upload_incomplete', `${total} of the declared ${rules.totalSize} bytes have arrived`, {
      details: { received: total, totalSize: rules.totalSize },
    })
  }
  return parts
}

/** Checks an append before it is committed: it must continue at `received`, and fit. */
export function checkAppend(rules: SizeRules, offset: number, received: number, size: number): void {
  if (offset !== received) throw offsetMismatch(offset, received)
  checkTotal(rules, received + size)
}

/** Checks a size declared later (tus creation-defer-length) against what the session already has. */
export function checkDeclaredSize(rules: SizeRules, received: number, totalSize: number): void {
  checkSize(totalSize, 'the upload size')
  if (rules.totalSize !== undefined && rules.totalSize !== totalSize) {
    throw new StorageError('invalid_request', `the upload size is already set to ${rules.totalSize} bytes`)
  }
  if (totalSize < received) {
    throw new StorageError('invalid_request', `${received} bytes have already arrived, more than ${totalSize}`)
  }
  if (rules.maxBytes !== undefined && totalSize > rules.maxBytes) throw payloadTooLarge(rules.maxBytes)
}

const MAX_ATTRIBUTE_BYTES = 16 * 1024

/** Checks what `createUpload` is given beyond a path: the declared size and the attributes. */
export function checkCreateOptions(options: CreateUploadOptions): void {
  if (options.totalSize !== undefined) {
    checkSize(options.totalSize, 'the upload size')
    if (options.maxBytes !== undefined && options.totalSize > options.maxBytes) throw payloadTooLarge(options.maxBytes)
  }
  if (options.attributes !== undefined) {
    let bytes = 0
    for (const [key, value] of Object.entries(options.attributes)) {
      if (typeof value !== 'string') throw new StorageError('invalid_request', `the attribute "${key}" is not a string`)
      bytes += Buffer.byteLength(key) + Buffer.byteLength(value)
    }
    if (bytes > MAX_ATTRIBUTE_BYTES) {
      throw new StorageError('invalid_request', `the upload's attributes are larger than ${MAX_ATTRIBUTE_BYTES} bytes`)
    }
  }
}

function checkSize(size: number, what: string): void {
  if (!Number.isSafeInteger(size) || size < 0) throw new StorageError('invalid_request', `${what} must be a whole number of bytes`)
}
