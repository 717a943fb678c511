/**
 * A FerretDB process of a test's own (SQLite backend, its own loopback port and data folder), for
 * tests that stop and start the server, so they never disturb the shared one (MONGODB_URI).
 *
 * The binary comes from FERRETDB_BIN, else from the cache `scripts/test-services.sh install`
 * builds into (~/.cache/filestorage/bin/ferretdb, or $FILESTORAGE_CACHE/bin/ferretdb).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { MongoClient } from 'mongodb'
import { requireService } from './external.js'

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

/** A free loopback port (free when asked; the server binds it right after). */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => server.listen(0, '127.0.0.1', resolve).on('error', reject))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Prepares a FerretDB on a free port; `start()` runs it. */
export async function ferretDb(bin: string): Promise<FerretDb> {
  const port = await freePort()
  const dataDir = await mkdtemp(join(tmpdir(), 'filestorage-ferretdb-'))
  const uri = `mongodb://127.0.0.1:${port}/`
  let child: ChildProcess | undefined
  let output = ''

  const running = () => child !== undefined && child.exitCode === null && child.signalCode === null

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
      output = ''
      child = spawn(
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
        { stdio: ['ignore', 'pipe', 'pipe'] },
      )
      child.stdout!.on('data', (c: Buffer) => (output += c.toString()))
      child.stderr!.on('data', (c: Buffer) => (output += c.toString()))
      const deadline = Date.now() + 30_000
      while (!(await answers())) {
        if (!running()) throw new Error(`FerretDB exited during start-up:\n${output}`)
        if (Date.now() > deadline) {
          await server.stop()
          throw new Error(`FerretDB did not answer within 30 s:\n${output}`)
        }
        await new Promise((r) => setTimeout(r, 200))
      }
    },
    async stop(timeoutMs = 15_000) {
      if (!child || !running()) return
      const exited = new Promise((resolve) => child!.once('exit', resolve))
      child.kill('SIGTERM')
      const timer = setTimeout(() => child?.kill('SIGKILL'), timeoutMs)
      try {
        await exited
      } finally {
        clearTimeout(timer)
      }
    },
    async dispose() {
      await server.stop()
      await rm(dataDir, { recursive: true, force: true })
    },
  }
  return server
}
