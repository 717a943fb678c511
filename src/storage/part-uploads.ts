/**
 * Rules shared by every driver's part uploads (SPEC 3.3): ids, part numbers, expiry, and which
 * parts a completion assembles.
 */
import { randomBytes } from 'node:crypto'
import { StorageError } from './errors.js'
import type { PartInfo } from './types.js'

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
