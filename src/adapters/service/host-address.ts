/**
 * The address other hosts reach this instance at, registered in Consul when SERVICE_ADDRESS is not
 * set (SPEC 4). An instance bound to one address (HOST) is reachable only there; one bound to every
 * interface registers the first non-internal IPv4 (a container's eth0), or loopback without one.
 */
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os'

const EVERY_INTERFACE = new Set(['0.0.0.0', '::', ''])

export function hostAddress(
  host: string,
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces(),
): string {
  if (!EVERY_INTERFACE.has(host)) return host
  for (const addresses of Object.values(interfaces)) {
    const external = addresses?.find((a) => a.family === 'IPv4' && !a.internal)
    if (external) return external.address
  }
  return '127.0.0.1'
}
