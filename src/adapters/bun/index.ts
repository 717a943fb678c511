/** The bun adapter (runs on Bun): the service on Bun.serve, and serving any fetch app with the same limits. */
export { type Service, startService, VERSION } from './service.js'
export { type BunEnv, type RunningServer, type ServeOptions, serve } from './server.js'
