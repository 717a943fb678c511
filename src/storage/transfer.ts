/**
 * Moves between two stores: a streamed copy, then the source is deleted. Within one store a move
 * is the driver's own (a rename, or a catalog update), never a copy. Its events are those of what
 * it is made of: files created in one store, deleted in the other.
 */
import { StorageError } from './errors.js'
import { checkEntryIfMatch, checkIfMatch, checkMoveTarget } from './file-attributes.js'
import { filesUnder } from './files-under.js'
import { joinPath } from './paths.js'
import type { MoveOptions, FileOperations, StoredEntry, StoredFile } from './types.js'

export interface CrossStoreMoveOptions extends MoveOptions {
  maxBytes?: number
}

export async function moveAcrossStores(
  source: FileOperations,
  from: string,
  target: FileOperations,
  to: string,
  options: CrossStoreMoveOptions = {},
): Promise<StoredEntry> {
  const entry = await source.lookup(from)
  if (!entry) throw new StorageError('not_found', `"${from}" does not exist`)
  if (entry.type === 'file') {
    const copied = await copyFile(source, entry, target, to, options)
    // The copy is complete and visible before the source goes: a failure here loses nothing.
    await source.delete(from, { ...(options.ifMatch ? { ifMatch: [entry.etag] } : {}), ...origin(options) })
    return copied
  }
  checkEntryIfMatch(options.ifMatch, entry)
  const existing = await target.lookup(to)
  checkMoveTarget(entry, existing, to, options.overwrite)
  // A target with quotas is asked about the whole folder before its first byte (each file is checked again).
  if (target.checkRoom) await target.checkRoom(filesBelow(source, from, to))
  if (existing) await target.delete(to, { recursive: true, ...origin(options) })
  // Copy every file, then delete the source folder: a failure part-way leaves both copies, never neither.
  for (let cursor: string | undefined; ; ) {
    const page = await source.list(from, { recursive: true, limit: 1000, ...(cursor ? { cursor } : {}) })
    for (const file of page.entries) {
      if (file.type !== 'file') continue
      await copyFile(source, file, target, joinPath(to, file.path.slice(from.length + 1)), {
        overwrite: true,
        ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}),
        ...origin(options),
      })
    }
    if (!page.nextCursor) break
    cursor = page.nextCursor
  }
  await source.delete(from, { recursive: true, ...origin(options) })
  const moved = await target.lookup(to)
  if (!moved) throw new StorageError('not_found', `"${to}" does not exist`)
  return moved
}

/** The files under `from` as they will be under `to`, with their sizes. */
async function* filesBelow(source: FileOperations, from: string, to: string): AsyncGenerator<{ path: string; size: number }> {
  for await (const file of filesUnder(source, from)) yield { path: joinPath(to, file.path.slice(from.length + 1)), size: file.size }
}

async function copyFile(
  source: FileOperations,
  file: StoredFile,
  target: FileOperations,
  to: string,
  options: CrossStoreMoveOptions,
): Promise<StoredFile> {
  checkIfMatch(options.ifMatch, file)
  if (!options.overwrite && (await target.lookup(to))) throw new StorageError('already_exists', `"${to}" already exists`)
  const { file: current, body } = await source.read(file.path)
  const { file: copied } = await target.put(to, body, {
    contentType: current.contentType,
    metadata: current.metadata,
    expectedSha256: current.sha256,
    expectedSize: current.size,
    ...(options.overwrite ? {} : { mustNotExist: true }),
    ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}),
    ...origin(options),
  })
  return copied
}

/** Who asked, passed on to the writes and deletes a move is made of (their events say so). */
const origin = (options: CrossStoreMoveOptions) => (options.origin ? { origin: options.origin } : {})
