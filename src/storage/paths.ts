/**
 * The path rules of SPEC 3.2, in one place. Every driver receives only paths that went through
 * `parsePath`, so a driver never sees `..`, an empty segment or the reserved name.
 */
import { invalidPath, StorageError } from './errors.js'

/** Top-level name kept for the service's own bookkeeping (the disk driver's sidecar data). */
export const RESERVED_NAME = '.filestorage'
export const MAX_SEGMENT_BYTES = 255
export const MAX_PATH_BYTES = 1024

// C0 controls, DEL and C1 controls.
// eslint-disable-next-line no-control-regex -- refusing control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u

/** The root folder: the empty path. */
export const ROOT = ''

export interface ParsePathOptions {
  /**
   * The path names a folder (listing, form upload): the empty path is the root, and one trailing
   * slash is accepted ("a/b/" is "a/b").
   */
  folder?: boolean
}

/**
 * Validates and normalizes a decoded path to NFC. Throws `invalid_path` for anything SPEC 3.2
 * refuses; a leading slash is an empty segment and is refused too.
 */
export function parsePath(raw: string, options: ParsePathOptions = {}): string {
  if (typeof raw !== 'string') throw invalidPath('the path must be a string')
  if (raw.includes('\0')) throw invalidPath('the path contains a NUL character')
  if (CONTROL.test(raw)) throw invalidPath('the path contains a control character')
  if (raw.includes('\\')) throw invalidPath('the path contains a backslash')
  if (!raw.isWellFormed()) throw invalidPath('the path is not valid UTF-8')

  let path = raw.normalize('NFC')
  if (options.folder && path.endsWith('/')) path = path.slice(0, -1)
  if (path === '') {
    if (options.folder && raw.length <= 1) return ROOT
    throw invalidPath('the path is empty')
  }
  if (Buffer.byteLength(path, 'utf8') > MAX_PATH_BYTES) {
    throw invalidPath(`the path is longer than ${MAX_PATH_BYTES} bytes`)
  }
  const segments = path.split('/')
  for (const segment of segments) {
    if (segment === '') throw invalidPath('the path has an empty segment', raw)
    if (segment === '.' || segment === '..') throw invalidPath(`the path has a "${segment}" segment`, raw)
    if (Buffer.byteLength(segment, 'utf8') > MAX_SEGMENT_BYTES) {
      throw invalidPath(`a path segment is longer than ${MAX_SEGMENT_BYTES} bytes`)
    }
  }
  if (segments[0] === RESERVED_NAME) throw invalidPath(`"${RESERVED_NAME}" is reserved`, raw)
  return path
}

/** Validates a single name (a file name from a form upload): one segment, no slash. */
export function parseName(raw: string): string {
  if (raw.includes('/')) throw invalidPath('a file name cannot contain a slash')
  const name = parsePath(raw)
  return name
}

export const joinPath = (dir: string, name: string): string => (dir === ROOT ? name : `${dir}/${name}`)

export const parentOf = (path: string): string => {
  const i = path.lastIndexOf('/')
  return i < 0 ? ROOT : path.slice(0, i)
}

export const baseName = (path: string): string => path.slice(path.lastIndexOf('/') + 1)

/** True when `path` is `dir` itself or lies under it. */
export const isWithin = (path: string, dir: string): boolean =>
  dir === ROOT || path === dir || path.startsWith(`${dir}/`)

/** Every ancestor folder of a path, nearest last: "a/b/c" gives ["a", "a/b"]. */
export function ancestorsOf(path: string): string[] {
  const parts = path.split('/')
  const out: string[] = []
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join('/'))
  return out
}

/** Operations on a single file or folder (not the whole store) refuse the root. */
export function invalidPathIfRoot(path: string): void {
  if (path === ROOT) throw invalidPath('this operation needs a path inside the store')
}

/** A move needs two paths inside the store, and a folder cannot go into itself. */
export function checkMovePaths(from: string, to: string): void {
  invalidPathIfRoot(from)
  invalidPathIfRoot(to)
  if (from !== to && isWithin(to, from)) {
    throw new StorageError('invalid_request', 'a folder cannot be moved into itself')
  }
}
