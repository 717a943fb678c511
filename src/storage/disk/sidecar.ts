/**
 * The JSON sidecar the disk driver keeps beside each file for what a plain file cannot carry.
 *
 * A sidecar records the identity of the data file it describes (inode, size, mtime). When they no
 * longer match (a crash between the two renames of a write, or an operator replacing the file by
 * hand), the sidecar is stale: the sha256 is recomputed from the bytes and the content type guessed
 * again, so a file is never described by another file's sidecar.
 */
import { createHash } from 'node:crypto'
import { createReadStream, type Stats } from 'node:fs'
import { mkdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { contentTypeFor, etagOf } from '../file-attributes.js'
import { baseName } from '../paths.js'
import type { StoredFile } from '../types.js'
import { type DiskLayout, isErrno, placeMakingFolders } from './layout.js'

export interface Sidecar {
  v: 1
  sha256: string
  size: number
  mtimeMs: number
  ino: number
  contentType: string
  metadata: Record<string, unknown>
  created: string
}

export const sidecarMatches = (sidecar: Sidecar, stats: Stats): boolean =>
  sidecar.size === stats.size && sidecar.mtimeMs === stats.mtimeMs && sidecar.ino === stats.ino

export function describe(path: string, sidecar: Sidecar, stats: Stats): StoredFile {
  return {
    type: 'file',
    path,
    name: baseName(path),
    size: stats.size,
    contentType: sidecar.contentType,
    sha256: sidecar.sha256,
    etag: etagOf(sidecar.sha256),
    created: sidecar.created,
    modified: stats.mtime.toISOString(),
    metadata: sidecar.metadata,
    driver: 'disk',
  }
}

/** The sidecar and the length of its JSON text (what keeping it in memory costs, roughly). */
export async function readSidecarText(layout: DiskLayout, path: string): Promise<{ sidecar: Sidecar; bytes: number } | null> {
  try {
    const text = await readFile(layout.meta(path), 'utf8')
    const value = JSON.parse(text) as Sidecar
    return value.v === 1 ? { sidecar: value, bytes: text.length } : null
  } catch {
    return null // missing, unreadable or not ours: rebuilt from the bytes
  }
}

/** Writes a sidecar next to nothing yet: returns the temporary file to rename into place. */
export async function stageSidecar(layout: DiskLayout, sidecar: Sidecar): Promise<string> {
  const tmp = layout.tmpFile()
  await writeFile(tmp, JSON.stringify(sidecar))
  return tmp
}

/**
 * Renames a staged sidecar into place, making the meta folders on the way. A stale entry in the
 * way (a sidecar where a folder must go, or the other way round) is only cache and is removed.
 */
export async function commitSidecar(layout: DiskLayout, path: string, staged: string): Promise<void> {
  await placeMakingFolders(staged, layout.meta(path), {
    retryOn: ['EEXIST', 'ENOTDIR', 'EISDIR', 'ENOTEMPTY', 'ENOENT'],
    // A missing folder first; after that, whatever stands in the way.
    beforeRetry: (attempt) => (attempt > 0 ? clearMetaPath(layout, path) : Promise.resolve()),
  })
}

/** Removes whatever meta entries block `path`: a stale sidecar standing where a folder is needed, or a folder where a sidecar is. */
async function clearMetaPath(layout: DiskLayout, path: string): Promise<void> {
  const parts = path.split('/')
  for (let i = 1; i <= parts.length; i++) {
    const p = layout.meta(parts.slice(0, i).join('/'))
    if (i === parts.length) {
      await rm(p, { recursive: true, force: true })
    } else {
      await unlink(p).catch(() => {}) // only succeeds on a file: a stale sidecar in the way of a folder
    }
  }
}

/**
 * Moves the sidecar (or the meta folder) of a moved file (or folder). A file without one keeps
 * having none; one that cannot be moved is dropped, to be rebuilt from the bytes.
 */
export async function moveSidecar(layout: DiskLayout, from: string, to: string): Promise<void> {
  const source = layout.meta(from)
  const target = layout.meta(to)
  for (let attempt = 0; ; attempt++) {
    try {
      await mkdir(dirname(target), { recursive: true })
      await rename(source, target)
      return
    } catch (e) {
      if (isErrno(e, 'ENOENT') && !(await exists(source))) return
      if (attempt >= 1) {
        await removeSidecar(layout, from)
        return
      }
      await clearMetaPath(layout, to)
    }
  }
}

const exists = (p: string) => stat(p).then(() => true, () => false)

export async function removeSidecar(layout: DiskLayout, path: string): Promise<void> {
  await rm(layout.meta(path), { force: true, recursive: true })
}

/**
 * Builds a fresh sidecar for a file that has none or a stale one, by hashing its bytes, and caches
 * it. Files an operator put there by hand become ordinary files this way.
 */
export async function rebuildSidecar(
  layout: DiskLayout,
  path: string,
  fd: number,
  stats: Stats,
  previous: Sidecar | null,
): Promise<Sidecar> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream('', { fd, start: 0, autoClose: false, highWaterMark: 1024 * 1024 })) {
    hash.update(chunk as Buffer)
  }
  const sidecar: Sidecar = {
    v: 1,
    sha256: hash.digest('hex'),
    size: stats.size,
    mtimeMs: stats.mtimeMs,
    ino: stats.ino,
    contentType: contentTypeFor(baseName(path)),
    metadata: {},
    created: previous?.created ?? (stats.birthtimeMs > 0 ? stats.birthtime : stats.mtime).toISOString(),
  }
  try {
    await commitSidecar(layout, path, await stageSidecar(layout, sidecar))
  } catch {
    // only a cache: the file is still described correctly this time
  }
  return sidecar
}
