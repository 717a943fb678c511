/**
 * The catalog collection: file records and folder records, one per path (a unique index), so a
 * file and a folder can never share a path and two creates of one path never both succeed.
 *
 * A file record is only ever changed by compare-and-swap on its `rev`: a write reads the record,
 * checks its preconditions against it, and updates it only if it is still that version.
 */
import { type Collection, type Filter, ObjectId } from 'mongodb'
import { etagOf } from '../file-attributes.js'
import { compareCodePoints } from '../ordering.js'
import { baseName, parentOf, ROOT } from '../paths.js'
import type { StoredEntry, StoredFile } from '../types.js'
import type { WrittenBytes } from './placement.js'
import type { CatalogDoc, FileDoc, FolderDoc } from './schema.js'

/** Queries that describe files leave the inline bytes on the server. */
export const WITHOUT_BYTES = { projection: { data: 0 } } as const

/** The attributes a write gives a file, besides its bytes. */
export interface FileAttributes {
  contentType: string
  metadata: Record<string, unknown>
}

/** Paths strictly under a folder, as a range of the path index (`0` is the character after `/`); none for the root. */
const pathsUnder = (dir: string): { $gt?: string; $lt?: string } => (dir === ROOT ? {} : { $gt: `${dir}/`, $lt: `${dir}0` })

/** A filter for the records strictly under a folder. */
export function under(dir: string): Filter<CatalogDoc> {
  return dir === ROOT ? {} : { path: pathsUnder(dir) }
}

export class Catalog {
  constructor(readonly records: Collection<CatalogDoc>) {}

  /** Whatever is at `path`, without inline bytes. */
  entry(path: string): Promise<CatalogDoc | null> {
    return this.records.findOne({ path }, WITHOUT_BYTES)
  }

  /** The file at `path` with its inline bytes: a small file is read in one round trip. */
  fileWithBytes(path: string): Promise<FileDoc | null> {
    return this.records.findOne({ path, type: 'file' }) as Promise<FileDoc | null>
  }

  /** The records at `paths` (a path and its folders, say), without inline bytes. */
  entries(paths: string[]): Promise<CatalogDoc[]> {
    return this.records.find({ path: { $in: paths } }, WITHOUT_BYTES).toArray()
  }

  /** Creates a record; a duplicate-key error when something is at its path already. */
  async insert(doc: FileDoc): Promise<void> {
    await this.records.insertOne(doc)
  }

  /** Replaces `current` by `next` (same `_id`, new `rev`), unless it changed meanwhile. */
  async swap(current: FileDoc, next: FileDoc): Promise<boolean> {
    const { _id, data, gridfsId, ...fields } = next
    const result = await this.records.updateOne(
      { _id: current._id, rev: current.rev },
      {
        $set: { ...fields, ...(data ? { data } : { gridfsId }) },
        $unset: { ...(data ? { gridfsId: '' } : { data: '' }), ...unsetEvent(next) },
      },
    )
    return result.matchedCount === 1
  }

  /** Marks `current` as being deleted under the entry `key` of `owner` (a delete's intent), unless it changed meanwhile. */
  async markDeleting(current: FileDoc, mark: { key: string; owner: string }): Promise<boolean> {
    const result = await this.records.updateOne({ _id: current._id, rev: current.rev }, { $set: { deleting: mark } })
    return result.matchedCount === 1
  }

  /** Removes the record of `current`, unless it changed meanwhile. */
  async remove(current: CatalogDoc): Promise<boolean> {
    const filter = current.type === 'file' ? { _id: current._id, rev: current.rev } : { _id: current._id }
    return (await this.records.deleteOne(filter)).deletedCount === 1
  }

