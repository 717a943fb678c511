/**
 * The named stores a service serves, each backed by a driver.
 */
import { StorageError } from './errors.js'
import type { StorageDriver, StoredEntry, StoredFile } from './types.js'
import type { DirectoryInfo, EntryInfo, FileInfo } from './types.js'

export class StoreRegistry {
  readonly #stores = new Map<string, StorageDriver>()

  constructor(stores: Record<string, StorageDriver> = {}) {
    for (const [name, driver] of Object.entries(stores)) this.add(name, driver)
  }

  add(name: string, driver: StorageDriver): this {
    if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(name)) throw new Error(`invalid store name "${name}"`)
    this.#stores.set(name, driver)
    return this
  }

  /** The driver of a store, or `unknown_store`. */
  get(name: string): StorageDriver {
    const driver = this.#stores.get(name)
    if (!driver) {
      throw new StorageError('unknown_store', `there is no store named "${name}"`, {
        details: { stores: this.names() },
      })
    }
    return driver
  }

  names(): string[] {
    return [...this.#stores.keys()]
  }

  entries(): [string, StorageDriver][] {
    return [...this.#stores.entries()]
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#stores.values()].map((d) => d.close()))
  }
}

export function fileInfo(store: string, file: StoredFile): FileInfo {
  return { ...file, store }
}

export function entryInfo(store: string, entry: StoredEntry): EntryInfo {
  return entry.type === 'file' ? fileInfo(store, entry) : ({ ...entry, store } satisfies DirectoryInfo)
}
