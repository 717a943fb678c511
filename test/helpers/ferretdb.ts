/**
 * A FerretDB process of a test's own (SQLite backend, its own loopback port and data folder), for
 * tests that stop and start the server, so they never disturb the shared one (MONGODB_URI).
 *
 * The binary comes from FERRETDB_BIN, else from the cache `scripts/test-services.sh install`
 * builds into (~/.cache/filestorage/bin/ferretdb, or $FILESTORAGE_CACHE/bin/ferretdb).
 */
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { MongoClient } from 'mongodb'
import { spawnChild, type TestChild } from './child-process.js'
import { requireService } from './external.js'
import { freePorts } from './ports.js'
import { GiveUp, waitFor } from './wait.js'

export const DEFAULT_FERRETDB_BIN = join(process.env.FILESTORAGE_CACHE ?? join(homedir(), '.cache/filestorage'), 'bin/ferretdb')

/** The FerretDB binary, or undefined (the suite is skipped, or fails under CI=true) when there is none. */
export function ferretDbBinary(): string | undefined {
  if (!process.env.FERRETDB_BIN && existsSync(DEFAULT_FERRETDB_BIN)) return DEFAULT_FERRETDB_BIN
  return requireService('FERRETDB_BIN', 'FerretDB (a server of the test\'s own)')
}

export interface FerretDb {
  port: number
  /** `mongodb://127.0.0.1:port/` */
  uri: string
  dataDir: string
  running(): boolean
  /** Starts the server (again, on the same port and data) and waits until it answers a ping. */
  start(): Promise<void>
  /** Stops it (SIGTERM, then SIGKILL after `timeoutMs`). */
  stop(timeoutMs?: number): Promise<void>
  /** Stops it and removes its data. */
  dispose(): Promise<void>
}

/**
 * Prepares a FerretDB on a free port; `start()` runs it. Its data goes to a new folder under
 * `parentDir` (the system's temporary folder by default; a test's own small file system to fill).
 */
export async function ferretDb(bin: string, parentDir = tmpdir()): Promise<FerretDb> {
  const [port] = (await freePorts(1)) as [number]
  const dataDir = await mkdtemp(join(parentDir, 'filestorage-ferretdb-'))
  const uri = `mongodb://127.0.0.1:${port}/`
  let current: TestChild | undefined

  const running = () => current?.running() ?? false

  const answers = async () => {
    const client = new MongoClient(uri, { serverSelectionTimeoutMS: 500, connectTimeoutMS: 500 })
    try {
      return (await client.db('admin').command({ ping: 1 })).ok === 1
    } catch {
      return false
    } finally {
      await client.close().catch(() => {})
    }
  }

  const server: FerretDb = {
    port,
    uri,
    dataDir,
    running,
    async start() {
      if (running()) return
      const started = spawnChild(
        bin,
        [
          '--handler=sqlite',
          `--sqlite-url=file:${dataDir}/`,
          `--state-dir=${dataDir}`,
          `--listen-addr=127.0.0.1:${port}`,
          '--debug-addr=-', // no metrics/pprof listener on a fixed port
          '--telemetry=disable',
          '--log-level=error',
        ],
      )
      current = started
      try {
        await waitFor(
          'FerretDB to answer a ping',
          async () => {
            if (!started.running()) throw new GiveUp(`FerretDB exited during start-up:\n${started.output()}`)
            return answers()
          },
          { timeoutMs: 30_000, intervalMs: 200 },
        )
      } catch (e) {
        await server.stop()
        throw e
      }
    },
    async stop(timeoutMs = 15_000) {
      await current?.stop('SIGTERM', timeoutMs)
    },
    async dispose() {
      await server.stop()
      await rm(dataDir, { recursive: true, force: true })
    },
  }
  return server
}
