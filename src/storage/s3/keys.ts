/**
 * Where things live in the bucket: a file at its path under the store's prefix (`S3_PREFIX`), and
 * the store's own bookkeeping under `<prefix>.filestorage/`, a name no path can take (SPEC 3.2).
 *
 * Keys hold at most 1,024 bytes, prefix included: a longer one is `invalid_path`, as is a path that
 * SeaweedFS's gateway would hide from listings (a `.uploads` segment, a folder whose name ends in
 * `.versions`): such a file would be stored but never listed, so it is refused on every S3 server,
 * so that a bucket can move between servers.
 */
import { invalidPath } from '../errors.js'
import { MAX_PATH_BYTES, parsePath, RESERVED_NAME, ROOT } from '../paths.js'

/** S3's limit on a key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024

const HIDDEN_SEGMENT = '.uploads'
const HIDDEN_FOLDER_SUFFIX = '.versions'

/** The bookkeeping's folders under `<prefix>.filestorage/`. */
export const INTERNAL = {
  uploads: 'uploads/',
  expiry: 'expiry/',
  digests: 'digests/',
  hashes: 'hashes/',
  moves: 'moves/',
  probes: 'probes/',
  events: 'events/',
  multipart: 'multipart/',
  /** Records every instance shares (the quota ledger's, shared-records.ts). */
  records: 'records/',
} as const

/**
 * `S3_PREFIX` as keys use it: empty, or segments without empty or dot ones, ending in `/`. Throws a
 * plain Error (a configuration error) for one that cannot be.
 */
export function normalizePrefix(raw = ''): string {
  const trimmed = raw.replace(/^\/+|\/+$/g, '')
  if (trimmed === '') return ''
  for (const segment of trimmed.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') throw new Error(`the key prefix "${raw}" has an empty, "." or ".." segment`)
    if (hiddenName(segment, true)) throw new Error(`the key prefix "${raw}" has a segment SeaweedFS hides ("${segment}")`)
  }
  if (Buffer.byteLength(trimmed) + 1 > MAX_KEY_BYTES - 64) throw new Error(`the key prefix "${raw}" is too long`)
  return `${trimmed}/`
}

function hiddenName(segment: string, folder: boolean): boolean {
  return segment === HIDDEN_SEGMENT || (folder && segment.endsWith(HIDDEN_FOLDER_SUFFIX))
}

export class S3Keys {
  /** `<prefix>.filestorage/` */
  readonly internal: string

  constructor(readonly prefix: string) {
    this.internal = `${prefix}${RESERVED_NAME}/`
  }

  /** The key of the file at `path`; `invalid_path` for one the bucket cannot hold. */
  file(path: string): string {
    const segments = path.split('/')
    segments.forEach((segment, i) => {
      if (hiddenName(segment, i < segments.length - 1)) {
        throw invalidPath(`the s3 store does not take a "${HIDDEN_SEGMENT}" segment or a folder ending in "${HIDDEN_FOLDER_SUFFIX}" (SeaweedFS hides them)`, path)
      }
    })
    const key = this.prefix + path
    if (Buffer.byteLength(key) > MAX_KEY_BYTES) {
      throw invalidPath(`the path with the store's key prefix is longer than ${MAX_KEY_BYTES} bytes`, path)
    }
    return key
  }

  /** What keys of the folder at `dir` start with (the prefix itself for the root). */
  folder(dir: string): string {
    return dir === ROOT ? this.prefix : `${this.prefix}${dir}/`
  }

  /**
   * The path a key names, or undefined for a key that is not a file of the store: outside the
   * prefix, the bookkeeping, a folder marker (`dir/`), or a name the path rules refuse (another
   * tool may have written `a//b`).
   */
  pathOf(key: string): string | undefined {
    if (key.endsWith('/')) return undefined
    return this.#path(key)
  }

  /** The path of the folder a listing's common prefix (`dir/sub/`) names, or undefined as for `pathOf`. */
  folderOf(commonPrefix: string): string | undefined {
    return commonPrefix.endsWith('/') ? this.#path(commonPrefix.slice(0, -1)) : undefined
  }

  #path(key: string): string | undefined {
    if (!key.startsWith(this.prefix) || key.startsWith(this.internal) || `${key}/` === this.internal) return undefined
    const path = key.slice(this.prefix.length)
    try {
      if (parsePath(path) !== path || Buffer.byteLength(path) > MAX_PATH_BYTES) return undefined
    } catch {
      return undefined
    }
    return path
  }

  /** A key of the bookkeeping: `<prefix>.filestorage/<rest>`. */
  reserved(rest: string): string {
    return this.internal + rest
  }
}
