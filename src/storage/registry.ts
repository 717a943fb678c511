/**
 * The named stores a service serves, each a driver with the upload engine on top (store.ts).
 */
import type { StorageDriver } from './driver.js'
import { StorageError } from './errors.js'
import { withUploads } from './store.js'
import type { Store, StoredEntry, StoredFile } from './types.js'
import type { DirectoryInfo, EntryInfo, FileInfo } from './types.js'

export class StoreRegistry {
  readonly #stores = new Map<string, Store>()

  constructor(stores: Record<string, Store | StorageDriver> = {}) {
    for (const [name, store] of Object.entries(stores)) this.add(name, store)
  }

  /** Adds a store; a bare driver gets the upload engine with the default policy (`withUploads` for another). */
  add(name: string, store: Store | StorageDriver): this {
    if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(name)) throw new Error(`invalid store name "${name}"`)
    this.#stores.set(name, isStore(store) ? store : withUploads(store))
    return this
  }

  /** A store by name, or `unknown_store`. */
  get(name: string): Store {
    const store = this.#stores.get(name)
    if (!store) {
      throw new StorageError('unknown_store', `there is no store named "${name}"`, {
        details: { stores: this.names() },
      })
    }
    return store
  }

  names(): string[] {
    return [...this.#stores.keys()]
  }

  entries(): [string, Store][] {
    return [...this.#stores.entries()]
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#stores.values()].map((s) => s.close()))
  }
}

const isStore = (store: Store | StorageDriver): store is Store => 'createUpload' in store

export function fileInfo(store: string, file: StoredFile): FileInfo {
  return { ...file, store }
}

export function entryInfo(store: string, entry: StoredEntry): EntryInfo {
  return entry.type === 'file' ? fileInfo(store, entry) : ({ ...entry, store } satisfies DirectoryInfo)
}
