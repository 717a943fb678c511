/**
 * Builds the stores the configuration asks for: `disk` always (the embedded default), `mongo`
 * when MONGODB_URI is set, and `s3` when S3_BUCKET is set (opened without calling S3, so start-up
 * never waits for it either). The mongo store connects lazily and with bounded timeouts, so start-up
 * never waits for MongoDB: while it is down the store answers 503 and reports itself down, and it
 * recovers by itself when MongoDB returns.
 *
 * Observed (metrics, traces), each store is wrapped once at the `Store` level (observability/store.ts),
 * and with traces the MongoDB client reports its commands as spans.
 */
import { resolve } from 'node:path'
import { traceMongoCommands } from '../../observability/mongo-commands.js'
import { observedStore, type StoreObservation } from '../../observability/store.js'
import { DiskDriver, MongoConnection, MongoDriver, S3Driver, StoreRegistry, withUploads } from '../../storage/index.js'
import { type Config, ConfigError } from './config.js'
import { withConfiguredQuotas } from './quotas.js'

const UNOBSERVED: StoreObservation = { traces: false, metrics: false }

export async function openStores(
  config: Config,
  log: (line: string) => void = console.log,
  observe: StoreObservation = UNOBSERVED,
): Promise<StoreRegistry> {
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
      const connection = MongoConnection.fromUri(config.MONGODB_URI, observe.traces ? { monitorCommands: true } : {})
      if (observe.traces) traceMongoCommands(connection.client)
      mongo = MongoDriver.open({
        connection,
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
  if (config.S3_BUCKET) stores.add('s3', withUploads(openS3(config, uploads.ttlMs, uploads.completionLeaseMs, log), uploads))
  // Quotas inside, observed outside: metrics and traces see the 403s; the quota check sees the driver's store.
  const limited = withConfiguredQuotas(stores, config, log)
  for (const [name, store] of limited.entries()) limited.add(name, observedStore(name, store, observe))
  return limited
}

/** The s3 store, from the S3_* variables; credentials from the AWS SDK's chain. It calls S3 only when used. */
function openS3(config: Config, uploadTtlMs: number, livenessWindowMs: number, log: (line: string) => void): S3Driver {
  try {
    return S3Driver.open({
      bucket: config.S3_BUCKET!,
      region: config.S3_REGION,
      timeoutMs: config.S3_TIMEOUT_SECONDS * 1000,
      redirectDownloads: config.S3_REDIRECT_DOWNLOADS,
      conditionalWrites: config.S3_CONDITIONAL_WRITES === 'auto' ? 'auto' : config.S3_CONDITIONAL_WRITES === 'true',
      orphanAgeMs: uploadTtlMs,
      livenessWindowMs,
      log,
      ...(config.S3_ENDPOINT !== undefined ? { endpoint: config.S3_ENDPOINT } : {}),
      ...(config.S3_FORCE_PATH_STYLE !== undefined ? { forcePathStyle: config.S3_FORCE_PATH_STYLE } : {}),
      ...(config.S3_PREFIX !== undefined ? { prefix: config.S3_PREFIX } : {}),
      ...(config.S3_PUBLIC_ENDPOINT !== undefined ? { publicEndpoint: config.S3_PUBLIC_ENDPOINT } : {}),
    })
  } catch (e) {
    throw new ConfigError(`invalid configuration:\n  S3_PREFIX: ${(e as Error).message}`)
  }
}
