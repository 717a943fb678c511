/**
 * Free TCP ports on loopback: the tests' helper (all ports held until every one is chosen, so
 * they differ), and one port alone.
 */
import { freePorts } from '../../test/helpers/ports.js'

export { freePorts }

export async function freePort(): Promise<number> {
  const [port] = await freePorts(1)
  return port!
}
