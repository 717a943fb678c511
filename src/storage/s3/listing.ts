/**
 * Listings of the s3 store, in the order every store lists (ordering.ts), paged with the same
 * cursors. Folders are implied by keys (`dir/file` makes `dir`); a marker object `dir/` that other
 * tools make is taken as a folder too, and never listed as a file.
 *
 * - Recursive: S3's own order is the API's (keys by UTF-8 bytes, which is code point order), so a
 *   page is a run of keys after the cursor's path (`StartAfter`), pages of S3 chained by tokens.
 * - One level: folders come first, yet S3 lists a level's files and folders interleaved, and
 *   orders folders by `name/` (so `a b/` before `a/`). So a page that still shows folders reads the
 *   whole level (one request per 1,000 entries of that level; subfolders' contents are rolled up
 *   by S3), sorts its folders and takes its files in S3's order; a page that starts among the files
 *   lists them from the cursor on.
 *
 * Files are described with a HEAD each (descriptions.ts). Keys the path rules refuse (written by
 * other tools: `a//b`, control characters) are left out, as is the bookkeeping under `.filestorage/`.
 */
import { StorageError } from '../errors.js'
import { compareCodePoints, decodeCursor, encodeCursor, type ListPosition } from '../ordering.js'
import { baseName, ROOT } from '../paths.js'
import type { ListPage, StoredEntry } from '../types.js'
import type { Bucket, ListedObject } from './bucket.js'
import type { Describer } from './descriptions.js'
import type { S3Keys } from './keys.js'

const missing = (dir: string) => new StorageError('not_found', `the folder "${dir}" does not exist`)

export class Listing {
  constructor(
    private readonly bucket: Bucket,
    private readonly keys: S3Keys,
    private readonly describer: Describer,
  ) {}

  async list(dir: string, options: { recursive: boolean; limit: number; cursor?: string }): Promise<ListPage> {
    const position = options.cursor !== undefined ? decodeCursor(options.cursor, options.recursive) : undefined
    return options.recursive ? this.#recursive(dir, options.limit, position) : this.#oneLevel(dir, options.limit, position)
  }

  async #recursive(dir: string, limit: number, position?: ListPosition): Promise<ListPage> {
    const prefix = this.keys.folder(dir)
    const found: { path: string; object: ListedObject }[] = []
    let anything = false
    let startAfter = position?.recursive ? this.keys.prefix + position.path : undefined
    // From the root, the bookkeeping's keys (all of them under `.filestorage/`) are skipped in one jump.
    let internal = dir === ROOT ? this.keys.internal : undefined
    listing: for (;;) {
      for await (const page of this.bucket.list(prefix, startAfter !== undefined ? { startAfter } : {})) {
        for (const object of page.objects) {
          if (internal !== undefined && object.key.startsWith(internal)) {
            startAfter = `${internal}\u{10FFFF}`
            internal = undefined
            continue listing
          }
          anything = true
          const path = this.keys.pathOf(object.key)
          if (path !== undefined) found.push({ path, object })
        }
        if (found.length > limit) break listing
      }
      break
    }
    if (!anything && !position && dir !== ROOT) throw missing(dir)
    return this.#page(found, [], limit, true)
  }

  async #oneLevel(dir: string, limit: number, position?: ListPosition): Promise<ListPage> {
    const prefix = this.keys.folder(dir)
    const folders: string[] = []
    const files: { path: string; object: ListedObject }[] = []
    let anything = false
    const afterFile = position && !position.recursive && position.type === 'file' ? position.name : undefined
    // Among the files already: list them from the cursor on, no folder.
    const scan = afterFile !== undefined ? this.bucket.list(prefix, { delimiter: '/', startAfter: prefix + afterFile }) : this.bucket.list(prefix, { delimiter: '/' })
    for await (const page of scan) {
      for (const object of page.objects) {
        anything = true
        if (files.length > limit) continue
        const path = this.keys.pathOf(object.key)
        if (path !== undefined) files.push({ path, object })
      }
      for (const common of page.prefixes) {
        anything = true
        if (afterFile !== undefined) continue
        const path = this.keys.folderOf(common)
        if (path !== undefined) folders.push(path)
      }
      // Every folder of the level must be seen before any file is shown; past them, enough files will do.
      if (afterFile !== undefined && files.length > limit) break
    }
    if (!anything && !position && dir !== ROOT) throw missing(dir)
    const afterFolder = position && !position.recursive && position.type === 'directory' ? position.name : undefined
    const shownFolders = folders
      .map((path) => ({ path, name: baseName(path) }))
      .filter((f) => afterFolder === undefined || compareCodePoints(f.name, afterFolder) > 0)
      .sort((a, b) => compareCodePoints(a.name, b.name))
    return this.#page(files, shownFolders, limit, false)
  }

  /**
   * The page: folders, then as many files as fit, described (a file deleted since it was listed is
   * left out); the cursor names the last entry considered, shown or not.
   */
  async #page(files: { path: string; object: ListedObject }[], folders: { path: string; name: string }[], limit: number, recursive: boolean): Promise<ListPage> {
    const shownFolders = folders.slice(0, limit)
    const shownFiles = files.slice(0, limit - shownFolders.length)
    const entries: StoredEntry[] = [
      ...shownFolders.map((f): StoredEntry => ({ type: 'directory', path: f.path, name: f.name })),
      ...(await this.describer.describeListed(shownFiles)),
    ]
    const more = folders.length > shownFolders.length || files.length > shownFiles.length
    const lastFile = shownFiles.at(-1)
    const lastFolder = shownFolders.at(-1)
    let nextCursor: string | null = null
    if (more && (lastFile || lastFolder)) {
      nextCursor = encodeCursor(
        recursive
          ? { recursive: true, path: lastFile!.path }
          : lastFile
            ? { recursive: false, type: 'file', name: baseName(lastFile.path) }
            : { recursive: false, type: 'directory', name: lastFolder!.name },
      )
    }
    return { entries, nextCursor }
  }
}
