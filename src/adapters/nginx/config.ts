/**
 * The upstream sync's configuration, from the environment like the service's (SPEC 4).
 */
import { z } from 'zod'
import { optionalString, parseEnvironment, serviceName } from '../service/config.js'
import { DEFAULT_SERVER_PARAMS } from './upstream-servers.js'

const required = (what: string) => z.string({ error: `required: ${what}` }).min(1, `required: ${what}`)

export const upstreamSyncSchema = z.object({
  CONSUL_HTTP_ADDR: required('the Consul agent to watch, e.g. consul:8500'),
  CONSUL_HTTP_TOKEN: optionalString,
  SERVICE_NAME: serviceName,
  NGINX_UPSTREAM_FILE: required('the file nginx.conf includes in its upstream block'),
  NGINX_PID_FILE: required("nginx's pid file, to reload it"),
  NGINX_SERVER_PARAMS: z.string().default(DEFAULT_SERVER_PARAMS),
})

export type UpstreamSyncConfig = z.infer<typeof upstreamSyncSchema>

export function loadUpstreamSyncConfig(env: Record<string, string | undefined> = process.env): UpstreamSyncConfig {
  return parseEnvironment(upstreamSyncSchema, env)
}
