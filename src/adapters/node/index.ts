/** The node adapter: configuration, the service (stores + handlers + HTTP server), serving any fetch app, and the Consul registration. */
export { type Config, ConfigError, configSchema, loadConfig } from '../service/config.js'
export { type Service, startService, VERSION } from './service.js'
export { type RunningServer, type ServeOptions, serve } from './server.js'
export { openStores } from '../service/stores.js'
export { ConsulRegistration, type RegistrationOptions } from '../service/consul-registration.js'
export { serviceDefinition, type ServiceDefinition } from '../service/service-definition.js'
