/**
 * Builds the stores the configuration asks for: `disk` always (the embedded default).
 */
import { resolve } from 'node:path'
import { DiskDriver, StoreRegistry } from '../../storage/index.js'
import type { Config } from './config.js'

export async function openStores(config: Config): Promise<StoreRegistry> {
  const uploads = { partSizeLimit: config.PART_SIZE_LIMIT, ttlMs: config.UPLOAD_EXPIRY_SECONDS * 1000 }
  const stores = new StoreRegistry()
  stores.add('disk', await DiskDriver.open({ dir: resolve(config.STORAGE_DIR), uploads }))
  return stores
}
