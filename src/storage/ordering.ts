/**
 * The one listing order every driver produces: folders first, then files, each by name in UTF-8
 * byte order (code point order, which is also MongoDB's binary string order), and recursive
 * listings by full path in the same order. Cursors name the last entry of a page.
 */
import { StorageError } from './errors.js'
import type { StoredEntry } from './types.js'

/** Compares strings by code point, i.e. UTF-8 byte order (JS `<` compares UTF-16 units). */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!
    const y = b.codePointAt(i)!
    if (x !== y) return x < y ? -1 : 1
    if (x > 0xffff) i++ // a surrogate pair: both strings had the same pair
  }
  return a.length - b.length
}

const kindRank = (e: { type: string }) => (e.type === 'directory' ? 0 : 1)

/** Order of one folder's entries: folders first, then files, each by name. */
export function compareEntries(a: StoredEntry, b: StoredEntry): number {
  return kindRank(a) - kindRank(b) || compareCodePoints(a.name, b.name)
}

/** Where a page ended. One-level listings resume after (type, name); recursive ones after a path. */
export type ListPosition =
  | { recursive: false; type: 'directory' | 'file'; name: string }
  | { recursive: true; path: string }

/** What a cursor looks like: base64url, unpadded (`encodeCursor`). Anything else is not one. */
export const CURSOR = /^[A-Za-z0-9_-]+$/

export function encodeCursor(position: ListPosition): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url')
}

export function decodeCursor(cursor: string, recursive: boolean): ListPosition {
  try {
    // Buffer's decoder skips what is not base64url, which would make junk around a cursor one.
    if (!CURSOR.test(cursor)) throw new Error('not base64url')
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as ListPosition
    if (value.recursive === recursive) {
      if (value.recursive && typeof value.path === 'string') return value
      if (!value.recursive && (value.type === 'directory' || value.type === 'file') && typeof value.name === 'string') {
        return value
      }
    }
  } catch {
    // fall through
  }
  throw new StorageError('invalid_request', 'the cursor is not one this listing returned')
}

/** True when the entry comes after the position in listing order. */
export function isAfter(entry: StoredEntry, position: ListPosition): boolean {
  if (position.recursive) return compareCodePoints(entry.path, position.path) > 0
  return compareEntries(entry, { type: position.type, name: position.name, path: '' } as StoredEntry) > 0
}

export const DEFAULT_LIST_LIMIT = 1000
export const MAX_LIST_LIMIT = 10000

/** The page size a listing uses: the asked limit within 1..MAX_LIST_LIMIT, DEFAULT_LIST_LIMIT when none. */
export const listLimit = (limit?: number): number => Math.min(Math.max(1, limit ?? DEFAULT_LIST_LIMIT), MAX_LIST_LIMIT)

/** Cuts a sorted run of entries into a page, with the cursor for the next one. */
export function toPage(sorted: StoredEntry[], limit: number, recursive: boolean) {
  const entries = sorted.slice(0, limit)
  const last = entries.at(-1)
  const more = sorted.length > limit && last !== undefined
  return {
    entries,
    nextCursor: more
      ? encodeCursor(recursive ? { recursive: true, path: last.path } : { recursive: false, type: last.type, name: last.name })
      : null,
  }
}
