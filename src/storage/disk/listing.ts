/**
 * Folder listings on disk, in the core's listing order (ordering.ts), one page at a time.
 *
 * Names are read and sorted first (cheap); only the entries of the requested page are described
 * (stat and sidecar). A recursive listing walks folders depth-first with each folder's children
 * sorted by `name` or `name/`, which yields files in full-path order, and skips whole subtrees
 * that lie before the cursor.
 */
import type { Dirent } from 'node:fs'
import { readdir, realpath, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { StorageError } from '../errors.js'
import { forEachLimited } from '../for-each-limited.js'
import { compareCodePoints, compareEntries, decodeCursor, isAfter, type ListPosition, toPage } from '../ordering.js'
import { baseName, joinPath, parseName, RESERVED_NAME, ROOT } from '../paths.js'
import type { StoredDirectory, StoredEntry, StoredFile } from '../types.js'
import { type DiskLayout, isErrno } from './layout.js'

type Kind = 'file' | 'directory'

/** Files of a page described at once: enough to keep libuv's four pool threads busy. */
const DESCRIBE_CONCURRENCY = 8

interface Child {
  name: string
  kind: Kind
  /** Reached through a symbolic link (inside the root); not descended into, so no cycles. */
  linked: boolean
}

export interface ListRequest {
  recursive: boolean
  limit: number
  cursor: string | undefined
}

export class DiskLister {
  constructor(
    private readonly layout: DiskLayout,
    /** Describes one file; returns null when it vanished meanwhile. */
    private readonly describeFile: (path: string) => Promise<StoredFile | null>,
  ) {}

  async list(dir: string, request: ListRequest) {
    await this.layout.confine(dir)
    const position = request.cursor === undefined ? undefined : decodeCursor(request.cursor, request.recursive)
    const children = await this.#children(dir, true)
    const picked = request.recursive
      ? await this.#walk(dir, children, position, request.limit + 1, [])
      : this.#oneLevel(dir, children, position, request.limit + 1)
    const page = toPage(picked, request.limit, request.recursive)
    // Described several at a time (each a few thread-pool calls: stat, and the record when not cached).
    const described: (StoredEntry | null)[] = new Array(page.entries.length)
    await forEachLimited(page.entries, DESCRIBE_CONCURRENCY, async (entry, i) => {
      described[i] = entry.type === 'directory' ? entry : await this.describeFile(entry.path)
    })
    // A file that vanished since its name was read is left out; the cursor still moves past it.
    const entries = described.filter((e): e is StoredEntry => e !== null)
    return { entries, nextCursor: page.nextCursor }
  }

  #oneLevel(dir: string, children: Child[], position: ListPosition | undefined, take: number): StoredEntry[] {
    const entries = children
      .map((c) => stub(joinPath(dir, c.name), c.kind))
      .sort(compareEntries)
      .filter((e) => position === undefined || isAfter(e, position))
    return entries.slice(0, take)
  }

  async #walk(
    dir: string,
    children: Child[],
    position: ListPosition | undefined,
    take: number,
    out: StoredEntry[],
  ): Promise<StoredEntry[]> {
    const after = position?.recursive ? position.path : undefined
    const keyed = children
      .map((c) => ({ child: c, key: c.kind === 'directory' ? `${c.name}/` : c.name }))
      .sort((a, b) => compareCodePoints(a.key, b.key))
    for (const { child, key } of keyed) {
      if (out.length >= take) break
      const path = joinPath(dir, child.name)
      if (child.kind === 'file') {
        if (after === undefined || compareCodePoints(path, after) > 0) out.push(stub(path, 'file'))
        continue
      }
      if (child.linked) continue
      const prefix = joinPath(dir, key)
      if (after !== undefined && compareCodePoints(prefix, after) < 0 && !after.startsWith(prefix)) continue
      await this.#walk(path, await this.#children(path, false).catch(() => []), position, take, out)
    }
    return out
  }

  /** The files and folders directly in `dir`, without the reserved folder or links leading out. */
  async #children(dir: string, mustExist: boolean): Promise<Child[]> {
    let dirents: Dirent[]
    try {
      dirents = await readdir(this.layout.data(dir), { withFileTypes: true })
    } catch (e) {
      if (mustExist && isErrno(e, 'ENOENT', 'ENOTDIR')) throw new StorageError('not_found', `no folder at "${dir}"`)
      throw e
    }
    const children: Child[] = []
    for (const d of dirents) {
      if (dir === ROOT && d.name === RESERVED_NAME) continue
      const name = d.name
      if (!isAddressable(name)) continue
      if (d.isFile()) children.push({ name, kind: 'file', linked: false })
      else if (d.isDirectory()) children.push({ name, kind: 'directory', linked: false })
      else if (d.isSymbolicLink()) {
        const kind = await this.#linkTarget(join(this.layout.data(dir), d.name))
        if (kind) children.push({ name, kind, linked: true })
      }
    }
    return children
  }

  /** What a symbolic link leads to, or null when it dangles or leads outside the root. */
  async #linkTarget(abs: string): Promise<Kind | null> {
    try {
      const real = await realpath(abs)
      if (!this.layout.isInsideRoot(real) || real.startsWith(this.layout.internal)) return null
      const s = await stat(real)
      return s.isDirectory() ? 'directory' : s.isFile() ? 'file' : null
    } catch {
      return null
    }
  }
}

function stub(path: string, kind: Kind): StoredEntry {
  if (kind === 'directory') return { type: 'directory', path, name: baseName(path) } satisfies StoredDirectory
  // A placeholder ordered by name; described (stat and sidecar) only once it is on the page.
  return { type: 'file', path, name: baseName(path) } as StoredFile
}

/** Names the API cannot address (not NFC, control characters, ...) are not listed. */
function isAddressable(name: string): boolean {
  try {
    return parseName(name) === name
  } catch {
    return false
  }
}
