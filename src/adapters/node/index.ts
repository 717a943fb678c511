/** The node adapter: configuration, the service (stores + handlers + HTTP server), and serving any fetch app. */
export { type Config, ConfigError, configSchema, loadConfig } from './config.js'
export { type Service, startService, VERSION } from './service.js'
export { type RunningServer, type ServeOptions, serve } from './server.js'
export { openStores } from './stores.js'
