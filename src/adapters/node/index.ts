/**
 * The node adapter as a library (`filestorage/adapters/node`): configuration, the whole service,
 * the HTTP server and the Consul registration, for programs that run it their own way.
 */
export { ConfigError, configSchema, loadConfig, type Config } from './config.js'
export { startService, VERSION, type Service } from './service.js'
export { serve, type RunningServer, type ServeOptions } from './server.js'
export { ConsulRegistration, type RegistrationOptions } from './consul-registration.js'
export { serviceDefinition, type ServiceDefinition } from './service-definition.js'
