/**
 * The `server` lines of nginx's `upstream filestorage` block, from the passing instances in Consul.
 * The output depends only on the instances (sorted, no timestamps), so an unchanged list gives an
 * unchanged file and no reload.
 */
import type { ServiceInstance } from '../discovery/service-resolver.js'
import { hostPort } from '../host-port.js'

/** Passive health on top of Consul's: an instance that fails a request rests for 10 s. */
export const DEFAULT_SERVER_PARAMS = 'max_fails=1 fail_timeout=10s'

export function upstreamServers(service: string, instances: ServiceInstance[], params = DEFAULT_SERVER_PARAMS): string {
  const header = `# Written by filestorage's upstream sync: the instances of "${service}" whose Consul checks pass.\n`
  if (instances.length === 0) {
    // An upstream block needs a server; a `down` one makes nginx answer 502 (JSON 503 by nginx.conf).
    return `${header}# None pass right now.\nserver 127.0.0.1:9 down;\n`
  }
  const lines = instances
    .map((i) => `server ${hostPort(i.address, i.port)}${params ? ` ${params}` : ''};`)
    .sort()
  return `${header}${[...new Set(lines)].join('\n')}\n`
}
