/**
 * A TCP proxy on loopback between a client and the service, for tests that break the network: it
 * counts the bytes clients send through it and the bytes it hands them, cuts every connection when told (or once clients have
 * sent a given number of bytes), refuses connections while paused, holds what clients send (their
 * transfers stand still, connections open) while held, and can be pointed at another port (a
 * restarted service) while clients keep its address.
 */
import { connect, createServer, type Socket } from 'node:net'

export interface TcpProxy {
  /** `http://127.0.0.1:port` */
  origin: string
  /** Bytes clients have sent through the proxy so far (request lines, headers and bodies). */
  received(): number
  /** Runs `action` once, as soon as clients have sent `bytes` bytes in all. */
  when(bytes: number, action: () => void): void
  /** Bytes the service has answered through the proxy so far (status lines, headers and bodies). */
  sent(): number
  /** Runs `action` once, as soon as the service has answered `bytes` bytes in all (before they go on to the client). */
  whenSent(bytes: number, action: () => void): void
  /** Destroys every open connection, both sides. */
  cutAll(): void
  /** Cuts every connection and refuses new ones until `resume`. */
  pause(): void
  resume(): void
  /** Stops passing on what clients send (connections stay open, new ones wait) until `release`. */
  hold(): void
  release(): void
  retarget(port: number): void
  close(): Promise<void>
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  let target = targetPort
  let received = 0
  let paused = false
  let held = false
  let sent = 0
  let trigger: { at: number; action: () => void } | undefined
  let sentTrigger: { at: number; action: () => void } | undefined
  const open = new Set<Socket>()
  const clients = new Set<Socket>()

  const server = createServer((client) => {
    if (paused) {
      client.destroy()
      return
    }
    const upstream = connect(target, '127.0.0.1')
    clients.add(client)
    client.on('close', () => clients.delete(client))
    if (held) client.pause()
    for (const socket of [client, upstream]) {
      open.add(socket)
      socket.on('error', () => {})
      socket.on('close', () => {
        open.delete(socket)
        client.destroy()
        upstream.destroy()
      })
    }
    client.on('data', (chunk: Buffer) => {
      received += chunk.length
      if (!upstream.write(chunk)) client.pause()
      if (trigger && received >= trigger.at) {
        const { action } = trigger
        trigger = undefined
        action()
      }
    })
    upstream.on('drain', () => {
      if (!held) client.resume()
    })
    upstream.on('data', (chunk: Buffer) => {
      sent += chunk.length
      if (sentTrigger && sent >= sentTrigger.at) {
        const { action } = sentTrigger
        sentTrigger = undefined
        action()
      }
      if (client.destroyed) return
      if (!client.write(chunk)) upstream.pause()
    })
    client.on('drain', () => upstream.resume())
    client.on('end', () => upstream.end())
    upstream.on('end', () => client.end())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }

  const cutAll = () => {
    for (const socket of open) socket.destroy()
  }
  return {
    origin: `http://127.0.0.1:${port}`,
    received: () => received,
    when(bytes, action) {
      trigger = { at: bytes, action }
    },
    sent: () => sent,
    whenSent(bytes, action) {
      sentTrigger = { at: bytes, action }
    },
    cutAll,
    pause() {
      paused = true
      cutAll()
    },
    resume() {
      paused = false
    },
    hold() {
      held = true
      for (const client of clients) client.pause()
    },
    release() {
      held = false
      for (const client of clients) client.resume()
    },
    retarget(port) {
      target = port
    },
    close() {
      cutAll()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}