  /**
   * Gives the record of `current` a new path, unless it changed meanwhile; null then. A
   * duplicate-key error when something is at `to` already.
   */
  async rename(current: FileDoc, to: string, version: Pick<FileDoc, 'event' | 'eventOwner'> & { rev?: ObjectId | string } = {}): Promise<FileDoc | null> {
    const moved: Partial<FileDoc> = { path: to, parent: parentOf(to), name: baseName(to), rev: version.rev ?? new ObjectId() }
    if (version.event !== undefined) moved.event = version.event
    if (version.eventOwner !== undefined) moved.eventOwner = version.eventOwner
    const unset = unsetEvent(moved)
    const result = await this.records.updateOne(
      { _id: current._id, rev: current.rev },
      Object.keys(unset).length > 0 ? { $set: moved, $unset: unset } : { $set: moved },
    )
    if (result.matchedCount !== 1) return null
    const renamed: FileDoc = { ...current, ...moved }
    for (const field of Object.keys(unset) as (keyof FileDoc)[]) delete renamed[field]
    return renamed
  }

  /** True when anything (file or folder) is directly in `folder`. */
  async hasChildren(folder: string): Promise<boolean> {
    return (await this.records.findOne({ parent: folder }, { projection: { _id: 1 } })) !== null
  }

  /** Files under a folder (at any depth) after `after`, by path: a batch of a walk over a subtree. */
  filesUnder(dir: string, after: string | undefined, limit: number): Promise<FileDoc[]> {
    const path = pathsUnder(dir)
    if (after !== undefined && (path.$gt === undefined || compareCodePoints(after, path.$gt) > 0)) path.$gt = after
    return this.records
      .find({ type: 'file', ...(path.$gt === undefined ? {} : { path }) }, WITHOUT_BYTES)
      .sort({ path: 1 })
      .limit(limit)
      .toArray() as Promise<FileDoc[]>
  }

  /** How many files are under a folder, at any depth. */
  countFilesUnder(dir: string): Promise<number> {
    return this.records.countDocuments({ type: 'file', ...under(dir) })
  }

  /** The folder records of a subtree (the folder itself included), deepest first. */
  foldersOf(dir: string): Promise<FolderDoc[]> {
    return this.records
      .find({ type: 'directory', $or: [{ path: dir }, under(dir)] })
      .sort({ path: -1 })
      .toArray() as Promise<FolderDoc[]>
  }
}

/** A new version of the file at `path`: its bytes, attributes and times. */
export function fileDoc(
  path: string,
  bytes: WrittenBytes,
  attributes: FileAttributes,
  times: { created: Date; modified: Date },
  id = new ObjectId(),
  rev: ObjectId | string = new ObjectId(),
): FileDoc {
  return {
    _id: id,
    type: 'file',
    path,
    parent: parentOf(path),
    name: baseName(path),
    rev,
    size: bytes.size,
    sha256: bytes.sha256,
    contentType: attributes.contentType,
    metadataJson: JSON.stringify(attributes.metadata),
    created: times.created,
    modified: times.modified,
    ...(bytes.gridfsId ? { gridfsId: bytes.gridfsId } : { data: bytes.data! }),
  }
}

export function toStoredFile(doc: FileDoc): StoredFile {
  return {
    type: 'file',
    path: doc.path,
    name: doc.name,
    size: doc.size,
    contentType: doc.contentType,
    sha256: doc.sha256,
    etag: etagOf(doc.sha256),
    created: doc.created.toISOString(),
    modified: doc.modified.toISOString(),
    metadata: JSON.parse(doc.metadataJson) as Record<string, unknown>,
    driver: doc.gridfsId ? 'gridfs' : 'mongo-inline',
  }
}

export function toEntry(doc: CatalogDoc): StoredEntry {
  return doc.type === 'file' ? toStoredFile(doc) : { type: 'directory', path: doc.path, name: doc.name }
}

/** The event fields a new version of a record does not carry over from the one it replaces. */
function unsetEvent(next: Partial<FileDoc>): Record<string, ''> {
  return {
    deleting: '',
    ...(next.event === undefined ? { event: '' } : {}),
    ...(next.eventOwner === undefined ? { eventOwner: '' } : {}),
  }
}
