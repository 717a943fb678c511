/**
 * Free loopback ports, for programs that cannot pick their own (Consul needs six, and a restart must
 * find the same ones). Each is free for TCP and, with `udp`, for UDP too (Consul's DNS and Serf
 * ports use both); all stay bound until every one is chosen, so they differ from each other.
 */
import { createSocket, type Socket } from 'node:dgram'
import { createServer, type Server } from 'node:net'

export async function freePorts(count: number, options: { udp?: boolean } = {}): Promise<number[]> {
  const held: (Server | Socket)[] = []
  const ports: number[] = []
  try {
    for (let tries = 0; ports.length < count && tries < count * 20; tries++) {
      const tcp = createServer()
      await new Promise<void>((resolve, reject) => tcp.once('error', reject).listen(0, '127.0.0.1', resolve))
      held.push(tcp)
      const port = (tcp.address() as { port: number }).port
      if (options.udp) {
        const udp = createSocket('udp4')
        const bound = await new Promise<boolean>((resolve) => {
          udp.once('error', () => resolve(false))
          udp.bind(port, '127.0.0.1', () => resolve(true))
        })
        if (!bound) {
          udp.close()
          continue
        }
        held.push(udp)
      }
      ports.push(port)
    }
  } finally {
    await Promise.all(held.map((h) => new Promise<void>((resolve) => h.close(() => resolve()))))
  }
  if (ports.length < count) throw new Error(`found only ${ports.length} of ${count} free ports`)
  return ports
}
