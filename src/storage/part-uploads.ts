/**
 * Rules shared by every driver's part uploads (SPEC 3.3): ids, part numbers, expiry, and which
 * parts a completion assembles.
 */
import { randomBytes } from 'node:crypto'
import { StorageError } from './errors.js'
import type { CreateUploadOptions, PartInfo, UploadSession, UploadStatus, WritePreconditions } from './types.js'

export const MAX_PART_NUMBER = 10_000
export const DEFAULT_PART_SIZE_LIMIT = 1024 ** 3
export const DEFAULT_UPLOAD_TTL_MS = 24 * 60 * 60 * 1000

export interface UploadPolicy {
  /** Largest accepted part, in bytes. */
  partSizeLimit: number
  /** How long an unfinished upload lives. */
  ttlMs: number
}

export const defaultUploadPolicy: UploadPolicy = {
  partSizeLimit: DEFAULT_PART_SIZE_LIMIT,
  ttlMs: DEFAULT_UPLOAD_TTL_MS,
}

/** What an upload in parts keeps until it completes: where the file goes, with what, under which conditions. */
export interface UploadRecord extends UploadSession, WritePreconditions {
  contentType?: string
  metadata: Record<string, unknown>
  /** Limit on the assembled file. */
  maxBytes?: number
}

/** A new upload's record: a fresh id, the part size limit (never over the file's), the expiry. */
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
  }
}

/** The part of a record a client sees when it creates an upload. */
export function publicSession(record: UploadSession): UploadSession {
  const { uploadId, path, partSizeLimit, createdAt, expiresAt } = record
  return { uploadId, path, partSizeLimit, createdAt, expiresAt }
}

export function uploadStatusOf(record: UploadRecord, parts: PartInfo[]): UploadStatus {
  return {
    ...publicSession(record),
    ...(record.contentType !== undefined ? { contentType: record.contentType } : {}),
    metadata: record.metadata,
    parts,
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
 * The parts a completion assembles, in order. Without a list: every received part, which must run
 * 1..N without a gap. With a list: exactly those, ascending, each received.
 */
export function selectParts(received: PartInfo[], requested?: number[]): PartInfo[] {
  const byNumber = new Map(received.map((p) => [p.part, p]))
  const numbers = requested ?? [...byNumber.keys()].sort((a, b) => a - b)
  if (numbers.length === 0) {
    throw new StorageError('upload_incomplete', 'no parts have been uploaded', { details: { missing: [1] } })
  }
  const missing: number[] = []
  const selected: PartInfo[] = []
  let previous = 0
  for (const n of numbers) {
    checkPartNumber(n)
    if (n <= previous) throw new StorageError('invalid_request', 'parts must be listed in ascending order, once each')
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
