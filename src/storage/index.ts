/** The storage core: the driver interface, the upload engine, the drivers, path rules and typed errors. No HTTP here. */
export * from './types.js'
export type * from './driver.js'
export { DriverStore, withUploads } from './store.js'
export * from './errors.js'
export * from './paths.js'
export * from './digest.js'
export * from './file-attributes.js'
export * from './json-depth.js'
export * from './ordering.js'
export * from './uploads/rules.js'
export * from './uploads/receive-body.js'
export * from './registry.js'
export * from './transfer.js'
export { bodyChunks } from './streams.js'
export { DiskDriver, type DiskDriverOptions } from './disk/disk-driver.js'
export {
  DEFAULT_INLINE_MAX_BYTES,
  MongoDriver,
  type MongoDriverKind,
  type MongoDriverOptions,
} from './mongo/mongo-driver.js'
export { MongoConnection, type MongoConnectionOptions } from './mongo/connection.js'
export { MAX_INLINE_BYTES } from './mongo/inline-bytes.js'
export type { SharedRecords } from './shared-records.js'
export * from './quotas/index.js'
export * from './events/types.js'
export { type Change, eventsOf } from './events/changes.js'
export { EventRecorder, type EventRecorderOptions, type Intent } from './events/recorder.js'
export { eventId, isKey, keyTime } from './events/keys.js'
export { S3Driver, type S3DriverOptions } from './s3/s3-driver.js'
