/**
 * filestorage as a library: the storage core and its drivers, and the Hono handlers (each usable
 * alone, or all together with `createFileStorageApp`). The node adapter is `filestorage/node`.
 */
export * from './storage/index.js'
export * from './handlers/index.js'
