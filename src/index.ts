/**
 * filestorage as a library: the storage core and its drivers, the Hono handlers (each usable alone,
 * or all together with `createFileStorageApp`) and access control (`filestorage/auth`). The node
 * adapter is `filestorage/node`; finding and calling instances through Consul is `filestorage/discovery`;
 * delivering the events of changes (webhooks, the Redis stream, hooks) is `filestorage/events`.
 */
export * from './storage/index.js'
export * from './handlers/index.js'
export * from './auth/index.js'
