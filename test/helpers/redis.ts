/**
 * A Redis server of a test's own (Debian's redis-server, installed by scripts/test-services.sh
 * install) on a free loopback port, with no persistence, stopped and restarted by the test.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient } from 'redis'
import { spawnChild, type TestChild } from './child-process.js'
import { requireBinary } from './external.js'
import { freePorts } from './ports.js'

export const redisServerBin = () => requireBinary('REDIS_SERVER_BIN', ['/usr/bin/redis-server', '/usr/sbin/redis-server'], 'redis-server')

const newClient = (url: string) => createClient({ url, socket: { reconnectStrategy: () => 200 } })

export interface TestRedis {
  url: string
  client: ReturnType<typeof newClient>
  /** Stops the server (the data goes with it: no persistence); `SIGKILL` to kill it as a crash would. */
  stop(signal?: NodeJS.Signals): Promise<void>
  /** Starts it again on the same port. */
  start(): Promise<void>
  close(): Promise<void>
}

export async function startRedis(bin: string, config: Record<string, string> = {}): Promise<TestRedis> {
  const [port] = (await freePorts(1)) as [number]
  const dir = await mkdtemp(join(tmpdir(), 'filestorage-redis-'))
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...Object.entries(config).flatMap(([k, v]) => [`--${k}`, v])]
  let server: TestChild | undefined
  const url = `redis://127.0.0.1:${port}`
  const client = newClient(url)
  client.on('error', () => {})
  const start = async () => {
    server = spawnChild(bin, args)
    for (let i = 0; i < 100; i++) {
      if (server.output().includes('Ready to accept connections')) return
      if (!server.running()) throw new Error(`redis-server did not start: ${server.output()}`)
      await new Promise((r) => setTimeout(r, 50))
    }
    throw new Error(`redis-server did not start in time: ${server.output()}`)
  }
  await start()
  await client.connect()
  return {
    url,
    client,
    start,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => void (await server?.stop(signal)),
    async close() {
      await client.close().catch(() => client.destroy())
      await server?.stop('SIGTERM')
      await rm(dir, { recursive: true, force: true })
    },
  }
}
