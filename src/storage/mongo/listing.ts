/**
 * Folder listings from the catalog, in the core's listing order (ordering.ts), one page at a time.
 * MongoDB compares strings by their UTF-8 bytes, which is code point order, so the server's sort
 * is the core's order:
 *
 * - one level: the folder's subfolders by name, then its files by name; two range queries on the
 *   (parent, type, name) index, the second only when the first does not fill the page;
 * - recursive: the files under the folder by full path; one range query on the path index.
 */
import { notFound } from '../errors.js'
import { decodeCursor, type ListPosition, toPage } from '../ordering.js'
import { ROOT } from '../paths.js'
import type { ListPage, StoredEntry } from '../types.js'
import { type Catalog, toEntry, WITHOUT_BYTES } from './catalog.js'
import type { CatalogDoc } from './schema.js'

export interface ListRequest {
  recursive: boolean
  limit: number
  cursor: string | undefined
}

export async function listFolder(catalog: Catalog, dir: string, request: ListRequest): Promise<ListPage> {
  const position = request.cursor === undefined ? undefined : decodeCursor(request.cursor, request.recursive)
  const take = request.limit + 1 // one more than the page, to know whether another page follows
  const docs = request.recursive
    ? await catalog.filesUnder(dir, position?.recursive ? position.path : undefined, take)
    : await oneLevel(catalog, dir, position, take)
  // An empty answer may mean there is no such folder (the root always exists).
  if (docs.length === 0 && dir !== ROOT && (await catalog.records.findOne({ path: dir, type: 'directory' })) === null) {
    throw notFound(`a folder at "${dir}"`)
  }
  return toPage(docs.map(toEntry) as StoredEntry[], request.limit, request.recursive)
}

async function oneLevel(
  catalog: Catalog,
  dir: string,
  position: ListPosition | undefined,
  take: number,
): Promise<CatalogDoc[]> {
  const after = position && !position.recursive ? position : undefined
  const page = (type: 'directory' | 'file', limit: number, afterName?: string) =>
    catalog.records
      .find({ parent: dir, type, ...(afterName === undefined ? {} : { name: { $gt: afterName } }) }, WITHOUT_BYTES)
      .sort({ name: 1 })
      .limit(limit)
      .toArray()
  const folders = after?.type === 'file' ? [] : await page('directory', take, after?.name)
  if (folders.length >= take) return folders
  const files = await page('file', take - folders.length, after?.type === 'file' ? after.name : undefined)
  return [...folders, ...files]
}
