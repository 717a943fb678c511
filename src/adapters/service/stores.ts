/**
 * Builds the stores the configuration asks for: `disk` always (the embedded default), and `mongo`
 * when MONGODB_URI is set. The mongo store connects lazily and with bounded timeouts, so start-up
 * never waits for MongoDB: while it is down the store answers 503 and reports itself down, and it
 * recovers by itself when MongoDB returns.
 */
import { resolve } from 'node:path'
import { DiskDriver, MongoDriver, StoreRegistry, withUploads } from '../../storage/index.js'
import { type Config, ConfigError } from './config.js'
import { withConfiguredQuotas } from './quotas.js'

export async function openStores(config: Config, log: (line: string) => void = console.log): Promise<StoreRegistry> {
  const uploads = {
    partSizeLimit: config.PART_SIZE_LIMIT,
    ttlMs: config.UPLOAD_EXPIRY_SECONDS * 1000,
    completionLeaseMs: config.COMPLETION_LEASE_SECONDS * 1000,
  }
  const stores = new StoreRegistry()
  stores.add('disk', withUploads(await DiskDriver.open({ dir: resolve(config.STORAGE_DIR), cacheBytes: config.DISK_CACHE_BYTES }), uploads))
  if (config.MONGODB_URI) {
    let mongo: MongoDriver
    try {
      mongo = MongoDriver.open({
        uri: config.MONGODB_URI,
        db: config.MONGODB_DB,
        kind: 'mongo',
        inlineMaxBytes: config.INLINE_MAX_BYTES,
        livenessWindowMs: uploads.completionLeaseMs,
        log,
      })
    } catch (e) {
      // The driver parses the URI here (without connecting): a malformed one is a configuration error.
      throw new ConfigError(`invalid configuration:\n  MONGODB_URI: ${(e as Error).message}`)
    }
    stores.add('mongo', withUploads(mongo, uploads))
  }
  return withConfiguredQuotas(stores, config, log)
}
