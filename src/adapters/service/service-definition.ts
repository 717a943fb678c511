/**
 * What an instance registers in Consul (SPEC 5): `{ name, id: name-address:port, address, port,
 * tags, meta: { version, stores } }` with an HTTP check on the check endpoint.
 */
import { hostPort } from '../host-port.js'
import type { Config } from './config.js'

export interface ServiceDefinition {
  id: string
  name: string
  address: string
  port: number
  tags: string[]
  meta: Record<string, string>
  check: { http: string; intervalMs: number; timeoutMs: number; deregisterAfterMs: number }
}

export function serviceDefinition(
  config: Config,
  instance: { port: number; stores: string[]; version: string; checkPath: string },
): ServiceDefinition {
  const address = config.SERVICE_ADDRESS
  return {
    id: `${config.SERVICE_NAME}-${address}:${instance.port}`,
    name: config.SERVICE_NAME,
    address,
    port: instance.port,
    tags: config.SERVICE_TAGS,
    meta: { version: instance.version, stores: instance.stores.join(',') },
    check: {
      http: config.CONSUL_CHECK_URL ?? `http://${hostPort(address, instance.port)}${instance.checkPath}`,
      intervalMs: config.CONSUL_CHECK_INTERVAL,
      timeoutMs: config.CONSUL_CHECK_TIMEOUT,
      deregisterAfterMs: config.CONSUL_DEREGISTER_AFTER,
    },
  }
}
