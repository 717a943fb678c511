/**
 * Folder records. Folders are implicit in paths, as in object stores, but listing the subfolders
 * of a folder must not walk its whole subtree, so each folder that holds something has a record in
 * the catalog (`type: 'directory'`), and a one-level listing is one indexed query on `parent`.
 *
 * The rules, which rely only on single-document writes and the unique path index (FerretDB v1 has
 * no transactions and no atomic counters):
 *
 * - A write that creates a file makes sure its folders have records before it inserts the file
 *   (`ensure`), and looks again after (a folder removed meanwhile is made again).
 * - Removing an entry removes the folder records above it that hold nothing any more (`prune`),
 *   deepest first. Each removal looks for children again after deleting: when a write put
 *   something there meanwhile, the record is made again.
 *
 * Between the two, a folder is never left without its record while it holds a file. A crash can
 * leave an empty folder's record behind; the sweeper removes those.
 */
import { backoff } from '../backoff.js'
import { fileInTheWay, keepsChanging } from '../errors.js'
import { ancestorsOf, baseName, parentOf, ROOT } from '../paths.js'
import type { Catalog } from './catalog.js'
import { isDuplicateKey } from './connection.js'

/** Attempts to settle the folders while other writes keep changing them (with a jittered backoff between). */
const ATTEMPTS = 8

export class Folders {
  constructor(private readonly catalog: Catalog) {}

  /** Makes sure the folder above `path`, and every folder above it, has its record. */
  ensureAbove(path: string): Promise<void> {
    const parent = parentOf(path)
    return parent === ROOT ? Promise.resolve() : this.ensure([parent])
  }

  /**
   * Makes sure each of `folders`, and every folder above them, has its record. `already_exists`
   * when a file stands where a folder must be.
   */
  async ensure(folders: string[]): Promise<void> {
    const chain = [...new Set(folders.flatMap((f) => [...ancestorsOf(f), f]))].filter((f) => f !== ROOT)
    if (chain.length === 0) return
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      if (attempt > 0) await backoff(attempt)
      const found = await this.catalog.entries(chain)
      const file = found.find((d) => d.type === 'file')
      if (file) throw fileInTheWay(file.path)
      const present = new Set(found.map((d) => d.path))
      const missing = chain.filter((f) => !present.has(f)).sort((a, b) => a.length - b.length)
      if (missing.length === 0) return
      try {
        await this.#create(missing)
      } catch (e) {
        if (!isDuplicateKey(e)) throw e // made meanwhile by another write (a folder or a file): look again
      }
    }
    throw keepsChanging('the folder tree')
  }

  /** Removes the records of the folders above a removed entry that hold nothing now, deepest first. */
  async pruneAbove(path: string): Promise<void> {
    for (const folder of ancestorsOf(path).reverse()) {
      if (!(await this.removeIfEmpty(folder))) return
    }
  }

  /** Removes the record of a folder that holds nothing; false when it holds something. */
  async removeIfEmpty(folder: string): Promise<boolean> {
    if (await this.catalog.hasChildren(folder)) return false
    await this.catalog.records.deleteOne({ path: folder, type: 'directory' })
    // A write may have put something in it between the look and the delete: then the folder stays.
    if (await this.catalog.hasChildren(folder)) {
      await this.#create([folder]).catch((e: unknown) => {
        if (!isDuplicateKey(e)) throw e
      })
      return false
    }
    return true
  }

  /** Upserts folder records, shallowest first. */
  async #create(folders: string[]): Promise<void> {
    await this.catalog.records.bulkWrite(
      folders.map((path) => ({
        updateOne: {
          filter: { path, type: 'directory' as const },
          update: { $setOnInsert: { parent: parentOf(path), name: baseName(path) } },
          upsert: true,
        },
      })),
      { ordered: true },
    )
  }
}
